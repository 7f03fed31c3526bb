"""The reproducibility card: versions, seed, device and the wall time of timed cells."""

import numpy as np
import pytest

from vae_course import repro


def test_start_seeds_numpy_and_the_card_names_seed_device_and_versions():
    repro.start(seed=3)
    a = np.random.rand(3)
    repro.start(seed=3)
    np.testing.assert_array_equal(a, np.random.rand(3))
    text = repro.card().data
    for expected in ("| seed | 3 |", "| keras |", "| device | CPU", "| vae_course | "):
        assert expected in text, text


def test_cells_run_in_ipython_are_timed_slowest_first():
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_cell("from vae_course import repro; repro.start(seed=1)")
    shell.run_cell("import time\ntime.sleep(0.3)  # slow")
    shell.run_cell("x = 1")
    text = repro.card().data
    assert "| live cells | 2 cells" in text, text
    slow = [ln for ln in text.splitlines() if ln.startswith("| slow cell")]
    assert "import time" in slow[0] and float(slow[0].split("|")[2].split()[0]) >= 0.3


@pytest.mark.parametrize("seed", [-1, 1.5, "0", True])
def test_a_bad_seed_is_refused(seed):
    with pytest.raises(ValueError, match="non-negative integer seed"):
        repro.start(seed=seed)
