"""Looking inside a trained VAE: per-dimension KL, active units and latent walks. The
figures that show them are in :mod:`vae_course.plotting`."""

from __future__ import annotations

import numpy as np
from keras import ops

from . import data, losses
from .images import decode_plane


def _np(t):
    return np.asarray(ops.convert_to_numpy(t))


def encode_all(model, x, batch_size=1000):
    """(z_mean, z_log_var) as numpy, each (n, latent_dim), encoded in batches (``x``: images,
    or the pair (images, labels) for a conditional model)."""
    parts = [model.encode(data.take(x, slice(i, i + batch_size)))
             for i in range(0, data.count(x), batch_size)]
    return (np.concatenate([_np(m) for m, _ in parts]),
            np.concatenate([_np(v) for _, v in parts]))


def kl_per_dimension(model, x):
    """Average over images of KL(q(z_j|x) || N(0, 1)) for each latent dimension j -> (latent_dim,)."""
    z_mean, z_log_var = encode_all(model, x)
    return _np(losses.kl_standard_normal_elementwise(z_mean, z_log_var)).mean(axis=0)


def active_units(model, x, threshold=0.01):
    """Burda et al. (2016)'s activity: dimension j is active if Var_x(E_q[z_j|x]) > threshold.

    Returns (number of active dimensions, per-dimension activity (latent_dim,)).
    """
    z_mean, _ = encode_all(model, x)
    activity = z_mean.var(axis=0)
    return int((activity > threshold).sum()), activity


def interpolate(model, x_a, x_b, steps=10):
    """Decode evenly spaced points between the posterior means of two images -> (steps, 28, 28, 1)."""
    z_mean, _ = model.encode(np.stack([x_a, x_b]))
    z_mean = _np(z_mean)
    t = np.linspace(0.0, 1.0, steps, dtype="float32")[:, None]
    z = (1 - t) * z_mean[0] + t * z_mean[1]
    return _np(model.decode_mean(z))


def posterior_grid(model, x, n=15, n_std=4.0, dims=(0, 1)):
    """Decode a grid around one image's code: z_mean +/- n_std posterior standard deviations.

    The two dimensions ``dims`` vary over [mean - n_std * std, mean + n_std * std]; the others
    stay at the posterior mean. Returns (image (n*28, n*28), offsets_0 (n,), offsets_1 (n,)),
    with rows running from high to low values of the second dimension.
    """
    z_mean, z_log_var = model.encode(x[None])
    mean, std = _np(z_mean)[0], np.exp(0.5 * _np(z_log_var)[0])
    i, j = dims
    a = mean[i] + np.linspace(-n_std, n_std, n) * std[i]
    b = mean[j] + np.linspace(-n_std, n_std, n) * std[j]
    return decode_plane(model, mean, dims, a, b), a, b


def forward_multiply_adds(model) -> int:
    """Multiply-adds of one image through a model's encoder, flow and decoder.

    Counts the kernels of Dense, MaskedDense, Conv2D and Conv2DTranspose layers (a masked
    kernel counts in full: it is computed densely) times the positions each is applied at:
    every output pixel for a convolution, every input pixel for a transposed one (each
    scatters k*k*out values), the latent map's positions for the flow's layers, once for a
    dense layer. Bias additions and activations are left out. Training costs about three
    times this per image (forward, and two products backward).
    """
    total = 0
    # Keras's own recursive layer walk (private, but stable across Keras 3; the tests check
    # the count against a hand count, so a change shows up there)
    for layer in model._flatten_layers(include_self=False, recursive=True):
        kind, w = type(layer).__name__, getattr(layer, "kernel", None)
        if w is None or kind not in ("Conv2D", "Conv2DTranspose", "MaskedDense", "Dense"):
            continue
        taps = int(np.prod(w.shape))
        if kind == "Conv2DTranspose":
            pixels = int(np.prod(layer.input.shape[1:3]))
        elif layer.built and hasattr(layer, "output") and kind != "MaskedDense":
            pixels = int(np.prod(layer.output.shape[1:3])) if len(layer.output.shape) == 4 else 1
        else:
            pixels = int(np.prod(model.latent_shape[:-1]))   # the flow runs on the latent map
        total += taps * pixels
    return total
