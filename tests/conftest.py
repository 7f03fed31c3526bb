import os
import socket

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
