"""Per-image inference: the best diagonal Gaussian q(z) for each image, found by optimization.

An encoder *amortizes* inference: one network gives q(z|x) for every image. With the decoder
held fixed, each image also has a best diagonal Gaussian of its own,

    q*_x = argmax over (mean, log_var) of ELBO(x; mean, log_var),
    ELBO(x; q) = E_q[log p(x|z)] - KL(q || N(0, I)),

and the gap between the ELBO and log p(x) splits in two (Cremer et al., 2018):

    log p(x) - ELBO(x; encoder) = [log p(x) - ELBO(x; q*_x)]               approximation gap
                                + [ELBO(x; q*_x) - ELBO(x; encoder)]         amortization gap

The first is the price of the Gaussian family, the second the price of one network for all
images. :func:`optimize_gaussian` finds q*_x by gradient ascent: Adam on every image's mean
and log-variance at once, started from the encoder's output, with reparameterized gradients
(fresh noise at every step, or one fixed set) and the KL term in closed form. Adam's update
is per coordinate, so optimizing the sum over images is the same as optimizing each image
alone. :func:`gaussian_elbo_samples` scores any such q; :func:`gaussian_log_weights` gives
importance weights with q as the proposal.

The decoder's gradient with respect to z is taken with the Keras backend's own autodiff
(:func:`vae_course.estimators.values_and_gradients`), so this runs under TensorFlow, JAX and
torch. The model needs only the interface pieces ``posterior``, ``decode_params``, ``log_px``
(and ``decoder_input`` for conditional models); its prior is N(0, I). Everything returned is
NumPy float64, one row per image; means and log-variances have the shape (n, *latent_shape).
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass, field

import numpy as np

from .estimators import values_and_gradients

LOG_2PI = math.log(2.0 * math.pi)
LOG_VAR_RANGE = (-30.0, 20.0)   # as the models clip their encoders' log-variances


def _count(x):
    return len(x[0]) if isinstance(x, tuple) else len(x)


def _take(x, rows):
    return tuple(part[rows] for part in x) if isinstance(x, tuple) else x[rows]


def _tile(x, s):
    """x (n, ...) -> (s * n, ...): s copies, copy-major (row j*n + i is image i)."""
    if isinstance(x, tuple):
        return tuple(_tile(part, s) for part in x)
    x = np.asarray(x)
    return np.concatenate([x] * s, axis=0) if s > 1 else x


def _log_likelihood(model, tiled):
    """f(z) = log p(x_r | z_r) row by row, for images ``tiled`` (already one row per code)."""
    from keras import ops

    decoder_input = getattr(model, "decoder_input", lambda z, x: z)
    tensors = (tuple(ops.convert_to_tensor(t) for t in tiled) if isinstance(tiled, tuple)
               else ops.convert_to_tensor(tiled))

    def f(z):
        return model.log_px(tensors, model.decode_params(decoder_input(z, tensors)))

    return f


_COMPILED = weakref.WeakKeyDictionary()   # model -> TensorFlow function of (x, z)


def _tf_value_and_grad(model, x):
    """Under TensorFlow, one compiled function (x, z) -> (log p(x|z), d/dz) per model: the
    same GradientTape as :func:`vae_course.estimators.values_and_gradients`, traced once (the
    batch axis is left open) instead of run op by op, which is several times faster here."""
    import tensorflow as tf

    parts = x if isinstance(x, tuple) else (x,)
    key = (isinstance(x, tuple),) + tuple((p.shape[1:], str(p.dtype)) for p in parts)
    cache = _COMPILED.setdefault(model, {})
    if key not in cache:
        decoder_input = getattr(model, "decoder_input", lambda z, x: z)
        spec = [tf.TensorSpec((None,) + tuple(p.shape[1:]), tf.as_dtype(p.dtype)) for p in parts]
        latent = tf.TensorSpec((None,) + tuple(model.latent_shape), tf.float32)

        @tf.function(input_signature=[tuple(spec), latent])
        def value_and_grad(xs, z):
            xs = xs if isinstance(x, tuple) else xs[0]
            with tf.GradientTape() as tape:
                tape.watch(z)
                values = model.log_px(xs, model.decode_params(decoder_input(z, xs)))
                total = tf.reduce_sum(values)
            return values, tape.gradient(total, z)

        cache[key] = value_and_grad
    return cache[key]


def log_px(model, x, z, gradient=False, max_decode=2048):
    """log p(x_i | z_si) for codes z (S, n, *latent): (S, n); with ``gradient=True`` also
    d/dz (S, n, *latent). Decodes at most ``max_decode`` codes at a time: without gradients
    through the decoder's compiled predict step, with them through the backend's autodiff
    (compiled once per model under TensorFlow)."""
    import keras
    from keras import ops

    z = np.asarray(z, np.float64)
    S, n = z.shape[:2]
    values = np.empty((S, n))
    grads = np.empty_like(z) if gradient else None
    per = max(1, max_decode // S)                   # images per chunk
    s_chunk = min(S, max_decode)                    # samples per chunk
    compiled = gradient and keras.backend.backend() == "tensorflow"
    decoder_input = getattr(model, "decoder_input", lambda z, x: z)
    for i0 in range(0, n, per):
        rows = slice(i0, min(i0 + per, n))
        for s0 in range(0, S, s_chunk):
            block = z[s0:s0 + s_chunk, rows]
            s, b = block.shape[:2]
            tiled = _tile(_take(x, rows), s)
            flat = block.reshape((s * b,) + block.shape[2:]).astype("float32")
            if compiled:
                parts = tiled if isinstance(tiled, tuple) else (tiled,)
                v, g = _tf_value_and_grad(model, tiled)(parts, flat)
                v, g = np.asarray(v, np.float64), np.asarray(g, np.float64)
            elif gradient:
                v, g = values_and_gradients(_log_likelihood(model, tiled), flat)
            else:
                xs = (tuple(ops.convert_to_tensor(t) for t in tiled)
                      if isinstance(tiled, tuple) else ops.convert_to_tensor(tiled))
                params = model.decode_params(decoder_input(flat, xs), compiled=True)
                v = np.asarray(ops.convert_to_numpy(model.log_px(xs, params)), np.float64)
            if gradient:
                grads[s0:s0 + s, rows] = g.reshape(block.shape)
            values[s0:s0 + s, rows] = v.reshape(s, b)
    return (values, grads) if gradient else values


def _kl_standard_normal(mean, log_var):
    """KL(N(mean, exp(log_var)) || N(0, I)) per image, summed over the latent axes -> (n,)."""
    terms = 0.5 * (np.exp(log_var) + mean ** 2 - 1.0 - log_var)
    return terms.reshape(len(mean), -1).sum(axis=1)


def encoder_gaussian(model, x):
    """The encoder's (mean, log_var) for images x, as float64 NumPy arrays."""
    from keras import ops

    mean, log_var, _ = model.posterior(x)
    return (np.asarray(ops.convert_to_numpy(mean), np.float64),
            np.asarray(ops.convert_to_numpy(log_var), np.float64))


def _check(model, x, mean, log_var):
    mean = np.asarray(mean, np.float64)
    log_var = np.asarray(log_var, np.float64)
    shape = (_count(x),) + tuple(model.latent_shape)
    if mean.shape != shape or log_var.shape != shape:
        raise ValueError(f"Expected mean and log_var of shape {shape} (one row per image). "
                         f"Received {mean.shape} and {log_var.shape}.")
    return mean, log_var


def gaussian_elbo_samples(model, x, mean, log_var, samples=32, seed=0):
    """Single-sample ELBO terms of q = N(mean, diag(exp(log_var))) for each image: (samples, n).

    Row s is log p(x|z_s) - KL(q || N(0, I)) with z_s = mean + exp(log_var / 2) * eps_s and
    the KL in closed form; its average over rows estimates ELBO(x; q). ``seed`` fixes the
    noise eps (NumPy), so two q's scored with the same seed share it (common random numbers:
    the difference of their ELBOs then has a much smaller standard error).
    """
    mean, log_var = _check(model, x, mean, log_var)
    eps = np.random.default_rng(seed).standard_normal((samples,) + mean.shape)
    z = mean[None] + np.exp(0.5 * log_var)[None] * eps
    return log_px(model, x, z) - _kl_standard_normal(mean, log_var)[None]


def gaussian_log_weights(model, x, mean, log_var, k=100, seed=0):
    """Importance weights log p(x, z_k) - log q(z_k) with z_k ~ q = N(mean, diag(exp(log_var))):
    (k, n). Their log-mean-exp over k is an importance-sampled lower bound on log p(x) with
    this q as the proposal (the encoder's is :func:`vae_course.metrics.log_likelihood`)."""
    mean, log_var = _check(model, x, mean, log_var)
    eps = np.random.default_rng(seed).standard_normal((k,) + mean.shape)
    z = mean[None] + np.exp(0.5 * log_var)[None] * eps
    flat = (k, len(mean), -1)
    log_prior = -0.5 * (LOG_2PI + z ** 2).reshape(flat).sum(-1)
    log_q = -0.5 * (LOG_2PI + log_var[None] + eps ** 2).reshape(flat).sum(-1)
    return log_px(model, x, z) + log_prior - log_q


@dataclass
class GaussianFit:
    """What :func:`optimize_gaussian` returns: the optimized q per image and its trace."""

    mean: np.ndarray          # (n, *latent_shape)
    log_var: np.ndarray       # (n, *latent_shape)
    start_mean: np.ndarray    # where it started (the encoder's output by default)
    start_log_var: np.ndarray
    trace: list = field(default_factory=list)   # mean over images of the step's ELBO estimate
    noise: str = "fresh"      # "fresh": new eps every step; "fixed": one set reused
    samples: int = 1
    steps: int = 0
    seconds: float = 0.0


def optimize_gaussian(model, x, steps=300, samples=1, learning_rate=0.02, noise="fresh",
                      mean=None, log_var=None, seed=0, final_fraction=0.1, average=0.25):
    """Maximize each image's ELBO over the mean and log-variance of a diagonal Gaussian q.

    The decoder stays fixed. Starts from the encoder's output (or ``mean``, ``log_var``) and
    runs ``steps`` Adam steps on all images at once. Each step draws ``samples``
    reparameterized codes per image, z = mean + exp(log_var / 2) * eps, and ascends

        d ELBO / d mean    = avg_s f'(z_s) - mean
        d ELBO / d log_var = avg_s f'(z_s) * exp(log_var / 2) * eps_s / 2 - (exp(log_var) - 1) / 2

    with f(z) = log p(x|z) (its gradient from the backend's autodiff) and the KL's gradient in
    closed form. ``noise="fresh"`` draws new eps every step (unbiased gradients: stochastic
    optimization of the true ELBO); ``"fixed"`` reuses one set of ``samples`` draws (a
    deterministic objective, which the optimum over-fits when ``samples`` is small). The step
    size decays linearly from ``learning_rate`` to ``final_fraction`` of it, and the result
    is the average of the iterates over the last ``average`` fraction of the steps
    (Polyak-Ruppert averaging), so the noise of the last steps averages out. Returns a
    :class:`GaussianFit`.
    """
    import time

    if noise not in ("fresh", "fixed"):
        raise ValueError(f"Expected noise='fresh' or 'fixed'. Received: noise={noise!r}")
    for name, value in (("steps", steps), ("samples", samples)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"Expected {name} >= 1, an integer. Received: {name}={value!r}")
    if not learning_rate > 0:
        raise ValueError(f"Expected learning_rate > 0. Received: learning_rate={learning_rate!r}")
    start = time.perf_counter()
    if mean is None or log_var is None:
        enc_mean, enc_log_var = encoder_gaussian(model, x)
        mean = enc_mean if mean is None else mean
        log_var = enc_log_var if log_var is None else log_var
    mean, log_var = _check(model, x, mean, log_var)
    fit = GaussianFit(mean.copy(), log_var.copy(), mean.copy(), log_var.copy(),
                      noise=noise, samples=int(samples), steps=int(steps))
    rng = np.random.default_rng(seed)
    params = [fit.mean, fit.log_var]
    moments = [[np.zeros_like(p), np.zeros_like(p)] for p in params]
    beta1, beta2, tiny = 0.9, 0.999, 1e-8
    fixed = rng.standard_normal((samples,) + mean.shape) if noise == "fixed" else None
    first_averaged = steps - max(1, int(round(average * steps))) + 1
    sums = [np.zeros_like(p) for p in params]
    for t in range(1, steps + 1):
        eps = fixed if fixed is not None else rng.standard_normal((samples,) + mean.shape)
        std = np.exp(0.5 * fit.log_var)
        z = fit.mean[None] + std[None] * eps
        values, dfdz = log_px(model, x, z, gradient=True)
        kl = _kl_standard_normal(fit.mean, fit.log_var)
        fit.trace.append(float(values.mean() - kl.mean()))
        grads = [dfdz.mean(0) - fit.mean,
                 (dfdz * std[None] * eps).mean(0) * 0.5 - 0.5 * (np.exp(fit.log_var) - 1.0)]
        rate = learning_rate * (1.0 - (1.0 - final_fraction) * (t - 1) / max(steps - 1, 1))
        for p, g, m in zip(params, grads, moments):
            m[0] = beta1 * m[0] + (1 - beta1) * g
            m[1] = beta2 * m[1] + (1 - beta2) * g ** 2
            m_hat, v_hat = m[0] / (1 - beta1 ** t), m[1] / (1 - beta2 ** t)
            p += rate * m_hat / (np.sqrt(v_hat) + tiny)          # ascent, in place
        np.clip(fit.log_var, *LOG_VAR_RANGE, out=fit.log_var)
        if t >= first_averaged:
            for total, p in zip(sums, params):
                total += p
    count = steps - first_averaged + 1
    fit.mean, fit.log_var = (total / count for total in sums)
    fit.seconds = time.perf_counter() - start
    return fit


def log_joint_grid(model, x, z1, z2):
    """log p(x|z) + log p(z) of one image on a grid of a 2-D latent: (len(z2), len(z1)).

    ``x``: a batch of one image (or an (images, labels) pair of one). Row r, column c is
    z = (z1[c], z2[r]). Summing exp() of it times the cell area integrates p(x, z) over the
    grid: log p(x) by brute force, where the grid covers the posterior.
    """
    if tuple(model.latent_shape) != (2,):
        raise ValueError(f"Expected a model with a 2-D latent. Received latent_shape="
                         f"{tuple(model.latent_shape)}.")
    if _count(x) != 1:
        raise ValueError(f"Expected a batch of one image. Received {_count(x)}.")
    grid = np.stack(np.meshgrid(np.asarray(z1, np.float64), np.asarray(z2, np.float64)), -1)
    z = grid.reshape(-1, 2)
    log_prior = -0.5 * (2 * LOG_2PI + np.sum(z ** 2, axis=1))
    return (log_px(model, x, z[:, None])[:, 0] + log_prior).reshape(grid.shape[:2])


def mean_and_standard_error(per_image):
    """(mean, standard error of the mean) of per-image values (n,), over images."""
    per_image = np.asarray(per_image, np.float64)
    return float(per_image.mean()), float(per_image.std(ddof=1) / math.sqrt(len(per_image)))
