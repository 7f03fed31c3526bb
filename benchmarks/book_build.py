"""Wall time of the book build (what ``make book`` runs) and each chapter's slowest cells.

Runs ``jupyter-book build --all`` with ``VAE_COURSE_STATIC=1``, as the Makefile does, into
``--out`` (default: a temporary folder, so ``_build`` is left alone), then reads every
chapter's reproducibility card from the built HTML: its live-cell time and its slowest
cells; and what the site and each page weigh. Usage: ``python benchmarks/book_build.py [--out DIR] [--quick]`` (``--quick`` sets
``VAE_COURSE_QUICK=1``, the test suite's shortened training cells).
"""

from __future__ import annotations

import argparse
import html
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def card_rows(page: str):
    """(live-cells text, [slow-cell texts]) from a chapter's built HTML."""
    text = html.unescape(re.sub(r"<[^>]+>", " ", page))
    text = re.sub(r"\s+", " ", text)
    text = text.replace(" | ", " ").replace("| ", "")   # table cells, rendered or not
    live = re.search(r"live cells (\d+ cells, [\d.]+ s of wall time)", text)
    slow = [row.strip(" |") for row in
            re.findall(r"slow cell ([\d.]+ s: .+?)(?= slow cell | quick mode )", text)]
    return (live.group(1) if live else "?"), slow


def page_weights(site: Path) -> str:
    """What the built site weighs: all its files, and each chapter page's HTML (the images a
    page shows are files of their own, in _images; tests/test_browser.py holds the budget)."""
    total = sum(f.stat().st_size for f in site.rglob("*") if f.is_file())
    pages = {p.stem: p.stat().st_size for p in (site / "book").glob("*.html")}
    images = sum(f.stat().st_size for f in (site / "_images").glob("*") if f.is_file())
    largest = max(pages, key=pages.get)
    return (f"site {total / 2**20:.1f} MB (images {images / 2**20:.1f} MB); largest page "
            f"{largest}.html {pages[largest] / 2**20:.2f} MB; pages " +
            ", ".join(f"{k} {v / 2**10:.0f} kB" for k, v in sorted(pages.items())))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=None, help="output folder (default: a temporary one)")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="vae-book-"))
    env = {**os.environ, "VAE_COURSE_STATIC": "1"}
    if args.quick:
        env["VAE_COURSE_QUICK"] = "1"
    jb = shutil.which("jupyter-book", path=os.path.dirname(sys.executable)) or "jupyter-book"
    start = time.perf_counter()
    result = subprocess.run([jb, "build", "--all", "--path-output", str(out), str(ROOT)],
                            capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        print(result.stdout[-3000:], result.stderr[-3000:], sep="\n")
        return result.returncode
    print(f"book build: {seconds:.0f} s ({seconds / 60:.1f} min) into {out / '_build' / 'html'}")
    for line in result.stdout.splitlines():
        if "Executed notebook in" in line:   # myst-nb's own per-notebook figure
            print("  " + line.split("/")[-1].strip())
    site = out / "_build" / "html"
    print(page_weights(site))
    for page in sorted((site / "book").glob("*.html")):
        live, slow = card_rows(page.read_text(encoding="utf-8"))
        if slow:
            print(f"{page.stem}: live cells {live}")
            for row in slow:
                print(f"    {row}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
