import numpy as np
import pytest

from vae_course import pca


@pytest.fixture(scope="module")
def gaussian_data():
    rng = np.random.default_rng(0)
    scales = np.array([5.0, 3.0, 2.0, 1.0, 0.5, 0.1])
    rotation, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    return (rng.standard_normal((2000, 6)) * scales) @ rotation.T + 3.0


def test_pca_matches_numpy_svd(gaussian_data):
    x = gaussian_data
    p = pca.PCA(3).fit(x)
    xc = x - x.mean(0)
    _, s, vt = np.linalg.svd(xc, full_matrices=False)
    np.testing.assert_allclose(p.explained_variance, s[:3] ** 2 / len(x), rtol=1e-10)
    # Same directions up to sign.
    np.testing.assert_allclose(np.abs(np.sum(p.components * vt[:3], axis=1)), 1.0, atol=1e-10)
    np.testing.assert_allclose(p.components @ p.components.T, np.eye(3), atol=1e-10)
    assert p.explained_variance_ratio.sum() == pytest.approx(np.sum(s[:3] ** 2) / np.sum(s**2))


def test_svd_and_covariance_methods_agree(gaussian_data):
    a = pca.PCA(4, method="svd").fit(gaussian_data)
    b = pca.PCA(4, method="covariance").fit(gaussian_data)
    np.testing.assert_allclose(a.components, b.components, atol=1e-8)
    np.testing.assert_allclose(a.encode(gaussian_data), b.encode(gaussian_data), atol=1e-6)


def test_shapes_and_round_trip(gaussian_data):
    p = pca.PCA(2).fit(gaussian_data)
    z = p.encode(gaussian_data[:10])
    assert z.shape == (10, 2)
    assert p.decode(z).shape == (10, 6)
    full = pca.PCA(6).fit(gaussian_data)
    np.testing.assert_allclose(full.reconstruct(gaussian_data), gaussian_data, atol=1e-9)
    with pytest.raises(ValueError, match="Expected codes of shape"):
        p.decode(np.zeros((3, 5)))
    two = full.first(2)
    np.testing.assert_allclose(two.reconstruct(gaussian_data), p.reconstruct(gaussian_data), atol=1e-9)


def test_error_decreases_with_components(gaussian_data):
    errors = [pca.squared_error(gaussian_data, pca.PCA(k).fit(gaussian_data).reconstruct(gaussian_data)).mean()
              for k in range(1, 7)]
    assert all(a > b for a, b in zip(errors, errors[1:]))
    # The mean error equals the variance left in the discarded directions.
    p = pca.PCA(2).fit(gaussian_data)
    assert errors[1] == pytest.approx(p.total_variance - p.explained_variance.sum(), rel=1e-9)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="Expected n_components > 0. Received: n_components=0"):
        pca.PCA(0)
    with pytest.raises(ValueError, match="method"):
        pca.PCA(2, method="eig")
    with pytest.raises(RuntimeError, match="not fitted"):
        pca.PCA(2).encode(np.zeros((3, 4)))


def test_principal_angles():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((10, 3))
    mixed = a @ rng.standard_normal((3, 3))          # same column space, another basis
    np.testing.assert_allclose(pca.principal_angles(a, mixed), 0.0, atol=1e-6)
    e = np.eye(4)
    angles = pca.principal_angles(e[:, :2], np.stack([e[:, 0], (e[:, 1] + e[:, 2]) / np.sqrt(2)], 1),
                                  degrees=True)
    np.testing.assert_allclose(angles, [0.0, 45.0], atol=1e-6)


def test_knn_accuracy():
    train = np.array([[0.0, 0.0], [0.1, 0.0], [0.0, 0.1], [5.0, 5.0], [5.1, 5.0], [5.0, 5.1]])
    labels = np.array([0, 0, 0, 1, 1, 1])
    assert pca.knn_accuracy(train, labels, [[0.2, 0.2], [4.9, 4.8]], [0, 1], k=3) == 1.0
    assert pca.knn_accuracy(train, labels, [[0.2, 0.2], [4.9, 4.8]], [1, 1], k=3) == 0.5


@pytest.mark.slow
def test_30d_pca_reproduces_hinton_salakhutdinov(mnist):
    (x_train, _), (x_test, _) = mnist
    p = pca.PCA(30, method="covariance").fit(x_train)
    error = pca.squared_error(x_test, p.reconstruct(x_test)).mean()
    assert error == pytest.approx(13.87, abs=0.5)


def test_linear_autoencoder_loss_is_a_trace_and_never_beats_pca(gaussian_data):
    # The PCA chapter: with the biases at their optimum, the linear autoencoder's mean error
    # is tr((I - M) C (I - M)^T) with M = W_d W_e, and (Eckart-Young) at least the sum of the
    # discarded eigenvalues, which M = V_k V_k^T attains.
    x = gaussian_data
    n, d = x.shape
    mean = x.mean(0)
    cov = (x - mean).T @ (x - mean) / n
    p = pca.PCA(2).fit(x)
    discarded = p.total_variance - p.explained_variance.sum()
    rng = np.random.default_rng(3)
    for _ in range(5):
        m = rng.standard_normal((d, 2)) @ rng.standard_normal((2, d))
        residual = (x - mean) @ (np.eye(d) - m).T
        error = np.mean(np.sum(residual**2, axis=1))
        assert error == pytest.approx(np.trace((np.eye(d) - m) @ cov @ (np.eye(d) - m).T))
        assert error > discarded
    v = p.components.T
    best = np.mean(np.sum(((x - mean) @ (np.eye(d) - v @ v.T)) ** 2, axis=1))
    assert best == pytest.approx(discarded, rel=1e-10)


def test_random_subspace_angle_follows_the_wachter_edge():
    # The PCA chapter's exercise: the largest cosine between two random k-dim subspaces of R^D
    # approaches 2 sqrt(c (1 - c)), c = k / D <= 1/2.
    rng = np.random.default_rng(0)
    d, k = 400, 40
    c = k / d
    fixed = np.linalg.qr(rng.standard_normal((d, k)))[0]
    smallest = [pca.principal_angles(rng.standard_normal((d, k)), fixed).min() for _ in range(5)]
    assert np.cos(np.mean(smallest)) == pytest.approx(2 * np.sqrt(c * (1 - c)), abs=0.05)
