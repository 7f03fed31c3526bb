import numpy as np
import pytest
from keras import ops

from vae_course import losses


pytestmark = pytest.mark.backends  # also run under JAX and torch (make test: pytest -m backends)

rng = np.random.default_rng(0)


def np_(t):
    return ops.convert_to_numpy(t)


def test_kl_of_identical_standard_normals_is_zero():
    zeros = np.zeros((3, 5), "float32")
    np.testing.assert_array_equal(np_(losses.kl_standard_normal(zeros, zeros)), 0.0)


def test_kl_standard_normal_matches_tfp_and_general_formula(tfd):
    mean = rng.normal(size=(4, 6)).astype("float32")
    log_var = rng.normal(size=(4, 6)).astype("float32")
    std = np.exp(0.5 * log_var)
    expected = tfd.kl_divergence(tfd.Normal(mean, std), tfd.Normal(0.0, 1.0)).numpy().sum(-1)
    np.testing.assert_allclose(np_(losses.kl_standard_normal(mean, log_var)), expected, rtol=1e-5)
    zeros = np.zeros_like(mean)
    np.testing.assert_allclose(np_(losses.kl_normal(mean, log_var, zeros, zeros)), expected,
                               rtol=1e-5)


def test_kl_normal_matches_tfp_between_two_gaussians(tfd):
    m1, lv1, m2, lv2 = (rng.normal(size=(3, 4)).astype("float32") for _ in range(4))
    expected = tfd.kl_divergence(tfd.Normal(m1, np.exp(0.5 * lv1)),
                                 tfd.Normal(m2, np.exp(0.5 * lv2))).numpy().sum(-1)
    np.testing.assert_allclose(np_(losses.kl_normal(m1, lv1, m2, lv2)), expected, rtol=1e-5)


def test_analytic_kl_equals_monte_carlo_mean():
    mean = np.array([[0.5, -1.0]], "float32")
    log_var = np.array([[-1.0, 0.7]], "float32")
    n = 400_000
    z = mean + np.exp(0.5 * log_var) * rng.standard_normal((n, 2)).astype("float32")
    mc = np_(losses.gaussian_log_prob(z, np.repeat(mean, n, 0), np.repeat(log_var, n, 0))
             - losses.standard_normal_log_prob(z))
    exact = float(np_(losses.kl_standard_normal(mean, log_var))[0])
    stderr = mc.std() / np.sqrt(n)
    assert abs(mc.mean() - exact) < 4 * stderr + 1e-4, (mc.mean(), exact, stderr)


def test_log_probs_match_tfp(tfd):
    x = rng.normal(size=(2, 3, 4)).astype("float32")
    mean = rng.normal(size=(2, 3, 4)).astype("float32")
    log_var = rng.normal(size=(2, 3, 4)).astype("float32")
    expected = tfd.Normal(mean, np.exp(0.5 * log_var)).log_prob(x).numpy().reshape(2, -1).sum(-1)
    np.testing.assert_allclose(np_(losses.gaussian_log_prob(x, mean, log_var)), expected,
                               rtol=1e-5)
    bits = (rng.random((2, 5, 5, 1)) < 0.5).astype("float32")
    logits = (5 * rng.normal(size=(2, 5, 5, 1))).astype("float32")
    expected = tfd.Bernoulli(logits=logits).log_prob(bits).numpy().reshape(2, -1).sum(-1)
    np.testing.assert_allclose(np_(losses.bernoulli_log_prob(bits, logits)), expected, rtol=1e-5)


def test_bernoulli_log_prob_is_finite_for_extreme_logits():
    logits = np.array([[-1e4, 1e4, 0.0]], "float32")
    x = np.array([[1.0, 0.0, 1.0]], "float32")
    value = np_(losses.bernoulli_log_prob(x, logits))
    assert np.isfinite(value).all()
    assert value[0] == pytest.approx(-1e4 - 1e4 - np.log(2), rel=1e-6)


def test_elbo_estimators_agree_in_expectation():
    """Monte Carlo and analytic-KL ELBO have the same mean over z ~ q(z|x)."""
    n, d = 200_000, 3
    mean = np.tile(rng.normal(size=(1, d)).astype("float32"), (n, 1))
    log_var = np.tile(rng.normal(size=(1, d)).astype("float32") - 1, (n, 1))
    z = mean + np.exp(0.5 * log_var) * rng.standard_normal((n, d)).astype("float32")
    x = np.ones((n, 1), "float32")
    logits = z[:, :1]  # any decoder: here p(x=1|z) = sigmoid(z_1)
    mc = np_(losses.elbo_monte_carlo(x, logits, z, mean, log_var))
    rec = np_(losses.bernoulli_log_prob(x, logits))
    analytic = rec - np_(losses.kl_standard_normal(mean, log_var))
    diff = mc - analytic
    assert abs(diff.mean()) < 4 * diff.std() / np.sqrt(n)
