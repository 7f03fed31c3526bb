"""The reparameterization chapter's claims: both gradient estimators are unbiased, the
reparameterized one has lower variance, and a hand-written GradientTape step is the fit step."""

import keras
import numpy as np
import pytest
from keras import ops

from vae_course import estimators, losses
from vae_course.models import mlp_vae


pytestmark = pytest.mark.backends  # also run under JAX and torch (make test: pytest -m backends)

MU = np.array([0.3, 0.2, -0.1])
LOG_VAR = np.array([0.0, -1.0, 0.5])
TOY = estimators.QuadraticToy([1.0, -0.5, 2.0])


@pytest.mark.parametrize("name", ["score_function", "reparameterized"])
def test_estimator_is_unbiased_on_the_toy(name):
    g_mu, g_lv = estimators.ESTIMATORS[name](TOY, MU, LOG_VAR, n=200_000, seed=1)
    mean, se = estimators.mean_and_standard_error(np.concatenate([g_mu, g_lv], axis=1))
    exact = np.concatenate(TOY.gradient(MU, LOG_VAR))
    assert np.all(np.abs(mean - exact) < 4.5 * se), (mean, exact, se)
    assert np.all(se < 0.1)  # the check has teeth: a wrong term would be far outside 4.5 se


def test_baseline_keeps_score_function_unbiased_and_reparameterized_wins():
    exact = np.concatenate(TOY.gradient(MU, LOG_VAR))
    plain = np.concatenate(estimators.score_function(TOY, MU, LOG_VAR, 100_000, seed=2), 1)
    based = np.concatenate(estimators.score_function(
        TOY, MU, LOG_VAR, 100_000, seed=2, baseline=TOY.expectation(MU, LOG_VAR)), 1)
    reparam = np.concatenate(estimators.reparameterized(TOY, MU, LOG_VAR, 100_000, seed=2), 1)
    mean, se = estimators.mean_and_standard_error(based)
    assert np.all(np.abs(mean - exact) < 4.5 * se)
    v_plain, v_based, v_reparam = (estimators.variance_of_mean(d, [1, 10])
                                   for d in (plain, based, reparam))
    assert v_based[0] < v_plain[0] and v_reparam[0] < v_based[0]
    # Averaging n draws divides the variance by n (measured, so only roughly).
    assert v_reparam[1] == pytest.approx(v_reparam[0] / 10, rel=0.1)


def test_variance_of_mean_needs_two_groups():
    with pytest.raises(ValueError, match="2 groups"):
        estimators.variance_of_mean(np.zeros((10, 2)), [6])


def _tape_step(model, x, seed):
    """The tutorial-style step, written out: encode, sample, decode, -ELBO, gradients."""
    import tensorflow as tf

    noise = keras.random.SeedGenerator(seed)
    with tf.GradientTape() as tape:
        z_mean, z_log_var = ops.split(model.encoder(x), 2, axis=-1)
        z_log_var = ops.clip(z_log_var, -30.0, 20.0)
        eps = keras.random.normal(ops.shape(z_mean), seed=noise)
        z = z_mean + ops.exp(0.5 * z_log_var) * eps
        logits = model.decoder(z)
        loss = -ops.mean(losses.bernoulli_log_prob(x, logits)
                         - model.beta * losses.kl_standard_normal(z_mean, z_log_var))
    return float(loss), tape.gradient(loss, model.trainable_variables)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="TensorFlow-only: compares fit with the chapter's hand-written "
                           "tf.GradientTape step")
def test_gradient_tape_step_equals_fit_step(binary_test_images):
    x = binary_test_images[0][:64]
    keras.utils.set_random_seed(0)
    fitted = mlp_vae(latent_dim=4, hidden_units=64, hidden_layers=1, beta=2.0, seed=7)
    taped = mlp_vae(latent_dim=4, hidden_units=64, hidden_layers=1, beta=2.0, seed=7)
    taped.set_weights(fitted.get_weights())  # the same weights, and fresh samplers seeded 7
    before = [v.numpy().copy() for v in fitted.trainable_variables]
    lr = 0.5
    fitted.compile(optimizer=keras.optimizers.SGD(lr))
    history = fitted.fit(x, batch_size=64, epochs=1, shuffle=False, verbose=0).history
    fit_grads = [(b - v.numpy()) / lr for b, v in zip(before, fitted.trainable_variables)]
    loss, tape_grads = _tape_step(taped, x, seed=7)
    assert history["loss"][0] == pytest.approx(loss, rel=1e-6)
    for g_fit, g_tape in zip(fit_grads, tape_grads):
        np.testing.assert_allclose(g_fit, g_tape.numpy(), atol=2e-6)
    # A different noise seed gives a different loss: the comparison is not vacuous.
    other, _ = _tape_step(taped, x, seed=8)
    assert other != pytest.approx(loss, rel=1e-6)


# -- the revised chapter's claims ------------------------------------------------------------
def test_values_and_gradients_is_public_and_keeps_its_old_name():
    values, grads = estimators.values_and_gradients(TOY, np.array([[0.0, 0.0, 0.0]]))
    np.testing.assert_allclose(values, [1.0 + 0.25 + 4.0], rtol=1e-6)
    np.testing.assert_allclose(grads, [[-2.0, 1.0, -4.0]], rtol=1e-6)
    assert estimators._values_and_grads is estimators.values_and_gradients


def test_a_baseline_that_includes_the_draw_shrinks_the_gradient_by_n_minus_1_over_n():
    # the exercise's claim: with the plain mean of the n draws as baseline, the estimate's
    # expectation is (n - 1) / n times the gradient; leaving the draw out removes the bias
    from vae_course.exercises.reparameterization import score_with_baseline_reference

    n, groups = 4, 40_000
    eps = np.random.default_rng(5).standard_normal((groups, n, 3))
    sigma = np.exp(0.5 * LOG_VAR)
    values = TOY(ops.convert_to_tensor(MU + sigma * eps))
    values = np.asarray(ops.convert_to_numpy(values), np.float64)
    score = np.concatenate([eps / sigma, 0.5 * (eps ** 2 - 1)], axis=-1)
    plain = ((values - values.mean(1, keepdims=True))[..., None] * score).reshape(-1, 6)
    f = lambda z: np.asarray(ops.convert_to_numpy(TOY(ops.convert_to_tensor(z))))  # noqa: E731
    loo = np.concatenate([np.concatenate(score_with_baseline_reference(f, MU, LOG_VAR, e), 1)
                          for e in eps[:5000]])
    exact = np.concatenate(TOY.gradient(MU, LOG_VAR))
    for pool, expected in ((plain, exact * (n - 1) / n), (loo, exact)):
        mean, se = estimators.mean_and_standard_error(pool)
        assert np.all(np.abs(mean - expected) < 4.5 * se), (mean, expected, se)
    mean, se = estimators.mean_and_standard_error(plain)
    assert np.any(np.abs(mean - exact) > 4.5 * se)      # the bias is visible at this size


def test_a_disc_of_radius_sqrt_of_minus_2_log_005_holds_95_percent_of_a_2d_gaussian():
    r = np.sqrt(-2 * np.log(0.05))
    z = np.random.default_rng(0).standard_normal((400_000, 2))
    inside = np.mean(np.sum(z ** 2, axis=1) < r ** 2)
    assert inside == pytest.approx(0.95, abs=0.002)
    # and the +-4 sigma square holds (1 - 2 Phi(-4))^2 of it
    from statistics import NormalDist

    assert np.mean(np.all(np.abs(z) < 4, axis=1)) == pytest.approx(
        (1 - 2 * NormalDist().cdf(-4)) ** 2, abs=1e-4)
