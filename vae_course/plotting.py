"""Figures for the chapters. Each function returns a matplotlib Figure (no ``plt.show()``), and
``show_gif`` an image output."""

from __future__ import annotations

from pathlib import Path
from statistics import NormalDist

import numpy as np

from .images import decode_plane


def _plt():
    import matplotlib.pyplot as plt

    return plt


def image_grid(images, ncols=8, title=None, scale=1.0, row_labels=None):
    """Show (n, h, w, 1), (n, h, w) or RGB (n, h, w, 3) images in [0, 1] (or uint8) on a grid,
    optionally a label per row."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        images = images / 255.0
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    n = len(images)
    nrows = -(-n // ncols)
    plt = _plt()
    row_height = scale * (1.25 if row_labels else 1.0)
    fig, axes = plt.subplots(nrows, ncols, figsize=(scale * ncols, row_height * nrows),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, img in zip(axes.flat, images):
        ax.imshow(np.clip(img, 0, 1), cmap="gray", vmin=0, vmax=1)
    for ax, label in zip(axes[:, 0], row_labels or []):
        ax.set_title(label, loc="left", fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def normal_quantile_grid(n=20, eps=0.05):
    """(n,) values of the standard normal quantile function on an even grid of probabilities.

    Equal steps in probability, so the decoded grid covers the prior mass evenly.
    """
    return np.array([NormalDist().inv_cdf(p) for p in np.linspace(eps, 1 - eps, n)],
                    dtype="float32")


def decode_manifold(model, n=20, eps=0.05):
    """Decode a 2-D latent grid: (n*28, n*28) image; rows run from high z2 (top) to low."""
    if model.latent_dim != 2:
        raise ValueError(f"Expected a model with latent_dim=2. Received latent_dim={model.latent_dim}.")
    q = normal_quantile_grid(n, eps)
    return decode_plane(model, np.zeros(2), (0, 1), q, q), q


def plot_manifold(model, n=20, eps=0.05, size=8):
    image, q = decode_manifold(model, n, eps)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(image, cmap="gray", extent=(-0.5, n - 0.5, -0.5, n - 0.5))
    ticks = np.arange(0, n, max(1, n // 5))
    ax.set_xticks(ticks, [f"{q[i]:.1f}" for i in ticks])
    ax.set_yticks(ticks, [f"{q[i]:.1f}" for i in ticks])
    ax.set_xlabel("z1 (standard-normal quantiles)")
    ax.set_ylabel("z2")
    fig.tight_layout()
    return fig


def plot_latent_scatter(z, labels, title=None, size=6):
    """Scatter (n, 2) latent points coloured by label 0-9."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(size, size))
    sc = ax.scatter(z[:, 0], z[:, 1], c=labels, cmap="tab10", s=2, alpha=0.7)
    fig.colorbar(sc, ax=ax, ticks=range(10), label="digit")
    ax.set_xlabel("z1")
    ax.set_ylabel("z2")
    ax.set_aspect("equal")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_history(rows, keys=("elbo", "reconstruction", "kl")):
    """Plot columns of a run's ``log.csv`` rows (as ``train`` returns them) against epoch:
    one panel per key in ``keys``, the training value and, where logged, the evaluated
    (``val_``) value."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.2), squeeze=False)
    epochs = [int(r["epoch"]) for r in rows]
    for ax, metric in zip(axes[0], keys):
        for prefix, label in (("", "train"), ("val_", "test")):
            ys = [float(r[prefix + metric]) for r in rows if r.get(prefix + metric)]
            if ys:
                ax.plot(epochs[:len(ys)], ys, marker="o", label=label)
        ax.set_title(metric + " (nats per image)")
        ax.set_xlabel("epoch")
        ax.legend()
    fig.tight_layout()
    return fig


def show_gif(path, width=None):
    """A GIF file as an image output (``image/gif``): Jupyter and Colab show it inline, and the
    HTML book writes it to a file of its own rather than into the page."""
    from IPython.display import Image

    return Image(data=Path(path).read_bytes(), format="gif", width=width)


def plot_curves(rows, columns, labels=None, title=None, epoch_offset=0):
    """Plot columns of per-epoch rows (dicts, e.g. from a CSV) against the epoch, one panel each.

    ``columns``: a column name or a list of names per panel. ``epoch_offset=1`` turns Keras's
    ``CSVLogger`` epochs (counted from 0) into epochs counted from 1.
    """
    plt = _plt()
    fig, axes = plt.subplots(1, len(columns), figsize=(4.2 * len(columns), 3.2), squeeze=False)
    epochs = [int(float(r["epoch"])) + epoch_offset for r in rows]
    for ax, group, label in zip(axes[0], columns, labels or columns):
        for col in ([group] if isinstance(group, str) else group):
            ax.plot(epochs, [float(r[col]) for r in rows], marker="o", label=col)
        ax.set_xlabel("epoch")
        ax.set_title(label if isinstance(label, str) else ", ".join(label))
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_estimator_variance(n_samples, curves, title=None):
    """Log-log plot of gradient-estimator variance against the number of samples.

    ``curves``: {label: variances (len(n_samples),)}; labels containing "score" are dashed.
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for label, values in curves.items():
        ax.loglog(n_samples, values, marker="o", linestyle="--" if "score" in label else "-",
                  label=label)
    ax.set_xlabel("samples averaged per gradient estimate")
    ax.set_ylabel("variance / |true gradient|$^2$")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_confusion(y_true, y_pred, classes=10, title=None, size=4.2):
    """Confusion matrix as an image: row = true label, column = predicted, cell = count."""
    plt = _plt()
    counts = np.zeros((classes, classes), dtype=int)
    np.add.at(counts, (np.asarray(y_true, int), np.asarray(y_pred, int)), 1)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(counts, cmap="Blues")
    for (i, j), c in np.ndenumerate(counts):
        if c:
            ax.text(j, i, str(c), ha="center", va="center", fontsize=7,
                    color="white" if c > counts.max() / 2 else "black")
    ax.set_xticks(range(classes))
    ax.set_yticks(range(classes))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
