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


# -- the linear-Gaussian model is probabilistic PCA (Tipping & Bishop, 1999) ------------------
def _correlated_data(n=3000, D=8, seed=0):
    rng = np.random.default_rng(seed)
    mixing = rng.standard_normal((D, D)) * np.linspace(2.0, 0.2, D)
    return rng.standard_normal((n, D)) @ mixing.T + rng.standard_normal(D)


def test_mean_log_marginal_is_the_average_of_log_marginal():
    from vae_course.linear_gaussian import ppca

    x = _correlated_data(n=200, D=5)
    model = ppca(x, 2)
    assert model.mean_log_marginal(x) == pytest.approx(
        np.mean([model.log_marginal(row) for row in x]), rel=1e-10)
    with pytest.raises(ValueError, match=r"\(n, 5\)"):
        model.mean_log_marginal(x[:, :4])


@pytest.mark.parametrize("k", [1, 3, 6])
def test_ppca_sigma2_is_the_mean_discarded_eigenvalue_and_w_spans_pca(k):
    from vae_course import pca
    from vae_course.linear_gaussian import ppca

    x = _correlated_data()
    model = ppca(x, k)
    full = pca.PCA(x.shape[1]).fit(x)
    assert model.sigma ** 2 == pytest.approx(full.explained_variance[k:].mean(), rel=1e-9)
    np.testing.assert_allclose(model.b, x.mean(axis=0), atol=1e-12)
    angles = pca.principal_angles(model.W, pca.PCA(k).fit(x).components.T, degrees=True)
    assert angles.max() < 1e-5
    # Column j of W has length sqrt(lambda_j - sigma^2) (Tipping & Bishop's closed form).
    np.testing.assert_allclose(np.linalg.norm(model.W, axis=0),
                               np.sqrt(full.explained_variance[:k] - model.sigma ** 2), rtol=1e-8)


def test_ppca_is_a_maximum_of_the_likelihood():
    from vae_course.linear_gaussian import LinearGaussian, ppca

    x = _correlated_data(seed=1)
    k = 3
    model = ppca(x, k)
    best = model.mean_log_marginal(x)
    # Stationary point of the likelihood in W: S C^-1 W = W (Tipping & Bishop, eq. 10).
    xc = x - x.mean(axis=0)
    S = xc.T @ xc / len(x)
    _, C = model.marginal()
    np.testing.assert_allclose(S @ np.linalg.solve(C, model.W), model.W, atol=1e-8)
    # Any rotation of W gives the same model; any other change lowers the likelihood.
    rotation, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((k, k)))
    assert LinearGaussian(model.W @ rotation, model.b, model.sigma).mean_log_marginal(x) == (
        pytest.approx(best, rel=1e-10))
    rng = np.random.default_rng(2)
    for _ in range(30):
        for other in (LinearGaussian(model.W + 0.05 * rng.standard_normal(model.W.shape),
                                     model.b, model.sigma),
                      LinearGaussian(model.W, model.b + 0.05 * rng.standard_normal(model.D),
                                     model.sigma),
                      LinearGaussian(model.W, model.b, model.sigma * rng.uniform(0.8, 1.25))):
            assert other.mean_log_marginal(x) < best
    # pPCA of a higher dimension explains the data at least as well.
    assert ppca(x, k + 1).mean_log_marginal(x) >= best


def test_ppca_checks_its_arguments():
    from vae_course.linear_gaussian import ppca

    x = _correlated_data(n=50, D=4)
    for bad in (0, 4, 2.5):
        with pytest.raises(ValueError, match="n_components"):
            ppca(x, bad)
    with pytest.raises(ValueError, match="sigma"):
        ppca(np.repeat(x[:, :1], 4, axis=1), 2)     # data on a line: nothing left for sigma^2


def test_ppca_posterior_mean_is_the_whitened_pca_code_shrunk():
    from vae_course import pca
    from vae_course.linear_gaussian import ppca

    x = _correlated_data(seed=3)
    k = 3
    model, reference = ppca(x, k), pca.PCA(k).fit(x)
    lam = reference.explained_variance
    expected = reference.encode(x[:10]) / np.sqrt(lam) * np.sqrt(1 - model.sigma ** 2 / lam)
    got = np.stack([model.posterior(row)[0] for row in x[:10]])
    np.testing.assert_allclose(got, expected, atol=1e-10)
