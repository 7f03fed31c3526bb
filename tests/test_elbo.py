"""The ELBO chapter's claims: closed-form KL, the linear-Gaussian identity, the MLP VAE."""

import keras
import numpy as np
import pytest
from keras import ops

from vae_course import configs, losses, networks
from vae_course.linear_gaussian import LinearGaussian, gaussian_kl, random_gaussian
from vae_course.models import mlp_vae
from vae_course.factory import build_model


pytestmark = pytest.mark.backends  # also run under JAX and torch (make test: pytest -m backends)


def mvn(tfd, mean, cov):
    return tfd.MultivariateNormalTriL(mean, np.linalg.cholesky(cov))


def test_closed_form_kl_matches_monte_carlo_and_tfp(tfd):
    rng = np.random.default_rng(0)
    mu_q, lv_q = rng.normal(size=(1, 3)).astype("float32"), rng.normal(size=(1, 3)).astype("float32")
    mu_p, lv_p = rng.normal(size=(1, 3)).astype("float32"), rng.normal(size=(1, 3)).astype("float32")
    closed = float(losses.kl_normal(mu_q, lv_q, mu_p, lv_p)[0])
    q = tfd.MultivariateNormalDiag(mu_q[0], np.exp(0.5 * lv_q[0]))
    p = tfd.MultivariateNormalDiag(mu_p[0], np.exp(0.5 * lv_p[0]))
    assert closed == pytest.approx(float(tfd.kl_divergence(q, p)), rel=1e-5)
    z = q.sample(400_000, seed=1)
    log_ratio = (q.log_prob(z) - p.log_prob(z)).numpy().astype(np.float64)
    se = log_ratio.std() / np.sqrt(len(log_ratio))
    assert abs(log_ratio.mean() - closed) < 4 * se
    # The standard-normal special case agrees with the general formula.
    zeros = np.zeros_like(mu_q)
    np.testing.assert_allclose(ops.convert_to_numpy(losses.kl_standard_normal(mu_q, lv_q)),
                               ops.convert_to_numpy(losses.kl_normal(mu_q, lv_q, zeros, zeros)),
                               rtol=1e-6)


def test_full_covariance_kl_matches_tfp_and_is_zero_only_for_equal_gaussians(tfd):
    mu_q, cov_q = random_gaussian(3, seed=1)
    mu_p, cov_p = random_gaussian(3, seed=2)
    q = mvn(tfd, mu_q, cov_q)
    p = mvn(tfd, mu_p, cov_p)
    assert gaussian_kl(mu_q, cov_q, mu_p, cov_p) == pytest.approx(
        float(tfd.kl_divergence(q, p)), rel=1e-8)
    assert gaussian_kl(mu_q, cov_q, mu_q, cov_q) == pytest.approx(0.0, abs=1e-12)
    assert gaussian_kl(mu_q, cov_q, mu_p, cov_p) != pytest.approx(gaussian_kl(mu_p, cov_p, mu_q, cov_q))


@pytest.mark.parametrize("seed", range(5))
def test_linear_gaussian_elbo_plus_kl_is_log_marginal(tfd, seed):
    model = LinearGaussian.random(D=6, d=3, sigma=0.7, seed=seed)
    x = model.sample(1, seed=100 + seed)[0][0]
    log_px = model.log_marginal(x)
    # log p(x) by tfp, independently of the closed form used by the class.
    mean, cov = model.marginal()
    assert log_px == pytest.approx(
        float(mvn(tfd, mean, cov).log_prob(x)), abs=1e-9)
    for s in range(20):
        mu, cov_q = random_gaussian(3, seed=1000 * seed + s, scale=0.8)
        elbo = model.elbo(x, mu, cov_q)
        assert abs(elbo + model.kl_to_posterior(x, mu, cov_q) - log_px) < 1e-8
        assert elbo == pytest.approx(model.elbo_joint_form(x, mu, cov_q), abs=1e-9)
        assert elbo < log_px
    post_mean, post_cov = model.posterior(x)
    assert model.elbo(x, post_mean, post_cov) == pytest.approx(log_px, abs=1e-9)
    # The closed-form ELBO is the expectation that the Monte Carlo average estimates.
    mc, se = model.elbo_monte_carlo(x, mu, cov_q, n=50_000, seed=seed)
    assert abs(mc - elbo) < 4 * se


def test_linear_gaussian_posterior_is_bayes_rule(tfd):
    model = LinearGaussian.random(D=4, d=2, sigma=0.3, seed=3)
    x = model.sample(1, seed=4)[0][0]
    mean, cov = model.posterior(x)
    z = np.random.default_rng(5).normal(size=(10, 2))
    bayes = model.log_joint(x, z) - model.log_marginal(x)
    direct = mvn(tfd, mean, cov).log_prob(z).numpy()
    np.testing.assert_allclose(bayes, direct, atol=1e-9)


def test_mlp_vae_shapes_and_config_dispatch(binary_test_images):
    x = binary_test_images[0][:8]
    model = mlp_vae(latent_dim=3, hidden_units=32, hidden_layers=2, seed=0)
    out = model(x)
    assert tuple(out["logits"].shape) == (8, 28, 28, 1)
    assert tuple(out["z_mean"].shape) == (8, 3)
    built = build_model(configs.get_preset("mnist-mlp"))
    assert built.name == "mlp_vae" and built.latent_dim == 32
    assert [l.units for l in built.encoder.layers if isinstance(l, keras.layers.Dense)] == [400, 400, 64]
    assert build_model(configs.get_preset("mnist-conv")).name == "conv_vae"


def test_mlp_config_fields_are_checked_and_leave_conv_presets_alone():
    assert configs.get_preset("mnist-conv").hidden_units is None
    with pytest.raises(ValueError, match="hidden_units"):
        configs.TrainConfig(model="conv", hidden_units=100)
    with pytest.raises(ValueError, match="hidden_layers"):
        configs.TrainConfig(model="mlp", hidden_layers=0)
    with pytest.raises(ValueError, match="hidden_units"):
        networks.build_dense_encoder(2, hidden_units=())


def test_mlp_vae_save_load_round_trip(tmp_path, binary_test_images):
    x = binary_test_images[0][:16]
    model = mlp_vae(latent_dim=2, hidden_units=16, hidden_layers=1, beta=4.0, seed=3)
    model.compile(optimizer="adam")
    model.fit(x, batch_size=8, epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert (loaded.beta, loaded.latent_dim) == (4.0, 2)
    np.testing.assert_allclose(ops.convert_to_numpy(loaded.encode(x)[0]),
                               ops.convert_to_numpy(model.encode(x)[0]), atol=1e-6)
