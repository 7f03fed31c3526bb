"""Wall time of the book build (what ``make book`` runs) and each chapter's slowest cells.

Runs ``jupyter-book build --all`` with ``VAE_COURSE_STATIC=1``, as the Makefile does, into
``--out`` (default: a temporary folder, so ``_build`` is left alone), then reads every
chapter's reproducibility card from the built HTML: its live-cell time and its slowest
cells. Usage: ``python benchmarks/book_build.py [--out DIR] [--quick]`` (``--quick`` sets
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
    for page in sorted((out / "_build" / "html" / "book").glob("*.html")):
        live, slow = card_rows(page.read_text(encoding="utf-8"))
        if slow:
            print(f"{page.stem}: live cells {live}")
            for row in slow:
                print(f"    {row}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
