import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _is_loopback(address):
    host = address[0] if isinstance(address, tuple) else address
    return isinstance(host, str) and (host in ("localhost", "::1") or host.startswith("127."))


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Tests never reach the network: any connection except loopback fails at once."""
    real_connect = socket.socket.connect

    def guarded_connect(self, address):
        if self.family == socket.AF_UNIX or _is_loopback(address):
            return real_connect(self, address)
        raise OSError(f"network access blocked in tests (tried {address!r})")

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex",
                        lambda self, address: guarded_connect(self, address) or 0)


@pytest.fixture(scope="session")
def tfd():
    """tensorflow_probability.distributions, an independent oracle for the closed forms.

    It runs on NumPy inputs under any Keras backend, but needs TensorFlow installed: without
    it the cross-checks skip and the rest of their module still runs.
    """
    return pytest.importorskip(
        "tensorflow_probability",
        reason="cross-check against TensorFlow Probability (needs TensorFlow)").distributions


@pytest.fixture(scope="session")
def data_dir():
    value = os.environ.get("VAE_COURSE_DATA")
    if not value or not os.path.isdir(value):
        pytest.fail("The tests need VAE_COURSE_DATA set to a folder holding mnist.npz "
                    "(CI sets it to ../shared/data).")
    return value


@pytest.fixture(scope="session")
def mnist(data_dir):
    from vae_course import data

    return data.load_mnist()


@pytest.fixture(scope="session")
def binary_test_images(mnist):
    from vae_course import data

    (_, _), (x_test, y_test) = mnist
    return data.binarize_static(x_test), y_test


ROOT = Path(__file__).resolve().parents[1]
CELL_TIMEOUT = 900   # seconds per cell, as nbval's --nbval-cell-timeout had it
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class ExecutedBook:
    """A session copy of the book project whose chapters each run once, then build into HTML.

    ``execute(chapter)`` runs ``book/<chapter>.ipynb`` top to bottom with nbclient in quick and
    static mode (``VAE_COURSE_QUICK=1 VAE_COURSE_STATIC=1``, in ``book/`` as jupyter-book runs
    it) and writes the executed notebook into the copy; each chapter runs at most once per
    session, whichever test asks first. ``build()`` builds the copy with execution off (its
    ``_config.yml`` says ``execute_notebooks: "off"``; the rest is the book's own config), so
    the HTML checks see exactly the runs that tests/test_notebooks.py reports on.
    """

    def __init__(self, path):
        import yaml

        self.path = path
        toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
        pages = [toc["root"]] + [c["file"] for c in toc["chapters"]]
        self.chapters = [p for p in pages if (ROOT / f"{p}.ipynb").exists()]
        shutil.copytree(ROOT / "book", path / "book",
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        for f in ROOT.iterdir():   # _toc.yml, references.bib, README.md, ...
            if f.is_file() and not f.name.startswith(".") and f.name != "_config.yml":
                shutil.copy(f, path / f.name)
        if (ROOT / "_assets").exists():   # make's npm step: MathJax, RequireJS, widgets JS
            shutil.copytree(ROOT / "_assets", path / "_assets")
        shutil.copytree(ROOT / "_ext", path / "_ext",   # the book's Sphinx extension
                        ignore=shutil.ignore_patterns("__pycache__"))
        config = yaml.safe_load((ROOT / "_config.yml").read_text())
        config["execute"]["execute_notebooks"] = "off"
        (path / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
        self.failures = {}   # chapter -> None when it ran, else the error to report
        self.seconds = {}

    def execute(self, chapter):
        """Run the chapter once; return None, or the failing cell's source and traceback."""
        if chapter not in self.failures:
            self.failures[chapter] = self._run(chapter)
        return self.failures[chapter]

    def _run(self, chapter):
        import nbformat
        from nbclient import NotebookClient
        from nbclient.exceptions import CellExecutionError

        source = ROOT / f"{chapter}.ipynb"
        nb = nbformat.read(source, as_version=4)
        client = NotebookClient(nb, timeout=CELL_TIMEOUT, allow_errors=False,
                                resources={"metadata": {"path": str(source.parent)}})
        env = {**os.environ, "VAE_COURSE_QUICK": "1", "VAE_COURSE_STATIC": "1"}
        start = time.perf_counter()
        try:
            client.execute(env=env)
        except CellExecutionError as e:   # its message: the cell's source, then the traceback
            cell = next((i for i, c in enumerate(nb.cells) if any(
                o.get("output_type") == "error" for o in c.get("outputs", []))), "?")
            return f"{chapter}.ipynb, cell {cell}: {_ANSI.sub('', str(e))}"
        except Exception as e:   # a cell timed out, the kernel died or did not start
            return f"{chapter}.ipynb: {type(e).__name__}: {_ANSI.sub('', str(e))}"
        finally:
            self.seconds[chapter] = time.perf_counter() - start
        nbformat.write(nb, self.path / f"{chapter}.ipynb")
        return None

    def build(self):
        """Run any chapter not run yet, then build the HTML book from the executed copies."""
        failed = [c for c in self.chapters if self.execute(c)]
        if failed:
            pytest.fail(f"not building the book: {', '.join(failed)} failed to run (see "
                        "tests/test_notebooks.py for each traceback)", pytrace=False)
        jb = shutil.which("jupyter-book", path=os.path.dirname(sys.executable))
        result = subprocess.run([jb, "build", "--all", str(self.path)],
                                capture_output=True, text=True, timeout=1800)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return self.path / "_build" / "html"


@pytest.fixture(scope="session")
def executed_book(tmp_path_factory, data_dir):
    """The chapters run once each in quick + static mode, in a copy of the book project."""
    return ExecutedBook(tmp_path_factory.mktemp("book-project"))


@pytest.fixture(scope="session")
def built_book(request):
    """The book built from ``executed_book``'s runs; $VAE_COURSE_BOOK_HTML reuses a built one
    (e.g. _build/html after ``make book``) and runs nothing."""
    if os.environ.get("VAE_COURSE_BOOK_HTML"):
        return Path(os.environ["VAE_COURSE_BOOK_HTML"])
    return request.getfixturevalue("executed_book").build()
