"""Looking inside a trained VAE: per-dimension KL, active units, latent walks, and the figures
of the ELBO and reparameterization chapters. Figures are returned, never shown."""

from __future__ import annotations

import numpy as np
from keras import ops


def _np(t):
    return np.asarray(ops.convert_to_numpy(t))


def encode_all(model, x, batch_size=1000):
    """(z_mean, z_log_var) as numpy, each (n, latent_dim), encoded in batches."""
    parts = [model.encode(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
    return (np.concatenate([_np(m) for m, _ in parts]),
            np.concatenate([_np(v) for _, v in parts]))


def kl_per_dimension(model, x):
    """Average over images of KL(q(z_j|x) || N(0, 1)) for each latent dimension j -> (latent_dim,)."""
    z_mean, z_log_var = encode_all(model, x)
    return (0.5 * (np.exp(z_log_var) + z_mean ** 2 - 1.0 - z_log_var)).mean(axis=0)


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
    return _np(model.decode(z, apply_sigmoid=True))


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
    z = np.tile(mean, (n * n, 1)).astype("float32")
    za, zb = np.meshgrid(a, b[::-1])
    z[:, i], z[:, j] = za.ravel(), zb.ravel()
    probs = _np(model.decode(z, apply_sigmoid=True))[..., 0]
    h, w = probs.shape[1:]
    return probs.reshape(n, n, h, w).transpose(0, 2, 1, 3).reshape(n * h, n * w), a, b


def plot_curves(rows, columns, labels=None, title=None, epoch_offset=0):
    """Plot columns of per-epoch rows (dicts, e.g. from a CSV) against the epoch, one panel each.

    ``columns``: a column name or a list of names per panel. ``epoch_offset=1`` turns Keras's
    ``CSVLogger`` epochs (counted from 0) into epochs counted from 1.
    """
    import matplotlib.pyplot as plt

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
    import matplotlib.pyplot as plt

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
