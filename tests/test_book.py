"""Build the whole book and check what a reader gets.

The `built_book` fixture (conftest.py) builds it from the chapters as tests/test_notebooks.py
ran them (quick mode, static explorers), each chapter executed once per session.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def toc_files():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [toc["root"]] + [c["file"] for c in toc["chapters"]]


def test_toc_lists_only_existing_chapters_and_every_notebook():
    listed = toc_files()
    for entry in listed:
        assert any((ROOT / f"{entry}{ext}").exists() for ext in (".md", ".ipynb")), entry
    notebooks = {f"book/{p.stem}" for p in (ROOT / "book").glob("*.ipynb")}
    assert notebooks <= set(listed)


def test_notebooks_are_committed_without_outputs():
    import nbformat

    for path in (ROOT / "book").glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, path.name


@pytest.mark.slow
def test_conv_vae_chapter_renders_with_its_figures(built_book):
    html = (built_book / "book" / "conv_vae.html").read_text()
    figures = re.findall(r'<img [^>]*src="(?:data:image/(?:png|gif)|[^"]*_images/)', html)
    # data grid, 1 live-training frame, history, samples, manifold, latent scatter, + the GIF
    assert len(figures) >= 7, len(figures)
    assert re.search(r'<img [^>]*src="[^"]*_images/[^"]*\.gif"', html)   # a file, not inlined
    assert "Traceback" not in html
    for expected in ("test ELBO (all 10,000 images)", "IS log-likelihood", "closed form"):
        assert expected in html, expected
    assert (built_book / "index.html").exists()
    # the reproducibility card (Markdown output) renders as a table, not as a line of pipes
    tables = re.findall(r"<table.*?</table>", html, re.S)
    assert any("live cells" in t and "slow cell" in t for t in tables)
    assert "|—|" not in html and "|---|" not in html


def _code_cells():
    import nbformat

    for path in sorted((ROOT / "book").glob("*.ipynb")):
        for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
            if cell.cell_type == "code":
                yield f"{path.name} cell {i}", cell.source


def _call_arguments(source, keyword):
    """The text of every ``keyword=...`` argument in ``source``, up to its closing bracket or
    comma at the same depth."""
    for match in re.finditer(rf"\b{keyword}\s*=", source):
        depth, end = 0, match.end()
        while end < len(source):
            ch = source[end]
            if ch in "([{":
                depth += 1
            elif ch in ")]}":
                if depth == 0:
                    break
                depth -= 1
            elif ch == "," and depth == 0:
                break
            end += 1
        yield source[match.end():end]


def test_no_chapter_validates_or_selects_on_test_data():
    """What early stopping, checkpoints or any validation watch must be held-out training
    data: a test array passed as validation data is model selection on the test set."""
    offenders = []
    for where, source in _code_cells():
        for argument in _call_arguments(source, "validation_data"):
            if re.search(r"test", argument, re.IGNORECASE):
                offenders.append(f"{where}: validation_data={argument.strip()}")
    assert not offenders, offenders
    # the check itself finds what it is meant to find
    assert list(_call_arguments("fit(x, validation_data=(x_test[:2000],), epochs=3)",
                                "validation_data")) == ["(x_test[:2000],)"]


# -- the figure audit: every cell that draws shows its figure --------------------------------
# A cell draws when it makes a matplotlib figure itself or calls one of vae_course.plotting's
# drawing functions; it shows the figure when one of its outputs is an image (or HTML holding
# one).
DRAWS = re.compile(r"\bplt\.(subplots|figure|imshow|plot)\(|\bplotting\.(image_grid|plot_\w+)\(")
MATPLOTLIB_REPR = re.compile(r"(Text|Line2D|Legend)\(|\[?<matplotlib\.|<Figure size")


def _shows_image(output):
    data = output.get("data", {})
    return (any(k.startswith("image/") for k in data)
            or "<img" in "".join(data.get("text/html", "")))


def figure_audit(nb):
    """Problems in an executed notebook: drawing cells without an image, and matplotlib reprs
    (``Text(0.5, 1.0, '...')``) leaked as a cell's only output."""
    problems = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if DRAWS.search(cell.source) and not any(map(_shows_image, cell.outputs)):
            problems.append(f"cell {i} draws but shows no figure: {cell.source[:80]!r}")
        for output in cell.outputs:
            data = output.get("data", {})
            if set(data) == {"text/plain"} and MATPLOTLIB_REPR.match("".join(data["text/plain"])):
                problems.append(f"cell {i} leaks {''.join(data['text/plain'])[:60]!r}")
    return problems


@pytest.mark.slow
@pytest.mark.parametrize("chapter", [c for c in toc_files() if (ROOT / f"{c}.ipynb").exists()],
                         ids=lambda c: Path(c).name)
def test_every_drawing_cell_shows_its_figure(executed_book, chapter):
    import nbformat

    if executed_book.execute(chapter):
        pytest.skip("the chapter failed to run (tests/test_notebooks.py reports it)")
    nb = nbformat.read(executed_book.path / f"{chapter}.ipynb", as_version=4)
    assert sum(bool(DRAWS.search(c.source)) for c in nb.cells if c.cell_type == "code") > 0
    assert figure_audit(nb) == []


@pytest.mark.slow
def test_the_figure_audit_catches_a_vanished_figure():
    """The bug the audit is for: switching pyplot's backend in a kernel (as widgets once did
    with ``matplotlib.use("Agg")``) makes later figures vanish from the notebook."""
    import nbformat
    from nbclient import NotebookClient

    def run(*sources):
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
        NotebookClient(nb, timeout=120).execute()
        return nb

    draw = "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.plot([0, 1]);"
    assert figure_audit(run(draw)) == []
    assert figure_audit(run("import matplotlib\nmatplotlib.use('Agg')", draw)) != []
    assert figure_audit(run(draw.replace("ax.plot([0, 1]);", "ax.set_title('t')"))) != []
