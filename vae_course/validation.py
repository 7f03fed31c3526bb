"""Input checks that run before any training or evaluation, on NumPy arrays.

They catch the common mistakes early, with a message that says what was expected, what was
received and how to fix it, instead of a model that silently trains on nonsense.
"""

from __future__ import annotations

import warnings

import numpy as np


class UnsupportedDecoderError(ValueError):
    """The decoder has a layer (or an output) the browser explorer cannot evaluate."""


def check_images(x, shape, *, binary: bool = True, name: str = "x"):
    """Validate images for a model whose input shape is ``shape`` (without the batch axis).

    Returns ``x`` as float32. Raises ``ValueError`` for a wrong rank or shape, a non-numeric
    dtype, NaN or infinite values and values outside [0, 1]; warns (``binary=True``) when the
    values are in [0, 1] but not binary, since the Bernoulli decoder is then not a likelihood.
    """
    shape = tuple(int(d) for d in shape)
    x = np.asarray(x)
    expected = f"images of shape (n, {', '.join(map(str, shape))}) with values in [0, 1]"
    if x.shape == shape:
        raise ValueError(f"Expected {expected}. Received a single image of shape {x.shape}: "
                         f"add a batch axis, e.g. x[None].")
    if x.ndim == len(shape) and shape[-1] == 1 and x.shape[1:] == shape[:-1]:
        raise ValueError(f"Expected {expected}. Received shape {x.shape}: add the channel "
                         f"axis, e.g. x[..., None].")
    if x.ndim != len(shape) + 1 or x.shape[1:] != shape:
        raise ValueError(f"Expected {expected}. Received {name} of shape {x.shape}.")
    if x.shape[0] == 0:
        raise ValueError(f"Expected {expected}. Received an empty batch of shape {x.shape}.")
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)
            or x.dtype == bool):
        raise ValueError(f"Expected {expected}. Received dtype {x.dtype}.")
    x = x.astype("float32", copy=False)
    finite = np.isfinite(x)
    if not finite.all():
        bad = int(x.size - finite.sum())
        raise ValueError(f"Expected {expected}. Received {bad} NaN or infinite values in {name}.")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0 or hi > 1:
        hint = (" They look like 0-255 pixel values: use vae_course.data.binarize_static "
                "(or divide by 255 and binarize)." if hi > 1 and hi <= 255 and lo >= 0 else "")
        raise ValueError(f"Expected {expected}. Received values in [{lo:g}, {hi:g}].{hint}")
    if binary:
        nonbinary = np.mean((x != 0) & (x != 1))
        if nonbinary > 0:
            warnings.warn(
                f"{name}: {nonbinary:.1%} of the values are neither 0 nor 1. The Bernoulli "
                f"decoder models binary pixels; on grey levels its loss is a cross-entropy, not "
                f"a log-likelihood. Binarize first: vae_course.data.binarize_static (threshold "
                f"0.5) or binarize_dynamic.", UserWarning, stacklevel=3)
    return x


def check_uint8_images(x, shape=(32, 32, 3), name="x"):
    """Validate (n, *shape) uint8 images (8-bit colour images, e.g. CIFAR-10); returns them
    unchanged."""
    x = np.asarray(x)
    shape = tuple(shape)
    expected = (f"uint8 images of shape (n, {', '.join(map(str, shape))}) with values in "
                f"[0, 255]")
    if x.ndim != len(shape) + 1 or x.shape[1:] != shape:
        hint = " Add a batch axis, e.g. x[None]." if x.shape == shape else ""
        raise ValueError(f"Expected {expected}. Received {name} of shape {x.shape}.{hint}")
    if x.shape[0] == 0:
        raise ValueError(f"Expected {expected}. Received an empty batch.")
    if x.dtype != np.uint8:
        hint = ""
        if np.issubdtype(x.dtype, np.floating) and x.size and np.nanmax(x) <= 1.0:
            hint = (" They look like pixels scaled to [0, 1]: pass the original uint8 images "
                    "(e.g. (x * 255).round().astype('uint8')); the model scales them itself.")
        raise ValueError(f"Expected {expected}. Received dtype {x.dtype}.{hint}")
    return x


def check_labels(y, n, classes, name="y"):
    """Validate class labels for ``n`` examples: integers in [0, classes); returns int32 (n,)."""
    y = np.asarray(y)
    expected = f"{n} integer labels in [0, {classes})"
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or len(y) != n:
        raise ValueError(f"Expected {expected}, shape ({n},). Received {name} of shape {y.shape}.")
    if not np.issubdtype(y.dtype, np.integer):
        if np.issubdtype(y.dtype, np.floating) and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
            y = y.astype(np.int64)
        else:
            raise ValueError(f"Expected {expected}. Received dtype {y.dtype}.")
    if n and (y.min() < 0 or y.max() >= classes):
        raise ValueError(f"Expected {expected}. Received values in [{y.min()}, {y.max()}].")
    return y.astype("int32")


# -- the latent explorer's arguments (vae_course.widgets.latent_explorer) --------------------
def check_count(name, value, lo=1, hi=None, allow_none=False):
    """An integer argument in [lo, hi] (``None`` too with ``allow_none``); bools are refused."""
    if value is None and allow_none:
        return None
    if not (isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
            and lo <= value <= (hi if hi is not None else value)):
        raise ValueError(f"Expected {name} an integer in [{lo}, {hi if hi is not None else 'inf'}]"
                         f". Received: {name}={value!r}")
    return int(value)


def check_model_images(model, x, y=None):
    """``x`` as ``model`` takes it (its ``check_inputs``, else images in [0, 1]) and ``y`` one
    label per image; a conditional model's pair ``(images, labels)`` is left to the model."""
    if x is None or isinstance(x, tuple):
        return x
    try:
        x = (model.check_inputs(x) if hasattr(model, "check_inputs")
             else check_images(x, model.image_shape, binary=False))
    except ValueError as err:
        raise ValueError(f"latent_explorer's x: {err}") from None
    if y is not None and np.size(y) != len(x):
        raise ValueError(f"Expected y, one label per image of x ({len(x)}). Received "
                         f"{np.size(y)} labels.")
    return x


def check_dims(dims, size):
    """Distinct integer coordinates in [0, size)."""
    try:
        ints = [int(d) for d in dims]
    except (TypeError, ValueError):
        ints = []
    if not ints or len(set(ints)) != len(ints) or min(ints) < 0 or max(ints) >= size:
        raise ValueError(f"Expected distinct dims in [0, {size}), integers. Received: "
                         f"dims={dims!r}")
    return ints


def check_point(base, size):
    """A flat float64 point of ``size`` finite numbers (a web page's JSON holds no NaN)."""
    try:
        point = np.asarray(base, dtype="float64").reshape(-1)
    except (TypeError, ValueError):
        point = np.zeros(0)
    if point.shape != (size,) or not np.isfinite(point).all():
        raise ValueError(f"Expected base of {size} values, finite numbers. Received: "
                         f"base={base!r}")
    return point


def check_ranges(ranges, n):
    """``n`` pairs (low, high) of finite floats with low < high."""
    try:
        pairs = [(float(a), float(b)) for a, b in ranges]
    except (TypeError, ValueError):
        pairs = []
    if len(pairs) != n or not all(-np.inf < a < b < np.inf for a, b in pairs):
        raise ValueError(f"Expected ranges: one (low, high) with low < high per dim, finite "
                         f"numbers. Received: ranges={ranges!r}")
    return pairs
