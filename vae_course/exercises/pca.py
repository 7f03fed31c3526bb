"""Checkers of the PCA chapter's exercises (chapter 2)."""

from __future__ import annotations

import numpy as np

from . import Feedback, checker, compare


def _angles(a, b):
    """Reference principal angles in degrees, ascending (QR of both bases, then an SVD)."""
    qa, _ = np.linalg.qr(a)
    qb, _ = np.linalg.qr(b)
    cosines = np.linalg.svd(qa.T @ qb, compute_uv=False).clip(-1.0, 1.0)
    return np.degrees(np.arccos(cosines))


def _subspace_pairs():
    """Pairs of bases (d, p), (d, q) with columns neither unit-length nor orthogonal."""
    rng = np.random.default_rng(0)
    d = 12
    a1 = rng.normal(0.0, 3.0, (d, 3))
    b1 = a1 @ rng.standard_normal((3, 3)) + 0.8 * rng.standard_normal((d, 3))   # near a1
    a2 = rng.normal(0.0, 2.0, (d, 2))
    b2 = np.column_stack([a2[:, 0] + 0.3 * rng.standard_normal(d),
                          rng.standard_normal((d, 3))])                        # p = 2, q = 4
    return [(a1, b1), (a2, b2)]


@checker("principal-angles", "pca",
         "principal angles in degrees, ascending, between the column spaces of a and b")
def principal_angles(answer):
    """``answer(a, b) -> (min(p, q),)`` angles in degrees, ascending, for a (d, p), b (d, q)."""
    pairs = _subspace_pairs()
    got = [np.asarray(answer(a.copy(), b.copy()), dtype="float64") for a, b in pairs]
    expected = [_angles(a, b) for a, b in pairs]
    if any(g.shape == e.shape and np.any(np.isnan(g)) for g, e in zip(got, expected)):
        return Feedback("principal-angles", False, "some angles are NaN.",
                        "arccos of a number above 1 is NaN. The singular values of a^T b are "
                        "cosines only when both bases are orthonormal: orthonormalize a and b "
                        "first (np.linalg.qr), and clip the cosines to [-1, 1] against rounding.")

    def each(f):
        return np.concatenate([f(a, b) for a, b in pairs])

    def no_qr(a, b):
        return np.degrees(np.arccos(np.linalg.svd(a.T @ b, compute_uv=False).clip(-1, 1)))

    def qr_one(a, b):
        qa, _ = np.linalg.qr(a)
        return np.degrees(np.arccos(np.linalg.svd(qa.T @ b, compute_uv=False).clip(-1, 1)))

    want = each(_angles)
    wrong = [
        (np.radians(want), "These are radians; the exercise asks for degrees (np.degrees)."),
        (each(lambda a, b: _angles(a, b)[::-1]),
         "The angles are in descending order; return them ascending (smallest first)."),
        (np.cos(np.radians(want)), "These are the cosines (the singular values); take their "
                                   "arccos and convert to degrees."),
        (each(no_qr), "The bases are not orthonormal: the singular values of a^T b are cosines "
                      "only after orthonormalizing both (np.linalg.qr)."),
        (each(qr_one), "Orthonormalize both bases, not only the first."),
    ]
    if [g.shape for g in got] != [e.shape for e in expected]:
        return Feedback("principal-angles", False,
                        f"expected {[e.shape for e in expected]} angles for bases of shapes "
                        f"{[(a.shape, b.shape) for a, b in pairs]}, got "
                        f"{[g.shape for g in got]}.",
                        "There are min(p, q) principal angles: the singular values of the "
                        "p x q matrix Q_a^T Q_b.")
    return compare("principal-angles", np.concatenate(got), want, wrong, rtol=1e-5, atol=1e-4,
                   what="the list of angles")


def _pca_data():
    """(n, d) data with well separated variances along a rotated basis, and a non-zero mean."""
    rng = np.random.default_rng(1)
    scales = np.array([4.0, 3.0, 2.2, 1.5, 1.0, 0.6, 0.3, 0.1])
    rotation, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    return (rng.standard_normal((300, 8)) * scales) @ rotation.T + rng.uniform(1, 3, 8)


@checker("pca-fit", "pca",
         "PCA of x (n, d): components (k, d), orthonormal rows, and their variances (k,)")
def pca_fit(answer):
    """``answer(x, k) -> (components (k, d), variances (k,))`` with the chapter's 1/n
    covariance, largest variance first; each component's sign is free."""
    x, k = _pca_data(), 3
    n, d = x.shape
    result = answer(x.copy(), k)
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        return Feedback("pca-fit", False, "expected a pair (components, variances).",
                        "Return both: components (k, d) and variances (k,).")
    components, variances = (np.asarray(r, dtype="float64") for r in result)
    xc = x - x.mean(axis=0)
    _, s, vt = np.linalg.svd(xc, full_matrices=False)
    lam = s**2 / n
    _, s_raw, _ = np.linalg.svd(x, full_matrices=False)
    wrong = [
        (lam[::-1][:k], "np.linalg.eigh returns eigenvalues in ascending order: reverse "
                        "eigenvalues and eigenvectors before keeping the first k."),
        (lam[:k] * n / (n - 1), "You divided by n - 1; use the chapter's covariance, with 1/n."),
        (s[:k], "These are singular values s of the centred data; the variances are s**2 / n."),
        (s[:k] ** 2, "These are s**2; the variances are s**2 / n."),
        (s_raw[:k] ** 2 / n, "The data were not centred: subtract the mean image first."),
    ]
    feedback = compare("pca-fit", variances, lam[:k], wrong, rtol=1e-6, atol=1e-8,
                       what="the variances")
    if not feedback:
        return feedback
    if components.shape == (d, k):
        return Feedback("pca-fit", False, f"components have shape {components.shape}, "
                                          f"expected {(k, d)}.",
                        "Return one component per row: transpose the (d, k) matrix of "
                        "eigenvectors (or take the first k rows of V^T from the SVD).")
    if components.shape != (k, d):
        return Feedback("pca-fit", False, f"components have shape {components.shape}, "
                                          f"expected {(k, d)}.", "One row per component.")
    cosines = np.abs(np.sum(components * vt[:k], axis=1))
    norms = np.linalg.norm(components, axis=1)
    if not np.allclose(norms, 1.0, atol=1e-6):
        return Feedback("pca-fit", False, f"the components' lengths are {np.round(norms, 4)}, "
                                          "expected 1.",
                        "Principal directions are unit vectors: use eigenvectors or rows of "
                        "V^T as they come, without scaling them by the singular values.")
    if not np.allclose(cosines, 1.0, atol=1e-6):
        return Feedback("pca-fit", False,
                        f"the variances are right but the directions are not: |cos| with the "
                        f"reference directions {np.round(cosines, 4)}.",
                        "Principal directions live in pixel space (length d): the rows of V^T "
                        "or the columns of the eigenvector matrix, in the same order as the "
                        "variances.")
    return Feedback("pca-fit", True, "variances and directions (up to sign) match the reference.")
