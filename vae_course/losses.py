"""Per-example log-likelihoods, KL divergences and ELBO estimators, in ``keras.ops``.

Every function returns one value per example (shape ``(batch,)``); the caller averages.
They run under any Keras backend.
"""

from __future__ import annotations

import math

from keras import ops

LOG_2PI = math.log(2.0 * math.pi)


def _sum_except_batch(t):
    return ops.sum(ops.reshape(t, (ops.shape(t)[0], -1)), axis=-1)


def gaussian_log_prob(x, mean, log_var):
    """log N(x; mean, diag(exp(log_var))), summed over all but the first axis -> (batch,)."""
    return _sum_except_batch(
        -0.5 * (LOG_2PI + log_var + ops.square(x - mean) * ops.exp(-log_var)))


def standard_normal_log_prob(z):
    """log N(z; 0, I) -> (batch,)."""
    return _sum_except_batch(-0.5 * (LOG_2PI + ops.square(z)))


def bernoulli_log_prob(x, logits):
    """log Bernoulli(x; sigmoid(logits)) summed over pixels -> (batch,).

    ``x``: targets in {0, 1} (or in [0, 1]: then it is minus the binary cross-entropy).
    Written as ``x * logits - softplus(logits)``, which is stable for large |logits|.
    """
    return _sum_except_batch(x * logits - ops.softplus(logits))


def kl_standard_normal(z_mean, z_log_var):
    """KL(N(z_mean, exp(z_log_var)) || N(0, I)) in closed form -> (batch,)."""
    return 0.5 * _sum_except_batch(
        ops.exp(z_log_var) + ops.square(z_mean) - 1.0 - z_log_var)


def kl_normal(mean_q, log_var_q, mean_p, log_var_p):
    """KL(N(mean_q, exp(log_var_q)) || N(mean_p, exp(log_var_p))), diagonal -> (batch,)."""
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
