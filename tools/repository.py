"""The project's repository address is one setting, ``repository.url`` in ``_config.yml``.

Jupyter Book reads it for the launch (Colab) and repository buttons; this script writes it
into everything else that names it:

- every chapter's first code cell, which installs the package on Colab from that repository;
- ``pyproject.toml``'s ``[project.urls]``;
- ``CITATION.cff``'s ``repository-code``.

    python tools/repository.py           # rewrite those from _config.yml (make repository)
    python tools/repository.py --check   # list what disagrees, exit 1 if anything does

``tests/test_install.py`` runs the check, so a changed address that was not carried over fails
the tests.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKER = "# On Colab, install the book's package first"

# The chapters' first code cell. On Colab it installs vae-course from the repository (unless
# it is already installed, e.g. from an uploaded wheel); anywhere else it does nothing. A failed
# install says what to do instead of showing pip's and git's output.
INSTALL_CELL = '''\
# On Colab, install the book's package first (elsewhere it is already installed).
import sys

REPOSITORY = "{url}"  # _config.yml

if "google.colab" in sys.modules:
    import importlib.util
    import subprocess

    if importlib.util.find_spec("vae_course") is None:
        pip = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet",
             f"vae-course @ git+{{REPOSITORY}}"],
            capture_output=True, text=True)
        if pip.returncode:
            last = (pip.stderr.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(
                f"Could not install the book's package (vae-course) from "
                f"{{REPOSITORY}}.\\nIf that repository is not public yet, install the "
                f"package from a wheel: "
                f"build one where you have the book's source (python -m pip wheel "
                f"--no-deps -w dist .), upload dist/vae_course-*.whl in Colab's "
                f"Files pane, run %pip install vae_course-*.whl in a cell, then run "
                f"this cell again.\\n(pip: {{last}})")'''


def repository_url(root: Path = ROOT) -> str:
    import yaml

    url = (yaml.safe_load((root / "_config.yml").read_text()).get("repository") or {}).get("url")
    if not url:
        raise SystemExit("_config.yml has no repository.url")
    return url.rstrip("/")


def install_cell(url: str) -> str:
    return INSTALL_CELL.format(url=url)


def _notebooks(root):
    return sorted((root / "book").glob("*.ipynb"))


def _install_cells(nb):
    return [c for c in nb["cells"] if c["cell_type"] == "code"
            and "".join(c["source"]).startswith(MARKER)]


def _pyproject_urls(url):
    return {"Repository": url, "Issues": f"{url}/issues"}


def _rewrite_pyproject(text, url):
    for key, value in _pyproject_urls(url).items():
        text = re.sub(rf'(?m)^{key} = ".*"$', f'{key} = "{value}"', text)
    return text


def _rewrite_citation(text, url):
    return re.sub(r'(?m)^repository-code: ".*"$', f'repository-code: "{url}"', text)


def differences(root: Path = ROOT) -> list[str]:
    """What does not follow ``_config.yml``'s repository.url, one line per file."""
    url = repository_url(root)
    wrong = []
    for path in _notebooks(root):
        cells = _install_cells(json.loads(path.read_text()))
        if len(cells) != 1:
            wrong.append(f"{path.relative_to(root)}: expected one install cell, found "
                         f"{len(cells)}")
        elif "".join(cells[0]["source"]) != install_cell(url):
            wrong.append(f"{path.relative_to(root)}: install cell")
    for name, rewrite in (("pyproject.toml", _rewrite_pyproject),
                          ("CITATION.cff", _rewrite_citation)):
        text = (root / name).read_text()
        if rewrite(text, url) != text:
            wrong.append(name)
    return wrong


def sync(root: Path = ROOT) -> list[str]:
    """Write the repository address into the install cells, pyproject.toml and CITATION.cff."""
    url = repository_url(root)
    changed = []
    for path in _notebooks(root):
        nb = json.loads(path.read_text())
        for cell in _install_cells(nb):
            new = install_cell(url).splitlines(keepends=True)
            if cell["source"] != new:
                cell["source"] = new
                changed.append(str(path.relative_to(root)))
        if changed and changed[-1] == str(path.relative_to(root)):
            path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    for name, rewrite in (("pyproject.toml", _rewrite_pyproject),
                          ("CITATION.cff", _rewrite_citation)):
        text = (root / name).read_text()
        if rewrite(text, url) != text:
            (root / name).write_text(rewrite(text, url))
            changed.append(name)
    return changed


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--check"]:
        wrong = differences()
        for line in wrong:
            print(f"does not follow _config.yml's repository.url: {line}")
        return 1 if wrong else 0
    if argv:
        raise SystemExit(__doc__)
    for name in sync():
        print(f"updated {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
