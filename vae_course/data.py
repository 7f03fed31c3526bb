"""Datasets: the one place in the package that touches data files and downloads.

Sources, in order:

1. the directory named by the environment variable ``VAE_COURSE_DATA`` (``mnist.npz`` /
   ``cifar10.npz`` in Keras's array layout), each file checked against a known SHA-256;
2. Keras's own cache and download (``keras.datasets``), for readers who are online.

Offline with neither, the loaders raise :class:`DataUnavailableError`, which names the
missing file and says how to provide it.
"""

from __future__ import annotations

import copy
import hashlib
import os
from pathlib import Path

import numpy as np

DATA_ENV = "VAE_COURSE_DATA"

# Accepted SHA-256 sums per file: the lossless copies in the project's shared data folder,
# and, for MNIST, the exact file that Keras itself downloads.
KNOWN_SHA256 = {
    "mnist.npz": (
        "06af5dfe73b70e3bc1c36439982b18a8d76803db9b544f6fdf838a37fbb01b64",
        "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
    ),
    "cifar10.npz": ("a44cc18e4ad961b5158c7da062a6232fb65938b615bf013046199b823b75c43d",),
}

_SHAPES = {
    "mnist.npz": {"x_train": (60000, 28, 28), "y_train": (60000,),
                  "x_test": (10000, 28, 28), "y_test": (10000,)},
    "cifar10.npz": {"x_train": (50000, 32, 32, 3), "y_train": (50000,),
                    "x_test": (10000, 32, 32, 3), "y_test": (10000,)},
}


class DataUnavailableError(FileNotFoundError):
    """A dataset could be found neither in ``$VAE_COURSE_DATA`` nor through Keras."""


class ChecksumError(ValueError):
    """A data file exists but is not the file it claims to be."""


def sha256sum(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def data_dir() -> Path | None:
    """The directory named by ``$VAE_COURSE_DATA``, or None when the variable is unset."""
    value = os.environ.get(DATA_ENV)
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        raise DataUnavailableError(
            f"{DATA_ENV} should name a directory holding the dataset files. "
            f"Received: {DATA_ENV}={value!r}, which is not a directory."
        )
    return path


def verify(path: str | os.PathLike, name: str | None = None) -> Path:
    """Check ``path`` against the known SHA-256 sums of ``name`` (default: its file name)."""
    path = Path(path)
    name = name or path.name
    actual = sha256sum(path)
    if actual not in KNOWN_SHA256[name]:
        raise ChecksumError(
            f"{path} does not match the known SHA-256 of {name}: expected "
            f"{' or '.join(KNOWN_SHA256[name])}, received {actual}. The file is truncated, "
            f"altered or a different dataset; replace it with a fresh copy."
        )
    return path


def _load_npz(path: Path, name: str):
    with np.load(path, allow_pickle=False) as f:
        arrays = {key: f[key] for key in ("x_train", "y_train", "x_test", "y_test")}
    for key, shape in _SHAPES[name].items():
        if arrays[key].shape != shape or arrays[key].dtype != np.uint8:
            raise ChecksumError(
                f"{path}: expected {key} of shape {shape} and dtype uint8, received "
                f"shape {arrays[key].shape} and dtype {arrays[key].dtype}."
            )
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])


def _missing(name: str, keras_error: Exception) -> DataUnavailableError:
    where = os.environ.get(DATA_ENV)
    first = (f"{DATA_ENV}={where!r} does not contain {name}"
             if where else f"{DATA_ENV} is not set")
    return DataUnavailableError(
        f"Could not load {name}: {first}, and Keras's download failed "
        f"({type(keras_error).__name__}: {keras_error}). Either connect to the internet, or put "
        f"{name} (arrays x_train, y_train, x_test, y_test as uint8, Keras's layout; SHA-256 "
        f"{KNOWN_SHA256[name][0]}) in a directory and set {DATA_ENV} to that directory."
    )


def _load(name: str, keras_loader):
    directory = data_dir()
    path = None if directory is None else directory / name
    fix = (f"put {name} (SHA-256 {KNOWN_SHA256[name][0]}) there, or point {DATA_ENV} at the "
           f"directory that holds it.")
    try:
        if path is not None and (path.exists() or path.is_symlink()):
            if not path.is_file():
                kind = "a folder" if path.is_dir() else "not a regular file (a broken link?)"
                raise DataUnavailableError(f"{path} is {kind}: expected the data file {name} "
                                           f"(from {DATA_ENV}={str(directory)!r}). Remove it and "
                                           f"{fix}")
            return _load_npz(verify(path), name)
    except DataUnavailableError:
        raise
    except OSError as err:   # no permission to read the file or its folder
        raise DataUnavailableError(f"{path} could not be read ({err.strerror or err}): expected "
                                   f"the data file {name} (from {DATA_ENV}). Make it readable "
                                   f"(e.g. chmod a+r), or {fix}") from err
    try:
        (x_train, y_train), (x_test, y_test) = keras_loader()
    except Exception as err:  # network errors come in many types (URLError, OSError, ...)
        raise _missing(name, err) from err
    return (x_train, y_train.reshape(-1)), (x_test, y_test.reshape(-1))


def load_mnist():
    """MNIST as uint8 arrays: ``((x_train, y_train), (x_test, y_test))``.

    ``x_train``: (60000, 28, 28) uint8 in [0, 255]; ``x_test``: (10000, 28, 28).
    """

    def keras_loader():
        import keras

        return keras.datasets.mnist.load_data()

    return _load("mnist.npz", keras_loader)


IMAGE_SHAPES = {"mnist": (28, 28, 1), "cifar10": (32, 32, 3)}


def dims(dataset: str) -> int:
    """Numbers per image of a dataset (784 for MNIST, 3,072 for CIFAR-10): the "dim" of
    bits per dimension."""
    if dataset not in IMAGE_SHAPES:
        raise ValueError(f"Expected dataset {' or '.join(map(repr, IMAGE_SHAPES))}. "
                         f"Received: {dataset!r}")
    return int(np.prod(IMAGE_SHAPES[dataset]))


def load_cifar10():
    """CIFAR-10 as uint8 arrays: ``x_train`` (50000, 32, 32, 3), ``x_test`` (10000, 32, 32, 3)."""

    def keras_loader():
        import keras

        return keras.datasets.cifar10.load_data()

    return _load("cifar10.npz", keras_loader)


# ----------------------------------------------------------------------------------------
# Binarization. The Bernoulli decoders model pixels in {0, 1}.


def count(x) -> int:
    """Number of examples in ``x``: an array, or a tuple of arrays that share the first axis
    (e.g. images and labels for a conditional model)."""
    return len(x[0]) if isinstance(x, tuple) else len(x)


def take(x, index):
    """``x[index]`` for an array, or for each array of a tuple (see :func:`count`)."""
    return tuple(a[index] for a in x) if isinstance(x, tuple) else x[index]


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 images (n, 28, 28) in [0, 255] -> float32 (n, 28, 28, 1) in [0, 1]."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise TypeError(f"Expected uint8 images in [0, 255]. Received dtype {images.dtype}.")
    if images.ndim == 3:
        images = images[..., None]
    return images.astype("float32") / 255.0


def binarize_static(images: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Threshold once (the TensorFlow tutorial's choice): float32 (n, 28, 28, 1) in {0, 1}."""
    return (to_float(images) > threshold).astype("float32")


def binarize_dynamic(images: np.ndarray, seed: int | np.random.Generator | None = 0) -> np.ndarray:
    """One Bernoulli draw per pixel with probability = intensity: float32 in {0, 1}.

    Called afresh every epoch (see :class:`DynamicBinarization`), this is the "dynamically
    binarized MNIST" that the literature's negative log-likelihoods are reported on.
    """
    return bernoulli(to_float(images), seed)


def bernoulli(probs: np.ndarray, seed: int | np.random.Generator | None = 0) -> np.ndarray:
    """One Bernoulli draw per entry of ``probs`` (float32 in [0, 1]): float32 in {0, 1}."""
    rng = np.random.default_rng(seed)
    return (rng.random(probs.shape, dtype=np.float32) < probs).astype("float32")


TEST_SEED = 10_000  # the one fixed draw of dynamically binarized test images


def binarize(images: np.ndarray, method: str = "static", seed: int = TEST_SEED) -> np.ndarray:
    """uint8 images -> float32 (n, 28, 28, 1) in {0, 1}, by ``method`` "static" or "dynamic"."""
    if method == "static":
        return binarize_static(images)
    if method == "dynamic":
        return binarize_dynamic(images, seed)
    raise ValueError(f"Expected method 'static' or 'dynamic'. Received: method={method!r}")


def load_binarized_mnist(method: str = "static", seed: int = 0):
    """``(x_train, y_train), (x_test, y_test)`` with x as float32 (n, 28, 28, 1) in {0, 1}.

    ``method="static"`` thresholds at 0.5. ``method="dynamic"`` returns one Bernoulli draw of
    the training images (wrap the uint8 images in :class:`DynamicBinarization` to redraw every
    epoch) and the fixed draw of the test images (``TEST_SEED``), so every evaluation sees
    the same test set.
    """
    (x_train, y_train), (x_test, y_test) = load_mnist()
    return ((binarize(x_train, method, seed), y_train),
            (binarize(x_test, method, TEST_SEED), y_test))


def _py_dataset_base():
    import keras

    return keras.utils.PyDataset


class DynamicBinarization(_py_dataset_base()):
    """A ``keras.utils.PyDataset`` over uint8 images that draws fresh binary pixels each epoch.

    ``model.fit(DynamicBinarization(x_train_uint8, batch_size=128, seed=0), ...)``.
    Batches are float32 (batch, 28, 28, 1) in {0, 1}; order is reshuffled every epoch.
    """

    def __init__(self, images, batch_size: int = 128, seed: int = 0, shuffle: bool = True,
                 **kwargs):
        super().__init__(**kwargs)
        if batch_size <= 0:
            raise ValueError(f"Expected batch_size > 0. Received: batch_size={batch_size}")
        self.probs = to_float(images)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
        self._set_order()

    def __len__(self):
        return -(-len(self.probs) // self.batch_size)

    def _set_order(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        n = len(self.probs)
        self.order = rng.permutation(n) if self.shuffle else np.arange(n)

    def subset(self, index) -> "DynamicBinarization":
        """The same binarization (seed, batch size, epoch) over the images ``probs[index]``."""
        new = copy.copy(self)
        new.probs = self.probs[index]
        new.set_epoch(self.epoch)
        return new

    def set_epoch(self, epoch: int):
        """Continue from ``epoch`` (a resumed run draws what an uninterrupted one would)."""
        self.epoch = epoch
        self._set_order()

    def on_epoch_end(self):
        self.set_epoch(self.epoch + 1)

    def __getitem__(self, index):
        return (self.draw(index),)

    def draw(self, index, out=None):
        """Batch ``index``'s fresh binary draw (float32), written into ``out`` when given.

        The draw depends only on (seed, epoch, batch index): repeatable in any call order, and
        from several threads at once (NumPy releases the GIL for the draw and the compare)."""
        idx = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        probs = self.probs[idx]
        if out is None:
            out = np.empty(probs.shape, "float32")
        return np.less(rng.random(probs.shape, dtype=np.float32), probs, out=out)
