"""side_by_side shows kernel explorers without an ipywidgets container (Colab renders no
anywidget inside one, anywidget issue 63) and static explorers in one row of HTML."""

import ipywidgets
import pytest

from vae_course import widgets


@pytest.fixture(scope="module")
def explorers(mnist):
    from vae_course import data

    (_, _), (x, y) = mnist
    x = data.to_float(x[:200])
    return {static: [widgets.latent_explorer(name, x, y[:200], static=static)
                     for name in ("mnist-conv-ae-2", "mnist-conv-latent2")]
            for static in (False, True)}


def test_kernel_explorers_are_displayed_one_by_one_under_their_titles(explorers, monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda *objs, **kw: shown.extend(objs))
    a, b = explorers[False]
    widgets.side_by_side(a, b, titles=["Autoencoder", "VAE <2-D>"])._ipython_display_()
    assert [type(o).__name__ for o in shown] == ["HTML", type(a).__name__, "HTML",
                                                 type(b).__name__]
    assert shown[1] is a and shown[3] is b
    assert "VAE &lt;2-D&gt;" in shown[2].data
    assert not any(isinstance(o, ipywidgets.Box) for o in shown)   # no HBox/VBox container
    assert (a.pad, a.scale) == (150, 5)


def test_static_explorers_share_one_row(explorers):
    row = widgets.side_by_side(*explorers[True], titles=["Autoencoder", "VAE"])
    page = row._repr_html_()
    assert page.count('class="vae-explorer-host"') == 2 and "display: flex" in page


def test_one_title_per_explorer(explorers):
    with pytest.raises(ValueError, match="one title per explorer"):
        widgets.side_by_side(*explorers[True], titles=["only one"])
