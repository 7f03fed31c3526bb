"""Two Monte Carlo estimators of the gradient of an expectation under a diagonal Gaussian.

We want g = d/d(theta) E_{z ~ q_theta}[f(z)] with q_theta = N(mu, diag(exp(log_var))) and
theta = (mu, log_var). One draw z gives one estimate of g:

- **score function** (REINFORCE): (f(z) - baseline) * d/d(theta) log q_theta(z), where
      d log q / d mu      = (z - mu) / sigma^2
      d log q / d log_var = ((z - mu)^2 / sigma^2 - 1) / 2
  It needs only values of f; any constant baseline keeps it unbiased (E[d log q] = 0).
- **reparameterized** (pathwise): with z = mu + sigma * eps, eps ~ N(0, I),
      d f / d mu      = f'(z)
      d f / d log_var = f'(z) * sigma * eps / 2
  It needs the derivative f'(z), and usually has a much smaller variance.

The functions here return one estimate per draw, shapes (n, d) for mu and for log_var, so
callers can average any number of them and measure variances. ``f`` maps z (n, d) to (n,);
its derivative is taken with the Keras backend's autodiff (TensorFlow, JAX or torch).
"""

from __future__ import annotations

import math

import numpy as np


def _draw(mu, log_var, n, seed):
    mu = np.asarray(mu, dtype=np.float64)
    log_var = np.asarray(log_var, dtype=np.float64)
    if mu.shape != log_var.shape or mu.ndim != 1:
        raise ValueError(f"Expected mu and log_var of the same shape (d,). "
                         f"Received {mu.shape} and {log_var.shape}.")
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"Expected n >= 1 draws. Received: n={n!r}")
    eps = np.random.default_rng(seed).standard_normal((n, len(mu)))
    return mu, log_var, eps, mu + np.exp(0.5 * log_var) * eps


def values_and_gradients(f, z):
    """f(z) (n,) and df/dz (n, ...) as numpy float64; rows are independent draws.

    The gradient of sum(f(z)) is taken with the Keras backend's own autodiff
    (``tf.GradientTape``, ``jax.vjp`` or ``torch.autograd``); row i only depends on z[i],
    so it is df/dz per draw.
    """
    import keras

    z = np.asarray(z, np.float32)
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        z = tf.constant(z)
        with tf.GradientTape() as tape:
            tape.watch(z)
            values = f(z)
            total = tf.reduce_sum(values)
        grads = tape.gradient(total, z)
    elif backend == "jax":
        import jax

        values, vjp = jax.vjp(f, jax.numpy.asarray(z))
        (grads,) = vjp(jax.numpy.ones_like(values))
    elif backend == "torch":
        import torch

        z = keras.ops.convert_to_tensor(z).requires_grad_(True)   # on Keras's device
        values = f(z)
        (grads,) = torch.autograd.grad(values.sum(), z)
        values = values.detach()
    else:
        raise NotImplementedError(f"Expected the tensorflow, jax or torch Keras backend. "
                                  f"Received: {backend!r}")
    return (np.asarray(keras.ops.convert_to_numpy(values), np.float64),
            np.asarray(keras.ops.convert_to_numpy(grads), np.float64))


_values_and_grads = values_and_gradients   # the name this module used first


def score_function(f, mu, log_var, n, seed=0, baseline=0.0):
    """n single-draw score-function estimates: (grad_mu (n, d), grad_log_var (n, d))."""
    mu, log_var, eps, z = _draw(mu, log_var, n, seed)
    values, _ = values_and_gradients(f, z)
    weight = (values - baseline)[:, None]
    var = np.exp(log_var)
    return weight * (z - mu) / var, weight * 0.5 * ((z - mu) ** 2 / var - 1.0)


def reparameterized(f, mu, log_var, n, seed=0):
    """n single-draw reparameterized estimates: (grad_mu (n, d), grad_log_var (n, d))."""
    mu, log_var, eps, z = _draw(mu, log_var, n, seed)
    _, dfdz = values_and_gradients(f, z)
    return dfdz, dfdz * 0.5 * np.exp(0.5 * log_var) * eps


ESTIMATORS = {"score_function": score_function, "reparameterized": reparameterized}


def variance_of_mean(single_draws, n_samples):
    """Total variance (summed over coordinates) of the average of ``n`` draws, for each n.

    ``single_draws``: (N, p) independent single-draw estimates. For each n the pool is cut into
    N // n groups of n; the variance of the group means is measured (not predicted), summed
    over the p coordinates. Returns a float64 array, one entry per n.
    """
    single_draws = np.asarray(single_draws, np.float64)
    out = []
    for n in n_samples:
        groups = len(single_draws) // n
        if groups < 2:
            raise ValueError(f"Expected at least 2 groups of {n} draws. "
                             f"Received a pool of {len(single_draws)}.")
        means = single_draws[:groups * n].reshape(groups, n, -1).mean(axis=1)
        out.append(means.var(axis=0, ddof=1).sum())
    return np.array(out)


def mean_and_standard_error(single_draws):
    """(mean (p,), standard error (p,)) of (N, p) single-draw estimates."""
    single_draws = np.asarray(single_draws, np.float64)
    return (single_draws.mean(0),
            single_draws.std(0, ddof=1) / math.sqrt(len(single_draws)))


class QuadraticToy:
    """f(z) = sum_j (z_j - a_j)^2 under z ~ N(mu, diag(exp(log_var))).

    E[f] = |mu - a|^2 + sum_j exp(log_var_j), so the exact gradient is
    d/d mu = 2 (mu - a) and d/d log_var = exp(log_var).
    """

    def __init__(self, a):
        self.a = np.asarray(a, dtype=np.float64)

    def __call__(self, z):
        from keras import ops

        return ops.sum(ops.square(z - ops.cast(self.a, z.dtype)), axis=-1)

    def expectation(self, mu, log_var):
        return float(np.sum((np.asarray(mu) - self.a) ** 2) + np.sum(np.exp(log_var)))

    def gradient(self, mu, log_var):
        """Exact (d/d mu (d,), d/d log_var (d,))."""
        return 2.0 * (np.asarray(mu, np.float64) - self.a), np.exp(np.asarray(log_var, np.float64))
