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
