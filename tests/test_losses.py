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


# -- discretized logistic: exact in both tails (issue 19) ---------------------------------------

def _log_sigmoid64(t):
    return -np.logaddexp(0.0, -t)


def _discretized_logistic_reference(levels, x, mean, log_scale):
    """float64 log P(bin) and its derivatives wrt mean and log-scale, computed independently.

    Inner bins take the difference of CDFs on the side of the bin away from the mean, where
    it does not cancel: sigmoid(a) - sigmoid(b) left of the mean, sigmoid(-b) - sigmoid(-a)
    right of it (log1p of a ratio below 1 in float64).
    """
    x, mean, log_scale = (np.asarray(v, np.float64) for v in (x, mean, log_scale))
    s = np.exp(log_scale)
    a = (x + 1.0 / 255.0 - mean) / s
    b = (x - 1.0 / 255.0 - mean) / s
    with np.errstate(divide="ignore"):  # each side is used only where it does not cancel
        left = _log_sigmoid64(a) + np.log1p(-np.exp(_log_sigmoid64(b) - _log_sigmoid64(a)))
        right = _log_sigmoid64(-b) + np.log1p(-np.exp(_log_sigmoid64(-a) - _log_sigmoid64(-b)))
    inner = np.where(a + b <= 0, left, right)
    sig = lambda t: np.exp(_log_sigmoid64(t))  # noqa: E731
    w = a - b
    # d/d mean and d/d log_scale of log sigmoid(a) + log sigmoid(-b) + log(1 - exp(-w)),
    # with da/dmean = db/dmean = -1/s, da/dlog_scale = -a, db/dlog_scale = -b, dw/dlog_scale = -w
    d_mean = np.where(levels == 0, -sig(-a) / s,
                      np.where(levels == 255, sig(b) / s, (sig(b) - sig(-a)) / s))
    d_log_scale = np.where(levels == 0, -a * sig(-a),
                           np.where(levels == 255, b * sig(b),
                                    -a * sig(-a) + b * sig(b) - w / np.expm1(w)))
    value = np.where(levels == 0, _log_sigmoid64(a),
                     np.where(levels == 255, _log_sigmoid64(-b), inner))
    return value, d_mean, d_log_scale


def _tail_grid():
    """Levels x means in [-1, 1] x log-scales in [-7, 1], plus means 10 and 20 scales either
    side of each level (kept when inside [-1, 1]): arrays (levels, mean, log_scale)."""
    levels = np.array([0, 1, 2, 64, 127, 128, 200, 253, 254, 255])
    log_scales = np.linspace(-7.0, 1.0, 9)
    x = levels / 127.5 - 1.0
    rows = [(k, m, ls) for k in levels for m in np.linspace(-1.0, 1.0, 9) for ls in log_scales]
    rows += [(k, xk + n * np.exp(ls), ls) for k, xk in zip(levels, x) for ls in log_scales
             for n in (-20.0, -10.0, 10.0, 20.0) if abs(xk + n * np.exp(ls)) <= 1.0]
    rows.append((200, 0.2, -4.0))  # the example: 20 scales below the level
    k, m, ls = (np.array(c) for c in zip(*rows))
    return k, m.astype("float32"), ls.astype("float32")


def test_discretized_logistic_matches_float64_reference_in_both_tails():
    levels, mean, log_scale = _tail_grid()
    x = np_(losses.scale_pixels(levels))
    far = np.abs(x - mean) > 15 * np.exp(log_scale)
    assert (far & (x > mean)).sum() > 20 and (far & (x < mean)).sum() > 20  # both tails covered
    expected, _, _ = _discretized_logistic_reference(levels, x, mean, log_scale)
    value = np_(losses._discretized_logistic_log_probs(x, mean, log_scale)).astype("float64")
    np.testing.assert_allclose(value, expected, rtol=1e-5, atol=1e-4)
    # the example: level 200, mean 0.2, log-scale -4 (the old code gave -27.63)
    assert value[-1] == pytest.approx(-20.96687, abs=1e-4)


def test_discretized_logistic_is_symmetric_under_reflection():
    """log P(k | mean, s) = log P(255 - k | -mean, s): the right tail is the left one mirrored."""
    levels, mean, log_scale = _tail_grid()
    x = np_(losses.scale_pixels(levels))  # mirrored as -x: exact, whatever rounding x had
    value = np_(losses._discretized_logistic_log_probs(x, mean, log_scale))
    mirrored = np_(losses._discretized_logistic_log_probs(-x, -mean, log_scale))
    np.testing.assert_allclose(value, mirrored, rtol=1e-5, atol=1e-4)


def test_discretized_logistic_gradients_are_finite_and_exact_in_both_tails():
    from vae_course.estimators import _values_and_grads

    levels, mean, log_scale = _tail_grid()
    x = np_(losses.scale_pixels(levels))
    params = np.stack([mean, log_scale], axis=-1)                     # (n, 2): rows independent
    _, grads = _values_and_grads(
        lambda p: losses._discretized_logistic_log_probs(x, p[:, 0], p[:, 1]), params)
    assert np.all(np.isfinite(grads))
    _, d_mean, d_log_scale = _discretized_logistic_reference(levels, x, mean, log_scale)
    scale = np.exp(log_scale.astype("float64"))
    # d/d mean is up to 1/scale: compare it in units of 1/scale
    np.testing.assert_allclose(grads[:, 0] * scale, d_mean * scale, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(grads[:, 1], d_log_scale, rtol=1e-3, atol=1e-3)
