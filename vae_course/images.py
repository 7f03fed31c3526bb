"""Images made of images: tiling a batch into one picture, the decoded latent plane, the
per-epoch frames of a run and their GIF. The figures that show them are in
:mod:`vae_course.plotting`."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def tile(images, ncols, gap=0, fill=0.5):
    """(n, h, w[, c]) images in [0, 1] -> one float32 image, ``ncols`` per row, ``gap`` pixels
    of ``fill`` between and around them (gap 0: edge to edge). Channels of size 1 are dropped."""
    images = np.asarray(images, dtype="float32")
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    n, h, w = images.shape[:3]
    nrows = -(-n // ncols)
    edge = 1 if gap else 0
    canvas = np.full((nrows * (h + gap) - gap + 2 * edge * gap,
                      ncols * (w + gap) - gap + 2 * edge * gap) + images.shape[3:], fill,
                     dtype=np.float32)
    for i, img in enumerate(images):
        r, c = divmod(i, ncols)
        top, left = edge * gap + r * (h + gap), edge * gap + c * (w + gap)
        canvas[top:top + h, left:left + w] = img
    return canvas


def to_uint8(image):
    """Floats in [0, 1] -> uint8 in [0, 255] (clipped, rounded)."""
    return (np.clip(image, 0, 1) * 255).round().astype(np.uint8)


def decode_plane(model, base, dims, values_a, values_b, compiled=False):
    """Decode the latent points ``base`` with coordinates ``dims = (i, j)`` swept over
    ``values_a`` x ``values_b``: one image, columns left to right along ``values_a``, rows
    from the *last* of ``values_b`` (top) to the first, as a plot's axes run.

    Works for any model with ``decode_mean`` (VAEs and autoencoders). Returns a float32
    image (len(values_b) * h, len(values_a) * w[, c]) in [0, 1].
    """
    from keras import ops

    i, j = dims
    za, zb = np.meshgrid(np.asarray(values_a), np.asarray(values_b)[::-1])
    z = np.tile(np.asarray(base, dtype="float32").reshape(1, -1), (za.size, 1))
    z[:, i], z[:, j] = za.ravel(), zb.ravel()
    images = np.asarray(ops.convert_to_numpy(model.decode_mean(z, compiled)))
    return tile(images, ncols=len(values_a))


def epoch_frame(model, x_fixed, z_fixed):
    """One uint8 image: originals (row 1), their reconstructions (row 2), then samples from the
    decoder inputs ``z_fixed`` (``model.prior_points``: two rows, or one row per digit for a
    conditional model)."""
    from keras import ops

    recon = ops.convert_to_numpy(model.decode_mean(model.encode_point(x_fixed)))
    samples = ops.convert_to_numpy(model.decode_mean(z_fixed))
    shown = model.pixels(x_fixed)
    grid = to_uint8(tile(np.concatenate([shown, recon, samples]), ncols=len(shown), gap=1))
    return grid.repeat(2, axis=0).repeat(2, axis=1)


def write_gif(out_dir: Path, fps: int = 4):
    """``images/epoch_*.png`` of a run directory -> ``progress.gif`` (atomic write)."""
    import imageio.v2 as imageio

    out_dir = Path(out_dir)
    frames = [imageio.imread(p) for p in sorted((out_dir / "images").glob("epoch_*.png"))]
    if frames:
        tmp = out_dir / f".progress.gif.{os.getpid()}.tmp"   # unique per process
        imageio.mimsave(tmp, frames, format="GIF", duration=1000 / fps, loop=0)
        os.replace(tmp, out_dir / "progress.gif")
