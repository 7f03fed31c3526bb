"""Principal component analysis and two ways to compare codes, in numpy.

    from vae_course import pca
    p = pca.PCA(30).fit(x_train)                    # x: (n, 28, 28[, 1]) or (n, d)
    z = p.encode(x_test)                            # (n, 30)
    x_hat = p.decode(z)                             # (n, d), back in pixel space
    pca.squared_error(x_test, x_hat)                # (n,) summed squared error per image

Also: :func:`principal_angles` between two subspaces and :func:`knn_accuracy`, a
k-nearest-neighbour classifier used to measure how well codes separate the classes.
"""

from __future__ import annotations

import numpy as np


def flatten(x) -> np.ndarray:
    """(n, ...) images -> (n, d) float64; uint8 pixels are scaled to [0, 1]."""
    x = np.asarray(x)
    scale = 255.0 if x.dtype == np.uint8 else 1.0
    if x.ndim < 2:
        raise ValueError(f"Expected a batch of vectors or images (n, d) or (n, h, w[, c]). "
                         f"Received: shape {x.shape}")
    return x.reshape(len(x), -1).astype("float64") / scale


class PCA:
    """PCA by the singular value decomposition of the centred data.

    For centred data X (n, d) = U S V^T, the rows of V^T are the eigenvectors of the
    covariance C = X^T X / n, with eigenvalues S^2 / n. ``method="covariance"`` instead
    diagonalizes C (d x d) directly, which is cheaper when n >> d; both give the same
    subspace.

    Attributes after ``fit``: ``mean`` (d,), ``components`` (k, d) with orthonormal rows,
    ``explained_variance`` (k,), ``explained_variance_ratio`` (k,), ``total_variance``.
    """

    def __init__(self, n_components: int, method: str = "svd"):
        if (not isinstance(n_components, (int, np.integer)) or isinstance(n_components, bool)
                or n_components <= 0):
            raise ValueError(f"Expected n_components > 0. Received: n_components={n_components!r}")
        if method not in ("svd", "covariance"):
            raise ValueError(f"Expected method 'svd' or 'covariance'. Received: method={method!r}")
        self.n_components = int(n_components)
        self.method = method
        self.mean = None

    def fit(self, x):
        x = flatten(x)
        n, d = x.shape
        if self.n_components > min(n, d):
            raise ValueError(f"Expected n_components <= min(n, d) = {min(n, d)}. "
                             f"Received: n_components={self.n_components}")
        self.mean = x.mean(axis=0)
        xc = x - self.mean
        if self.method == "svd":
            _, s, vt = np.linalg.svd(xc, full_matrices=False)
            variances = s**2 / n
        else:
            variances, vectors = np.linalg.eigh(xc.T @ xc / n)       # ascending order
            variances, vt = variances[::-1].clip(min=0), vectors[:, ::-1].T
        # Fix each component's sign (largest-magnitude entry positive) so results are repeatable.
        signs = np.sign(vt[np.arange(len(vt)), np.argmax(np.abs(vt), axis=1)])
        vt = vt * signs[:, None]
        k = self.n_components
        self.components = vt[:k]
        self.explained_variance = variances[:k]
        self.total_variance = float(variances.sum())
        self.explained_variance_ratio = self.explained_variance / self.total_variance
        return self

    def first(self, k: int) -> "PCA":
        """A fitted PCA with only the first ``k`` components of this one (no refitting)."""
        self._check_fitted()
        if not 0 < k <= self.n_components:
            raise ValueError(f"Expected 0 < k <= {self.n_components}. Received: k={k}")
        other = PCA(k, self.method)
        other.mean = self.mean
        other.components = self.components[:k]
        other.explained_variance = self.explained_variance[:k]
        other.total_variance = self.total_variance
        other.explained_variance_ratio = self.explained_variance_ratio[:k]
        return other

    def _check_fitted(self):
        if self.mean is None:
            raise RuntimeError("This PCA is not fitted yet; call fit(x) first.")

    def encode(self, x) -> np.ndarray:
        """(n, d) or images -> codes (n, k): coordinates along the principal directions."""
        self._check_fitted()
        return (flatten(x) - self.mean) @ self.components.T

    transform = encode

    def decode(self, z) -> np.ndarray:
        """codes (n, k) -> points (n, d) in the k-dimensional affine subspace."""
        self._check_fitted()
        z = np.asarray(z, dtype="float64")
        if z.ndim != 2 or z.shape[1] != self.n_components:
            raise ValueError(f"Expected codes of shape (n, {self.n_components}). "
                             f"Received: shape {z.shape}")
        return z @ self.components + self.mean

    inverse_transform = decode

    def reconstruct(self, x) -> np.ndarray:
        """Orthogonal projection of x onto the subspace: (n, d)."""
        return self.decode(self.encode(x))


def squared_error(x, x_hat) -> np.ndarray:
    """Summed squared error per example, (n,), with both arrays flattened to (n, d)."""
    x, x_hat = flatten(x), flatten(x_hat)
    if x.shape != x_hat.shape:
        raise ValueError(f"Expected x and x_hat of the same size. Received: {x.shape} and {x_hat.shape}")
    return np.sum((x - x_hat) ** 2, axis=1)


def principal_angles(a, b, degrees=False) -> np.ndarray:
    """Principal angles between the column spaces of a (d, p) and b (d, q), ascending.

    With orthonormal bases Q_a, Q_b, the cosines of the angles are the singular values of
    Q_a^T Q_b. All angles zero means one subspace contains the other.
    Returns min(p, q) angles in radians (or degrees).
    """
    a, b = np.asarray(a, dtype="float64"), np.asarray(b, dtype="float64")
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[0]:
        raise ValueError(f"Expected two matrices (d, p) and (d, q) with the same d. "
                         f"Received: shapes {a.shape} and {b.shape}")
    qa, _ = np.linalg.qr(a)
    qb, _ = np.linalg.qr(b)
    cosines = np.linalg.svd(qa.T @ qb, compute_uv=False).clip(-1.0, 1.0)
    angles = np.arccos(cosines)             # cosines descend, so angles ascend
    return np.degrees(angles) if degrees else angles


def knn_predict(train_codes, train_labels, codes, k=5, batch_size=200) -> np.ndarray:
    """Majority label of the k nearest training codes (Euclidean) for each row of ``codes``."""
    train_codes = np.asarray(train_codes, dtype="float64")
    codes = np.asarray(codes, dtype="float64")
    train_labels = np.asarray(train_labels)
    if not 0 < k <= len(train_codes):
        raise ValueError(f"Expected 0 < k <= {len(train_codes)}. Received: k={k}")
    n_classes = int(train_labels.max()) + 1
    sq_train = np.sum(train_codes**2, axis=1)
    out = np.empty(len(codes), dtype=train_labels.dtype)
    for start in range(0, len(codes), batch_size):
        c = codes[start:start + batch_size]
        d2 = sq_train[None, :] - 2.0 * c @ train_codes.T          # + |c|^2, same for every row
        nearest = np.argpartition(d2, k - 1, axis=1)[:, :k]
        votes = np.zeros((len(c), n_classes))
        np.add.at(votes, (np.arange(len(c))[:, None], train_labels[nearest]), 1)
        out[start:start + batch_size] = np.argmax(votes, axis=1)   # ties: the smaller label
    return out


def knn_accuracy(train_codes, train_labels, test_codes, test_labels, k=5) -> float:
    """Fraction of test codes whose k nearest training codes vote for the right label."""
    pred = knn_predict(train_codes, train_labels, test_codes, k=k)
    return float(np.mean(pred == np.asarray(test_labels)))
