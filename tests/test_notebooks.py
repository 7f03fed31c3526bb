"""Every chapter notebook runs top to bottom without an error (quick mode, static explorers).

One test per chapter of _toc.yml. Each chapter is executed once per session, by nbclient
(conftest.ExecutedBook, 900 s per cell); a failure shows the failing cell and its traceback.
The `built_book` fixture builds the HTML book from these same executions, so
tests/test_book.py and tests/test_browser.py check their outputs without running the
chapters a second time. `make notebooks` runs just these tests.
"""

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())
CHAPTERS = [c["file"] for c in TOC["chapters"] if (ROOT / f"{c['file']}.ipynb").exists()]


@pytest.mark.slow
@pytest.mark.parametrize("chapter", CHAPTERS, ids=[Path(c).name for c in CHAPTERS])
def test_chapter_runs_top_to_bottom(executed_book, chapter):
    failure = executed_book.execute(chapter)
    print(f"{chapter}.ipynb: {executed_book.seconds[chapter]:.0f} s")
    if failure:
        pytest.fail(failure, pytrace=False)
