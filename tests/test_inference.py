"""Per-image Gaussian inference (vae_course.inference): the optimized q is the exact posterior
where that is a diagonal Gaussian, the best diagonal Gaussian where it is not, never worse than
the encoder's q, and never above log p(x) (computed by quadrature for a 2-D latent)."""

import math

import keras
import numpy as np
import pytest
from keras import layers, ops

from vae_course import estimators, inference, linear_gaussian, losses

pytestmark = pytest.mark.backends   # runs under TensorFlow, JAX and torch


class LinearGaussianModel:
    """The linear-Gaussian model of the ELBO chapter in the interface's terms: decoder
    z -> W z + b, a Gaussian likelihood of fixed variance sigma^2, and an "encoder" that
    returns a deliberately poor guess, N(0, I), for every image."""

    def __init__(self, lg):
        self.lg = lg
        self.latent_shape = (lg.d,)

    def posterior(self, x):
        n = len(x)
        return np.zeros((n, self.lg.d), "float32"), np.zeros((n, self.lg.d), "float32"), None

    def decode_params(self, z, compiled=False):
        w = ops.convert_to_tensor(self.lg.W.T.astype("float32"))
        b = ops.convert_to_tensor(self.lg.b.astype("float32"))   # tensors only: torch refuses
        return ops.matmul(ops.cast(z, "float32"), w) + b         # Tensor + ndarray

    def log_px(self, x, params):
        log_var = ops.full_like(params, 2.0 * math.log(self.lg.sigma))
        return losses.gaussian_log_prob(ops.cast(x, "float32"), params, log_var)


def _images(lg, n, seed):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, lg.d))
    return (z @ lg.W.T + lg.b + lg.sigma * rng.standard_normal((n, lg.D))).astype("float32")


def test_optimized_q_is_the_exact_posterior_when_that_is_a_diagonal_gaussian():
    # W with orthogonal columns: the posterior covariance (I + W^T W / sigma^2)^-1 is diagonal
    q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((6, 2)))
    lg = linear_gaussian.LinearGaussian(q * [2.0, 1.0], np.zeros(6), 0.5)
    model, x = LinearGaussianModel(lg), _images(lg, 4, seed=1)
    fit = inference.optimize_gaussian(model, x, steps=400, samples=16, learning_rate=0.1)
    for i in range(len(x)):
        mean, cov = lg.posterior(x[i])
        std = np.sqrt(np.diag(cov))
        # a stochastic optimizer: within a tenth of a posterior standard deviation
        np.testing.assert_allclose(fit.mean[i], mean, atol=0.1 * std.min())
        np.testing.assert_allclose(np.exp(0.5 * fit.log_var[i]), std, rtol=0.1)
        # and then the ELBO is log p(x): the gap closes
        exact = lg.elbo(x[i], fit.mean[i], np.diag(np.exp(fit.log_var[i])))
        assert exact == pytest.approx(lg.log_marginal(x[i]), abs=0.02)


def test_optimized_q_is_the_best_diagonal_gaussian_for_a_correlated_posterior():
    lg = linear_gaussian.LinearGaussian.random(D=5, d=2, sigma=0.7, seed=3)
    model, x = LinearGaussianModel(lg), _images(lg, 3, seed=4)
    fit = inference.optimize_gaussian(model, x, steps=400, samples=16, learning_rate=0.1)
    for i in range(len(x)):
        mean, cov = lg.posterior(x[i])
        best_var = 1.0 / np.diag(np.linalg.inv(cov))     # mean field: the precision's diagonal
        best = lg.elbo(x[i], mean, np.diag(best_var))
        got = lg.elbo(x[i], fit.mean[i], np.diag(np.exp(fit.log_var[i])))
        assert best - 0.02 <= got <= best + 1e-9
        assert best < lg.log_marginal(x[i]) - 0.01        # the approximation gap is real here


def test_fixed_noise_repeats_and_the_trace_rises():
    lg = linear_gaussian.LinearGaussian.random(D=5, d=2, sigma=0.7, seed=3)
    model, x = LinearGaussianModel(lg), _images(lg, 3, seed=4)
    a = inference.optimize_gaussian(model, x, steps=50, samples=4, noise="fixed", seed=7)
    b = inference.optimize_gaussian(model, x, steps=50, samples=4, noise="fixed", seed=7)
    np.testing.assert_array_equal(a.mean, b.mean)
    assert a.trace[-1] > a.trace[0] and a.noise == "fixed" and len(a.trace) == 50
    np.testing.assert_array_equal(a.start_mean, 0.0)        # started from the "encoder"


class TinyBernoulli:
    """A small nonlinear model, 2-D latent, 12 binary pixels: its posterior is not Gaussian
    and log p(x) can be computed by quadrature on a grid over z."""

    latent_shape = (2,)

    def __init__(self, seed=0):
        keras.utils.set_random_seed(seed)
        self.decoder = keras.Sequential([keras.Input((2,)), layers.Dense(8, activation="tanh"),
                                         layers.Dense(12)])
        self.encoder = keras.Sequential([keras.Input((12,)), layers.Dense(4)])
        big = [w * 2.0 for w in self.decoder.get_weights()]   # a posterior well inside the grid
        self.decoder.set_weights(big)

    def posterior(self, x):
        mean, log_var = ops.split(ops.cast(self.encoder(x), "float32"), 2, axis=-1)
        return mean, log_var, None

    def decode_params(self, z, compiled=False):
        return ops.cast(self.decoder(z), "float32")

    def log_px(self, x, params):
        return losses.bernoulli_log_prob(ops.cast(x, "float32"), params)


def _log_marginal_by_quadrature(model, x, half_width=6.0, n=241):
    """log p(x) = log of the integral of p(x|z) p(z) dz on an n x n grid over [-6, 6]^2."""
    grid = np.linspace(-half_width, half_width, n)
    cell = (grid[1] - grid[0]) ** 2
    return np.array([np.logaddexp.reduce(inference.log_joint_grid(model, image[None], grid, grid),
                                         axis=None) + math.log(cell) for image in x])


@pytest.fixture(scope="module")
def tiny():
    model = TinyBernoulli()
    rng = np.random.default_rng(5)
    z = rng.standard_normal((6, 2)).astype("float32")
    probs = ops.convert_to_numpy(ops.sigmoid(model.decode_params(z)))
    x = (rng.random(probs.shape) < probs).astype("float32")
    return model, x, _log_marginal_by_quadrature(model, x)


def test_optimized_elbo_beats_the_encoder_and_stays_below_log_px(tiny):
    model, x, log_px = tiny
    fit = inference.optimize_gaussian(model, x, steps=300, samples=8, learning_rate=0.05)
    enc = inference.gaussian_elbo_samples(model, x, fit.start_mean, fit.start_log_var,
                                          samples=2000, seed=1)
    opt = inference.gaussian_elbo_samples(model, x, fit.mean, fit.log_var, samples=2000,
                                          seed=1)
    se = opt.std(0) / math.sqrt(len(opt))
    assert np.all(opt.mean(0) > enc.mean(0))                 # the untrained encoder is poor
    assert np.all(opt.mean(0) <= log_px + 4 * se)            # an ELBO never exceeds log p(x)
    # importance sampling with the optimized q as proposal closes the rest of the gap
    log_w = inference.gaussian_log_weights(model, x, fit.mean, fit.log_var, k=4000, seed=2)
    bound = np.logaddexp.reduce(log_w, axis=0) - math.log(len(log_w))
    np.testing.assert_allclose(bound, log_px, atol=0.05)
    assert np.all(bound >= opt.mean(0) - 4 * se)


def test_log_px_in_chunks_and_its_gradient_match_the_direct_computation(tiny):
    model, x, _ = tiny
    z = np.random.default_rng(0).standard_normal((5, len(x), 2))
    whole, grads = inference.log_px(model, x, z, gradient=True)
    chunked = inference.log_px(model, x, z, max_decode=7)
    np.testing.assert_allclose(chunked, whole, rtol=1e-5, atol=1e-4)
    for s in range(len(z)):
        direct = ops.convert_to_numpy(model.log_px(x, model.decode_params(z[s].astype("f4"))))
        np.testing.assert_allclose(whole[s], direct, rtol=1e-5, atol=1e-4)
        f = lambda zz: model.log_px(x, model.decode_params(zz))       # noqa: E731
        _, by_tape = estimators.values_and_gradients(f, z[s])
        np.testing.assert_allclose(grads[s], by_tape, rtol=1e-4, atol=1e-5)


def test_a_conditional_model_takes_images_and_labels():
    from vae_course import conditional

    model = conditional.conditional_vae(latent_dim=2, seed=0)
    images = (np.random.default_rng(0).random((3, 28, 28, 1)) < 0.2).astype("float32")
    x = (images, np.array([1, 7, 3]))
    fit = inference.optimize_gaussian(model, x, steps=3)
    assert fit.mean.shape == (3, 2) and np.all(np.isfinite(fit.trace))
    z = fit.mean[None]
    direct = model.log_px(x, model.decode_params(model.decoder_input(
        ops.convert_to_tensor(fit.mean, "float32"), x)))
    np.testing.assert_allclose(inference.log_px(model, x, z)[0], ops.convert_to_numpy(direct),
                               rtol=1e-5)


def test_the_grid_puts_z1_along_columns_and_z2_along_rows(tiny):
    model, x, _ = tiny
    z1, z2 = np.array([-1.0, 0.0, 2.0]), np.array([0.5, -0.5])
    grid = inference.log_joint_grid(model, x[:1], z1, z2)
    z = np.array([[z1[2], z2[0]]])
    expected = inference.log_px(model, x[:1], z[:, None])[0, 0] - np.log(2 * np.pi) - 0.5 * (
        z ** 2).sum()
    assert grid.shape == (2, 3) and grid[0, 2] == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="one image"):
        inference.log_joint_grid(model, x[:2], z1, z2)


def test_bad_arguments_are_refused():
    lg = linear_gaussian.LinearGaussian.random(D=5, d=2, sigma=0.7, seed=3)
    model, x = LinearGaussianModel(lg), _images(lg, 3, seed=4)
    with pytest.raises(ValueError, match="noise='fresh' or 'fixed'"):
        inference.optimize_gaussian(model, x, noise="common")
    with pytest.raises(ValueError, match="steps >= 1"):
        inference.optimize_gaussian(model, x, steps=0)
    with pytest.raises(ValueError, match=r"shape \(3, 2\)"):
        inference.gaussian_elbo_samples(model, x, np.zeros((2, 2)), np.zeros((2, 2)))
