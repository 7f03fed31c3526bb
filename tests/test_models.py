import keras
import numpy as np
import pytest
from keras import ops

from vae_course import importance, losses, models


pytestmark = pytest.mark.backends  # also run under JAX and torch (make test: pytest -m backends)


@pytest.fixture
def batch(binary_test_images):
    return binary_test_images[0][:64]


def test_shapes(batch):
    model = models.conv_vae(latent_dim=3, seed=0)
    out = model(batch)
    assert tuple(out["logits"].shape) == (64, 28, 28, 1)
    for key in ("z_mean", "z_log_var", "z"):
        assert tuple(out[key].shape) == (64, 3)
    assert tuple(model.sample(5, seed=1).shape) == (5, 28, 28, 1)


def test_bad_latent_dim_is_refused():
    with pytest.raises(ValueError, match="latent_dim"):
        models.conv_vae(latent_dim=0)


def test_fit_logs_elbo_terms_and_improves(batch):
    keras.utils.set_random_seed(0)
    model = models.conv_vae(latent_dim=2, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(batch, batch_size=32, epochs=5, verbose=0).history
    for key in ("loss", "elbo", "reconstruction", "kl"):
        assert len(history[key]) == 5
    for e in range(5):
        assert history["elbo"][e] == pytest.approx(
            history["reconstruction"][e] - history["kl"][e], rel=1e-4)
        assert history["loss"][e] == pytest.approx(-history["elbo"][e], rel=1e-4)
    assert history["elbo"][-1] > history["elbo"][0] + 15
    result = model.evaluate(batch, verbose=0, return_dict=True)
    assert set(result) >= {"elbo", "reconstruction", "kl"}


def test_beta_weights_only_the_kl_term(batch):
    model = models.conv_vae(latent_dim=2, beta=4.0, seed=0)
    out = model(batch)
    rec, kl = model.elbo_terms(batch, out)
    loss = model.compute_loss(batch, None, out)
    np.testing.assert_allclose(ops.convert_to_numpy(loss),
                               -np.mean(ops.convert_to_numpy(rec - 4.0 * kl)), rtol=1e-5)


def test_monte_carlo_and_analytic_models_share_the_reconstruction(batch):
    model = models.conv_vae(latent_dim=2, kl="monte_carlo", seed=0)
    out = model(batch)
    rec, kl = model.elbo_terms(batch, out)
    expected = losses.elbo_monte_carlo(batch, out["logits"], out["z"], out["z_mean"],
                                       out["z_log_var"])
    np.testing.assert_allclose(ops.convert_to_numpy(rec - kl), ops.convert_to_numpy(expected),
                               rtol=1e-5)


def test_save_load_round_trip(tmp_path, batch):
    model = models.conv_vae(latent_dim=4, kl="monte_carlo", beta=0.5, seed=7)
    model.compile(optimizer="adam")
    model.fit(batch, batch_size=32, epochs=1, verbose=0)
    path = tmp_path / "vae.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, models.VAE)
    assert (loaded.kl, loaded.beta, loaded.latent_dim, loaded.seed) == ("monte_carlo", 0.5, 4, 7)
    for a, b in zip(model.encode(batch), loaded.encode(batch)):
        np.testing.assert_allclose(ops.convert_to_numpy(a), ops.convert_to_numpy(b), atol=1e-6)
    z = np.random.default_rng(0).normal(size=(3, 4)).astype("float32")
    np.testing.assert_allclose(ops.convert_to_numpy(model.decode(z)),
                               ops.convert_to_numpy(loaded.decode(z)), atol=1e-5)
    # The optimizer state came along, so training resumes where it stopped.
    assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations) > 0


def test_mixed_precision_elbo_matches_float32(batch):
    """Under mixed_float16 the networks compute in float16 but the ELBO stays float32."""
    reference = models.conv_vae(latent_dim=2, seed=11)
    expected = reference.elbo_terms(batch, reference(batch))
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        mixed = models.conv_vae(latent_dim=2, seed=11)
        mixed.set_weights(reference.get_weights())
        out = mixed(batch)
        got = mixed.elbo_terms(batch, out)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert mixed.encoder.layers[1].compute_dtype == "float16"
    assert keras.backend.standardize_dtype(out["logits"].dtype) == "float32"
    for a, b in zip(got, expected):
        np.testing.assert_allclose(ops.convert_to_numpy(a), ops.convert_to_numpy(b),
                                   rtol=2e-2, atol=0.5)


# -- the IWAE objective -----------------------------------------------------------------------
def test_iwae_loss_is_the_importance_weighted_bound_of_the_same_draws(batch):
    """iwae_samples=k trains on log (1/k) sum_i w_i: checked against a float64 log-mean-exp
    of the weights drawn with the same noise; the logged ELBO is the mean of those log
    weights, so it can never exceed the bound (Jensen, draw by draw)."""
    k = 6
    model = models.mlp_vae(latent_dim=3, hidden_units=32, hidden_layers=1, seed=0,
                           iwae_samples=k)
    x = batch[:16]
    model.iwae_noise = keras.random.SeedGenerator(5)
    loss = float(ops.convert_to_numpy(model.compute_loss(x, None, None)))
    parts = importance.gaussian_log_weights(model, x, k, seed=keras.random.SeedGenerator(5),
                                        parts=True)
    log_px, log_pz, log_q = (ops.convert_to_numpy(t).astype("float64") for t in parts)
    log_w = log_px + log_pz - log_q                                      # (k, 16)
    top = log_w.max(axis=0)
    bound = top + np.log(np.mean(np.exp(log_w - top), axis=0))
    assert loss == pytest.approx(-bound.mean(), rel=1e-5)
    iwae, elbo = float(model.iwae_tracker.result()), float(model.elbo_tracker.result())
    assert iwae == pytest.approx(bound.mean(), rel=1e-5)
    assert elbo == pytest.approx(log_w.mean(), rel=1e-5)
    assert float(model.kl_tracker.result()) == pytest.approx((log_q - log_pz).mean(), rel=1e-4)
    assert iwae > elbo


def test_iwae_training_fits_logs_the_bound_and_survives_saving(tmp_path, batch):
    keras.utils.set_random_seed(0)
    model = models.mlp_vae(latent_dim=4, hidden_units=32, hidden_layers=1, seed=3,
                           iwae_samples=3)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    # 50 images in batches of 32: the last batch is partial (a dynamic batch size)
    history = model.fit(batch[:50], batch_size=32, epochs=2, verbose=0).history
    assert history["loss"][-1] == pytest.approx(-history["iwae"][-1], rel=1e-5)
    assert history["iwae"][-1] > history["elbo"][-1]
    path = tmp_path / "iwae.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert (loaded.iwae_samples, loaded.seed) == (3, 3)
    with pytest.raises(ValueError, match=r"iwae_samples an integer in \[1, 4096\].*0"):
        models.mlp_vae(latent_dim=2, iwae_samples=0)
    with pytest.raises(ValueError, match="beta 1 with iwae_samples"):
        models.mlp_vae(latent_dim=2, beta=0.5, iwae_samples=2).compute_loss(batch[:4])


def test_the_iwae_preset_builds_a_model_that_trains_on_the_bound():
    from vae_course.configs import get_preset
    from vae_course.factory import build_model

    config = get_preset("mnist-mlp-iwae")
    model = build_model(config)
    assert (model.iwae_samples, model.latent_dim) == (config.iwae_samples, 50)
    assert config.iwae_samples > 1 and build_model(config.replace(iwae_samples=1)).iwae_samples == 1
