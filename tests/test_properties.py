"""Property-based tests (hypothesis) of the loss and KL functions at extreme but valid inputs.

Means up to |1e3|, log-variances over the whole clipped range [-30, 20] of the models and
beyond it to [-30, 30], logits up to |100|, logistic log-scales over their clip range
[-7, 7]: every value must be finite, KLs non-negative and log-probabilities <= 0.
"""

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from keras import ops

from vae_course import losses

settings.register_profile("vae", max_examples=60, deadline=None, derandomize=True)
settings.load_profile("vae")

DIM = 6
means = arrays("float32", (2, DIM), elements=st.floats(-1e3, 1e3, width=32))
log_vars = arrays("float32", (2, DIM), elements=st.floats(-30, 30, width=32))
logits = arrays("float32", (2, 16), elements=st.floats(-100, 100, width=32))
binary = arrays("float32", (2, 16), elements=st.sampled_from([0.0, 1.0]))


def np_(t):
    return np.asarray(ops.convert_to_numpy(t), dtype="float64")


@given(means, log_vars)
def test_kl_to_standard_normal_is_finite_and_non_negative(mean, log_var):
    kl = np_(losses.kl_standard_normal(mean, log_var))
    assert kl.shape == (2,)
    assert np.all(np.isfinite(kl)) and np.all(kl >= 0)
    # Closed form in float64 (the float32 value is within rounding of it).
    m, v = mean.astype("float64"), log_var.astype("float64")
    exact = 0.5 * np.sum(np.exp(v) + m ** 2 - 1 - v, axis=-1)
    np.testing.assert_allclose(kl, exact, rtol=1e-4, atol=1e-3)


@given(means, log_vars, means, log_vars)
def test_kl_between_gaussians_is_finite_non_negative_and_zero_on_itself(mq, vq, mp, vp):
    vq, vp = np.clip(vq, -20, 20), np.clip(vp, -20, 20)  # exp(vq - vp) stays in float32
    kl = np_(losses.kl_normal(mq, vq, mp, vp))
    assert np.all(np.isfinite(kl)) and np.all(kl >= -1e-3 * (1 + np.abs(kl)))
    assert np.all(np.abs(np_(losses.kl_normal(mq, vq, mq, vq))) < 1e-3)


@given(means, log_vars)
def test_gaussian_log_density_is_finite_and_highest_at_the_mean(mean, log_var):
    at_mean = np_(losses.gaussian_log_prob(mean, mean, log_var))
    off = np_(losses.gaussian_log_prob(mean + 1.0, mean, log_var))
    assert np.all(np.isfinite(at_mean))
    assert np.all(off[np.isfinite(off)] <= at_mean[np.isfinite(off)] + 1e-3)
    np.testing.assert_allclose(
        at_mean, -0.5 * np.sum(math.log(2 * math.pi) + log_var.astype("float64"), axis=-1),
        rtol=1e-5, atol=1e-3)


@given(binary, logits)
def test_bernoulli_log_likelihood_is_finite_and_non_positive(x, logit):
    lp = np_(losses.bernoulli_log_prob(x, logit))
    assert np.all(np.isfinite(lp)) and np.all(lp <= 0)
    p = 1 / (1 + np.exp(-logit.astype("float64")))
    with np.errstate(divide="ignore"):
        exact = np.sum(np.where(x == 1, np.log(p), np.log1p(-p)), axis=-1)
    ok = np.isfinite(exact)
    np.testing.assert_allclose(lp[ok], exact[ok], rtol=1e-4, atol=1e-3)


@given(binary, logits, means, log_vars)
def test_elbo_is_finite_and_below_the_reconstruction_term(x, logit, mean, log_var):
    elbo = np_(losses.elbo_analytic(x, logit, mean, log_var))
    rec = np_(losses.bernoulli_log_prob(x, logit))
    assert np.all(np.isfinite(elbo)) and np.all(elbo <= rec + 1e-3)


@given(arrays("float32", (3, 4, 4, 3), elements=st.integers(0, 255).map(float)),
       arrays("float32", (3, 4, 4, 10), elements=st.floats(-50, 50, width=32)))
def test_discretized_logistic_is_finite_and_a_log_probability(levels, params):
    lp = np_(losses.discretized_mix_logistic_log_prob(losses.scale_pixels(levels), params, 1))
    assert lp.shape == (3,)
    assert np.all(np.isfinite(lp)) and np.all(lp <= 1e-4)


@given(st.floats(-1.0, 1.0), st.floats(-7.0, 7.0))
def test_one_sub_pixel_sums_to_one_for_any_mean_and_scale(mean, log_scale):
    x = losses.scale_pixels(np.arange(256, dtype="float32"))
    lp = np_(losses._discretized_logistic_log_probs(x, np.float32(mean), np.float32(log_scale)))
    assert np.all(np.isfinite(lp)) and np.all(lp <= 1e-6)
    assert abs(np.exp(lp).sum() - 1.0) < 1e-4


@given(arrays("float32", (2, 16), elements=st.integers(0, 255).map(float)), logits)
def test_normalized_bernoulli_over_256_levels_is_a_log_probability(levels, logit):
    lp = np_(losses.bernoulli_256_log_prob(levels, logit))
    assert np.all(np.isfinite(lp)) and np.all(lp <= 1e-3)
