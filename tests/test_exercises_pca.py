"""Chapter 2's exercise checkers: the reference answers pass, typical mistakes get their hint."""

import numpy as np
import pytest

from vae_course import exercises, pca

pytestmark = pytest.mark.backends


def _angles(a, b):
    qa, _ = np.linalg.qr(a)
    qb, _ = np.linalg.qr(b)
    cosines = np.linalg.svd(qa.T @ qb, compute_uv=False)
    return np.degrees(np.arccos(np.clip(cosines, -1.0, 1.0)))


def _pca_svd(x, k):
    xc = x - x.mean(axis=0)
    _, s, vt = np.linalg.svd(xc, full_matrices=False)
    return vt[:k], s[:k] ** 2 / len(x)


def _pca_eigh(x, k):
    xc = x - x.mean(axis=0)
    values, vectors = np.linalg.eigh(xc.T @ xc / len(x))
    return -vectors[:, ::-1][:, :k].T, values[::-1][:k]      # any sign is fine


def test_the_chapter_checkers_are_listed():
    names = [name for name, _ in exercises.available()["pca"]]
    assert {"principal-angles", "pca-fit"} <= set(names)


def test_reference_answers_pass():
    assert exercises.check("principal-angles", _angles)
    assert exercises.check("principal-angles", lambda a, b: pca.principal_angles(a, b, True))
    assert exercises.check("pca-fit", _pca_svd)
    assert exercises.check("pca-fit", _pca_eigh)


def _no_qr(a, b, clip=False):
    cosines = np.linalg.svd(a.T @ b, compute_uv=False)               # not cosines: above 1
    with np.errstate(invalid="ignore"):
        return np.degrees(np.arccos(np.clip(cosines, -1, 1) if clip else cosines))


@pytest.mark.parametrize("answer, hint", [
    (lambda a, b: np.radians(_angles(a, b)), "radians"),
    (lambda a, b: _angles(a, b)[::-1], "ascending"),
    (lambda a, b: np.cos(np.radians(_angles(a, b))), "arccos"),
    (_no_qr, "orthonormalize"),
    (lambda a, b: _no_qr(a, b, clip=True), "orthonormalizing both"),
    (lambda a, b: _angles(a, b)[:1], "min(p, q)"),
])
def test_principal_angles_mistakes(answer, hint):
    feedback = exercises.check("principal-angles", answer)
    assert not feedback and hint in feedback.hint, feedback


def _eigh_ascending(x, k):
    xc = x - x.mean(axis=0)
    values, vectors = np.linalg.eigh(xc.T @ xc / len(x))
    return vectors[:, :k].T, values[:k]


def _uncentred(x, k):
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    return vt[:k], s[:k] ** 2 / len(x)


@pytest.mark.parametrize("answer, hint", [
    (_eigh_ascending, "ascending order"),
    (_uncentred, "not centred"),
    (lambda x, k: (_pca_svd(x, k)[0], _pca_svd(x, k)[1] * len(x) / (len(x) - 1)), "n - 1"),
    (lambda x, k: (_pca_svd(x, k)[0], np.sqrt(_pca_svd(x, k)[1] * len(x))), "s**2 / n"),
    (lambda x, k: (_pca_svd(x, k)[0].T, _pca_svd(x, k)[1]), "one component per row"),
    (lambda x, k: (3 * _pca_svd(x, k)[0], _pca_svd(x, k)[1]), "unit vectors"),
    (lambda x, k: (_pca_svd(x, k)[0][::-1], _pca_svd(x, k)[1]), "same order"),
    (lambda x, k: _pca_svd(x, k)[0], "Return both"),
])
def test_pca_fit_mistakes(answer, hint):
    feedback = exercises.check("pca-fit", answer)
    assert not feedback and hint in feedback.hint, feedback
