import os
import shutil
import socket
import subprocess
import sys
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


@pytest.fixture(scope="session")
def built_book(tmp_path_factory):
    """The book built in quick mode; $VAE_COURSE_BOOK_HTML reuses one (e.g. _build/html)."""
    if os.environ.get("VAE_COURSE_BOOK_HTML"):
        return Path(os.environ["VAE_COURSE_BOOK_HTML"])
    out = tmp_path_factory.mktemp("book")
    env = {**os.environ, "VAE_COURSE_QUICK": "1", "VAE_COURSE_STATIC": "1"}
    jb = shutil.which("jupyter-book", path=os.path.dirname(sys.executable))
    result = subprocess.run([jb, "build", "--all", "--path-output", str(out), str(ROOT)],
                            capture_output=True, text=True, env=env, timeout=1800)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out / "_build" / "html"
