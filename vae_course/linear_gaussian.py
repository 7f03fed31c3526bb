"""A latent-variable model where everything is known exactly: the linear-Gaussian model.

    z ~ N(0, I_d),        x | z ~ N(W z + b, sigma^2 I_D)

Its marginal p(x) = N(x; b, W W^T + sigma^2 I), its posterior p(z|x) is Gaussian, and for any
Gaussian q(z) = N(mu, Sigma) the ELBO and KL(q || p(z|x)) have closed forms. The ELBO chapter
uses it to check log p(x) = ELBO(q) + KL(q || p(z|x)) to numerical precision.

It is probabilistic PCA (Tipping & Bishop, 1999): :func:`ppca` fits it to data by maximum
likelihood in closed form, and its W spans the principal subspace of :class:`vae_course.pca.PCA`.

Everything is float64 numpy. ``x``: (D,); ``mu``: (d,); ``cov``: (d, d) symmetric positive
definite (a diagonal q is ``np.diag(variances)``).
"""

from __future__ import annotations

import math

import numpy as np

from .pca import flatten

LOG_2PI = math.log(2.0 * math.pi)


def _logdet(a):
    sign, value = np.linalg.slogdet(a)
    if sign <= 0:
        raise ValueError("Expected a positive definite matrix. Received one with det <= 0.")
    return value


def gaussian_log_density(x, mean, cov):
    """log N(x; mean, cov) for one point x (D,) and a full covariance (D, D)."""
    diff = np.asarray(x, float) - mean
    return -0.5 * (len(diff) * LOG_2PI + _logdet(cov) + diff @ np.linalg.solve(cov, diff))


def gaussian_kl(mean_q, cov_q, mean_p, cov_p):
    """KL(N(mean_q, cov_q) || N(mean_p, cov_p)) for full covariances, in nats."""
    d = len(mean_q)
    diff = mean_p - mean_q
    return 0.5 * (np.trace(np.linalg.solve(cov_p, cov_q)) + diff @ np.linalg.solve(cov_p, diff)
                  - d + _logdet(cov_p) - _logdet(cov_q))


class LinearGaussian:
    """z ~ N(0, I_d), x | z ~ N(W z + b, sigma^2 I_D). ``W``: (D, d), ``b``: (D,), ``sigma`` > 0."""

    def __init__(self, W, b, sigma):
        self.W = np.asarray(W, dtype=np.float64)
        self.b = np.asarray(b, dtype=np.float64)
        if self.W.ndim != 2 or self.b.shape != (self.W.shape[0],):
            raise ValueError(f"Expected W of shape (D, d) and b of shape (D,). "
                             f"Received W {self.W.shape} and b {self.b.shape}.")
        if not sigma > 0:
            raise ValueError(f"Expected sigma > 0. Received: sigma={sigma!r}")
        self.sigma = float(sigma)
        self.D, self.d = self.W.shape

    @classmethod
    def random(cls, D=5, d=2, sigma=0.5, seed=0):
        rng = np.random.default_rng(seed)
        return cls(rng.standard_normal((D, d)), rng.standard_normal(D), sigma)

    # -- the exact quantities ---------------------------------------------------------------
    def marginal(self):
        """(mean, cov) of p(x) = N(b, W W^T + sigma^2 I)."""
        return self.b, self.W @ self.W.T + self.sigma ** 2 * np.eye(self.D)

    def log_marginal(self, x):
        """log p(x), exactly."""
        return gaussian_log_density(x, *self.marginal())

    def mean_log_marginal(self, x):
        """The average of log p(x_i) over the rows of a data set ``x`` (n, D), exactly.

        Only the data's mean and covariance enter: with S_b = mean_i (x_i - b)(x_i - b)^T and
        C = W W^T + sigma^2 I, the average is -(D log 2 pi + log det C + tr(C^-1 S_b)) / 2.
        """
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.D:
            raise ValueError(f"Expected data of shape (n, {self.D}). Received: shape {x.shape}")
        _, cov = self.marginal()
        chol = np.linalg.cholesky(cov)
        whitened = np.linalg.solve(chol, (x - self.b).T)               # (D, n)
        logdet = 2.0 * np.sum(np.log(np.diag(chol)))
        return -0.5 * (self.D * LOG_2PI + logdet + np.sum(whitened ** 2) / len(x))

    def posterior(self, x):
        """(mean, cov) of p(z|x): cov = (I + W^T W / sigma^2)^-1, mean = cov W^T (x - b) / sigma^2."""
        s2 = self.sigma ** 2
        cov = np.linalg.inv(np.eye(self.d) + self.W.T @ self.W / s2)
        return cov @ self.W.T @ (np.asarray(x, float) - self.b) / s2, cov

    # -- the ELBO of a Gaussian q(z) = N(mu, cov), in closed form -----------------------------
    def expected_log_likelihood(self, x, mu, cov):
        """E_q[log p(x|z)]: the reconstruction term."""
        resid = np.asarray(x, float) - self.W @ mu - self.b
        s2 = self.sigma ** 2
        return -0.5 * (self.D * (LOG_2PI + math.log(s2))
                       + (resid @ resid + np.trace(self.W @ cov @ self.W.T)) / s2)

    def kl_to_prior(self, mu, cov):
        """KL(q || p(z)) with p(z) = N(0, I)."""
        return gaussian_kl(mu, cov, np.zeros(self.d), np.eye(self.d))

    def elbo(self, x, mu, cov):
        """ELBO(q) = E_q[log p(x|z)] - KL(q || p(z))."""
        return self.expected_log_likelihood(x, mu, cov) - self.kl_to_prior(mu, cov)

    def elbo_joint_form(self, x, mu, cov):
        """The same ELBO written as E_q[log p(x, z)] + H(q), computed term by term."""
        expected_log_prior = -0.5 * (self.d * LOG_2PI + mu @ mu + np.trace(cov))
        entropy = 0.5 * (self.d * (LOG_2PI + 1.0) + _logdet(cov))
        return self.expected_log_likelihood(x, mu, cov) + expected_log_prior + entropy

    def kl_to_posterior(self, x, mu, cov):
        """KL(q || p(z|x)), exactly."""
        return gaussian_kl(mu, cov, *self.posterior(x))

    # -- sampling and Monte Carlo -----------------------------------------------------------
    def log_joint(self, x, z):
        """log p(x, z) for z of shape (n, d) -> (n,)."""
        z = np.atleast_2d(z)
        resid = np.asarray(x, float)[None] - z @ self.W.T - self.b
        s2 = self.sigma ** 2
        log_lik = -0.5 * (self.D * (LOG_2PI + math.log(s2)) + np.sum(resid ** 2, -1) / s2)
        return log_lik - 0.5 * (self.d * LOG_2PI + np.sum(z ** 2, -1))

    def elbo_monte_carlo(self, x, mu, cov, n=10_000, seed=0):
        """(mean, standard error) of log p(x, z) - log q(z) over n draws z ~ q."""
        rng = np.random.default_rng(seed)
        chol = np.linalg.cholesky(cov)
        z = mu + rng.standard_normal((n, self.d)) @ chol.T
        diff = np.linalg.solve(chol, (z - mu).T)                       # (d, n)
        log_q = -0.5 * (self.d * LOG_2PI + _logdet(cov) + np.sum(diff ** 2, 0))
        values = self.log_joint(x, z) - log_q
        return float(values.mean()), float(values.std(ddof=1) / math.sqrt(n))

    def sample(self, n, seed=0):
        """(x, z): n draws from the joint, shapes (n, D) and (n, d)."""
        rng = np.random.default_rng(seed)
        z = rng.standard_normal((n, self.d))
        return z @ self.W.T + self.b + self.sigma * rng.standard_normal((n, self.D)), z


def ppca(x, n_components):
    """Probabilistic PCA fitted by maximum likelihood: the :class:`LinearGaussian` with d =
    ``n_components`` that gives the data ``x`` the highest average log p(x).

    ``x``: (n, D) or images (n, h, w[, c]); uint8 pixels are scaled to [0, 1] as
    :class:`vae_course.pca.PCA` does. With lambda_1 >= ... >= lambda_D the eigenvalues of the
    data's covariance S (divided by n) and U_k its top k eigenvectors, the maximum is at
    (Tipping & Bishop, 1999)

        b = mean of x,   sigma^2 = mean(lambda_{k+1}, ..., lambda_D),
        W = U_k (Lambda_k - sigma^2 I)^{1/2} R,

    for any k x k rotation R (the likelihood depends on W only through W W^T); here R = I,
    with each direction's sign chosen as :class:`vae_course.pca.PCA` chooses it.
    So W spans PCA's subspace, and sigma^2 is the variance PCA leaves out, per discarded
    direction.
    """
    x = flatten(x)
    n, D = x.shape
    if not isinstance(n_components, (int, np.integer)) or not 0 < n_components < D:
        raise ValueError(f"Expected 0 < n_components < D = {D}. "
                         f"Received: n_components={n_components!r}")
    mean = x.mean(axis=0)
    xc = x - mean
    eigenvalues, eigenvectors = np.linalg.eigh(xc.T @ xc / n)       # ascending
    eigenvalues, eigenvectors = eigenvalues[::-1].clip(min=0.0), eigenvectors[:, ::-1]
    k = int(n_components)
    sigma2 = float(eigenvalues[k:].mean())
    if not sigma2 > 1e-12 * max(eigenvalues[0], np.finfo(float).tiny):
        raise ValueError(f"The data vary in at most {k} directions, so sigma^2 = 0 and the "
                         f"likelihood has no maximum. Use fewer components than "
                         f"{int(np.sum(eigenvalues > 0))}.")
    u = eigenvectors[:, :k]
    # The sign convention of pca.PCA (largest-magnitude entry of each direction positive).
    u = u * np.sign(u[np.argmax(np.abs(u), axis=0), np.arange(k)])
    W = u * np.sqrt(np.clip(eigenvalues[:k] - sigma2, 0.0, None))
    return LinearGaussian(W, mean, math.sqrt(sigma2))


def random_gaussian(d, seed=0, scale=1.0):
    """A random (mu, cov) for q: mean ~ N(0, scale^2 I), cov = A A^T + 0.1 I."""
    rng = np.random.default_rng(seed)
    a = scale * rng.standard_normal((d, d))
    return scale * rng.standard_normal(d), a @ a.T + 0.1 * np.eye(d)
