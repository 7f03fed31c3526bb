"""Per-example log-likelihoods, KL divergences and ELBO estimators, in ``keras.ops``.

Every function returns one value per example (shape ``(batch,)``); the caller averages.
They run under any Keras backend.
"""

from __future__ import annotations

import math

import numpy as np
from keras import ops

LOG_2PI = math.log(2.0 * math.pi)


def _tensors(*args):
    """Arguments as backend tensors, so NumPy inputs work under every backend.

    Under torch, ``ndarray - Tensor`` (NumPy on the left of an operator) raises a TypeError;
    converting first keeps every operator between tensors.
    """
    return tuple(ops.convert_to_tensor(a) for a in args)


def _sum_except_batch(t):
    return ops.sum(ops.reshape(t, (ops.shape(t)[0], -1)), axis=-1)


def gaussian_log_prob(x, mean, log_var):
    """log N(x; mean, diag(exp(log_var))), summed over all but the first axis -> (batch,)."""
    x, mean, log_var = _tensors(x, mean, log_var)
    return _sum_except_batch(
        -0.5 * (LOG_2PI + log_var + ops.square(x - mean) * ops.exp(-log_var)))


def standard_normal_log_prob(z):
    """log N(z; 0, I) -> (batch,)."""
    (z,) = _tensors(z)
    return _sum_except_batch(-0.5 * (LOG_2PI + ops.square(z)))


def bernoulli_log_prob(x, logits):
    """log Bernoulli(x; sigmoid(logits)) summed over pixels -> (batch,).

    ``x``: targets in {0, 1} (or in [0, 1]: then it is minus the binary cross-entropy).
    Written as ``x * logits - softplus(logits)``, which is stable for large |logits|.
    """
    x, logits = _tensors(x, logits)
    return _sum_except_batch(x * logits - ops.softplus(logits))


def kl_standard_normal_elementwise(z_mean, z_log_var):
    """KL(N(z_mean, exp(z_log_var)) || N(0, 1)) of each coordinate, same shape as z_mean."""
    z_mean, z_log_var = _tensors(z_mean, z_log_var)
    return 0.5 * (ops.exp(z_log_var) + ops.square(z_mean) - 1.0 - z_log_var)


def kl_standard_normal(z_mean, z_log_var):
    """KL(N(z_mean, exp(z_log_var)) || N(0, I)) in closed form -> (batch,)."""
    return _sum_except_batch(kl_standard_normal_elementwise(z_mean, z_log_var))


def reparameterized_log_prob(eps, log_var):
    """log N(z; mean, diag(exp(log_var))) at z = mean + exp(log_var / 2) * eps -> (batch,).

    Written with the noise eps, log N(eps; 0, I) - sum(log_var) / 2, so it needs neither the
    mean nor a division by the variance: exact for any width of the posterior.
    """
    eps, log_var = _tensors(eps, log_var)
    return standard_normal_log_prob(eps) - 0.5 * _sum_except_batch(log_var)


def kl_normal(mean_q, log_var_q, mean_p, log_var_p):
    """KL(N(mean_q, exp(log_var_q)) || N(mean_p, exp(log_var_p))), diagonal -> (batch,)."""
    mean_q, log_var_q, mean_p, log_var_p = _tensors(mean_q, log_var_q, mean_p, log_var_p)
    return 0.5 * _sum_except_batch(
        log_var_p - log_var_q
        + (ops.exp(log_var_q) + ops.square(mean_q - mean_p)) * ops.exp(-log_var_p)
        - 1.0)


def elbo_monte_carlo(x, logits, z, z_mean, z_log_var):
    """Single-sample ELBO: log p(x|z) + log p(z) - log q(z|x), z ~ q(z|x) -> (batch,).

    The TensorFlow tutorial's estimator. Unbiased.
    """
    return (bernoulli_log_prob(x, logits) + standard_normal_log_prob(z)
            - gaussian_log_prob(z, z_mean, z_log_var))


def elbo_analytic(x, logits, z_mean, z_log_var):
    """ELBO with the KL term in closed form: log p(x|z) - KL(q(z|x) || p(z)) -> (batch,).

    Same expectation as :func:`elbo_monte_carlo`. Fewer terms are sampled, but that does not
    guarantee lower variance: the sampled terms of the Monte Carlo form are negatively
    correlated and partly cancel (measured in the conv-VAE chapter).
    """
    return bernoulli_log_prob(x, logits) - kl_standard_normal(z_mean, z_log_var)


# -- 8-bit colour images -------------------------------------------------------------------
# Pixels k in {0, ..., 255} are mapped to x = k / 127.5 - 1 in [-1, 1]; each value owns the bin
# [x - 1/255, x + 1/255], and the two end bins stretch to -inf and +inf, so the 256
# probabilities of a sub-pixel sum to one.
BIN_HALF_WIDTH = 1.0 / 255.0
MIX_PARAMS_PER_COMPONENT = 10  # 1 mixture logit + 3 means + 3 log-scales + 3 colour coefficients


def scale_pixels(x):
    """uint8 (or integer-valued float) pixels in [0, 255] -> float32 in [-1, 1]."""
    return ops.cast(x, "float32") / 127.5 - 1.0


def _discretized_logistic_log_probs(x, mean, log_scale):
    """log P(bin of x) under Logistic(mean, exp(log_scale)) discretized to 256 bins (elementwise).

    With a = (x + 1/255 - mean) / scale and b = (x - 1/255 - mean) / scale, an inner bin has
    probability sigmoid(a) - sigmoid(b). Its exact factorization

        sigmoid(a) - sigmoid(b) = sigmoid(a) * sigmoid(-b) * (1 - exp(-(a - b)))

    gives log P = -softplus(-a) - softplus(b) + log(-expm1(-(a - b))), where a - b = 2/255/scale
    is formed directly rather than as a difference of CDFs. Every term is accurate in float32
    for any a and b: in the left tail (both CDFs tiny), in the right tail (both CDFs near 1,
    where a difference of log-CDFs cancels; issue 19) and for narrow bins. No term can be NaN
    or infinite, so the gradients stay finite. The bin of 0 is (-inf, b'] and the bin of 255
    is [a', inf).
    """
    x, mean, log_scale = _tensors(x, mean, log_scale)
    inv_scale = ops.exp(-log_scale)
    centered = x - mean
    plus = inv_scale * (centered + BIN_HALF_WIDTH)
    minus = inv_scale * (centered - BIN_HALF_WIDTH)
    log_cdf_plus = -ops.softplus(-plus)                    # log sigmoid(plus)
    log_sf_minus = -ops.softplus(minus)                    # log(1 - sigmoid(minus))
    # bin width in scale units; the floor only acts for log_scale > 22.7 (mixture_params clips to 7)
    width = ops.maximum(2.0 * BIN_HALF_WIDTH * inv_scale, 1e-12)
    inner = log_cdf_plus + log_sf_minus + ops.log(-ops.expm1(-width))
    return ops.where(x < -0.999, log_cdf_plus,
                     ops.where(x > 0.999, log_sf_minus, inner))


def mixture_params(params, nr_mix):
    """Split decoder output (b, h, w, 10 * nr_mix) -> (logits, means, log_scales, coeffs).

    ``logits`` (b, h, w, nr_mix); the other three (b, h, w, 3, nr_mix). ``coeffs`` are in
    (-1, 1): G's mean moves with R, and B's with R and G (Salimans et al., 2017).
    """
    (params,) = _tensors(params)
    shape = ops.shape(params)
    logits = params[..., :nr_mix]
    rest = ops.reshape(params[..., nr_mix:], (shape[0], shape[1], shape[2], 3, 3 * nr_mix))
    means = rest[..., :nr_mix]
    log_scales = ops.clip(rest[..., nr_mix:2 * nr_mix], -7.0, 7.0)
    coeffs = ops.tanh(rest[..., 2 * nr_mix:])
    return logits, means, log_scales, coeffs


def discretized_mix_logistic_log_prob(x, params, nr_mix):
    """log p(x) of 8-bit RGB images under a per-pixel mixture of discretized logistics -> (batch,).

    ``x``: pixels scaled to [-1, 1] (see :func:`scale_pixels`), (b, h, w, 3).
    ``params``: decoder output (b, h, w, 10 * nr_mix). Within a pixel, each component is
    autoregressive over the colours (R, then G given R, then B given R and G); across pixels
    the decoder's distribution factorizes given z. Every sub-pixel's 256 probabilities sum to 1.
    """
    logits, means, log_scales, coeffs = mixture_params(params, nr_mix)
    x = ops.cast(x, "float32")[..., None]                            # (b, h, w, 3, 1)
    r, g = x[..., 0, :], x[..., 1, :]
    mean_r = means[..., 0, :]
    mean_g = means[..., 1, :] + coeffs[..., 0, :] * r
    mean_b = means[..., 2, :] + coeffs[..., 1, :] * r + coeffs[..., 2, :] * g
    means = ops.stack([mean_r, mean_g, mean_b], axis=3)
    log_probs = ops.sum(_discretized_logistic_log_probs(x, means, log_scales), axis=3)
    if nr_mix == 1:                                                   # no mixture weights
        return _sum_except_batch(log_probs)
    log_probs = log_probs + ops.log_softmax(logits, axis=-1)          # (b, h, w, nr_mix)
    return _sum_except_batch(ops.logsumexp(log_probs, axis=-1))


def uniform_8bit_log_prob(x):
    """log p(x) when each sub-pixel is uniform over its 256 levels: -D log 256 -> (batch,)."""
    return _sum_except_batch(ops.zeros_like(ops.cast(x, "float32")) - math.log(256.0))


def bernoulli_256_log_prob(x, logits):
    """A Bernoulli decoder's output made into a distribution over the 256 levels -> (batch,).

    Cross-entropy on pixels scaled to [0, 1] scores level k with f(k) = exp(t*logit - softplus(logit)),
    t = k / 255, which does not sum to 1 over k (for logit = 0 it sums to 128). Dividing by
    the sum, a geometric series in exp(logit / 255), gives a proper categorical:

        log p(k) = t * logit - log sum_j exp(j * logit / 255)

    ``x``: uint8 levels (or integer-valued floats in [0, 255]); ``logits``: the decoder output.
    """
    (logits,) = _tensors(logits)
    a = logits / 255.0
    t = ops.cast(x, "float32") / 255.0
    # log sum_{j=0}^{255} exp(a j) = log((exp(256 a) - 1) / (exp(a) - 1)), written stably
    # for either sign of a, with the limit log 256 at a = 0.
    abs_a = ops.maximum(ops.abs(a), 1e-9)
    log_norm = (ops.maximum(a, 0.0) * 255.0 + ops.log(-ops.expm1(-256.0 * abs_a))
                - ops.log(-ops.expm1(-abs_a)))
    return _sum_except_batch(t * logits - log_norm)


def scale_for_replicas(loss):
    """A replica's mean loss divided by the number of replicas (tf.distribute; else unchanged).

    Under ``tf.distribute.MirroredStrategy`` each replica sees ``global_batch / n`` examples
    and the replicas' gradients are *summed*; Keras's own losses divide by ``n`` for that, so a
    ``compute_loss`` returning its own mean must too (Keras's loss tracker undoes it for the
    logged value). TensorFlow-only, and a no-op on other backends and outside a strategy.
    """
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        n = tf.distribute.get_strategy().num_replicas_in_sync
        if n > 1:
            loss = loss * (1.0 / n)
    return loss


def bits_per_dim(nll_nats, dims):
    """Negative log-likelihood in nats per image -> bits per dimension: nll / (dims * ln 2).

    ``dims``: numbers per image (3,072 for CIFAR-10's 32x32x3). Works on NumPy values and
    backend tensors alike.
    """
    if not isinstance(nll_nats, (int, float)) and not hasattr(nll_nats, "shape"):
        nll_nats = np.asarray(nll_nats)
    return nll_nats / (dims * math.log(2.0))
