"""The IAF chapter's checkers: reference answers pass, typical wrong answers get their hint."""

import math

import numpy as np
import pytest

from vae_course import exercises, losses

pytestmark = pytest.mark.backends


def test_the_chapter_lists_its_checkers():
    names = [name for name, _ in exercises.available()["iaf"]]
    assert {"bits-per-dim", "iaf-log-det"} <= set(names)


# -- bits per dimension --------------------------------------------------------------------
def _bpd(nll, shape):
    return nll / (np.prod(shape) * math.log(2))


def test_bits_per_dim_reference_and_the_package_function_pass():
    assert exercises.check("bits-per-dim", _bpd)
    assert exercises.check("bits-per-dim", lambda nll, shape: losses.bits_per_dim(
        nll, int(np.prod(shape))))


@pytest.mark.parametrize("answer, hint", [
    (lambda nll, shape: nll / np.prod(shape), "divide by ln 2"),
    (lambda nll, shape: nll * math.log(2) / np.prod(shape), "multiplied by ln 2"),
    (lambda nll, shape: nll / (np.prod(shape) * math.log10(2)), "natural log"),
    (lambda nll, shape: nll / (784 * math.log(2)), "MNIST"),
    (lambda nll, shape: nll / (3072 * math.log(2)), "from image_shape"),
    (lambda nll, shape: nll / (shape[0] * shape[1] * math.log(2)), "sub-pixels"),
    (lambda nll, shape: -_bpd(nll, shape), "sign"),
    (lambda nll, shape: _bpd(nll, shape) + 8, "+ 8"),
    (lambda nll, shape: nll / math.log(2), "bits per image"),
])
def test_bits_per_dim_typical_mistakes_get_their_hint(answer, hint):
    feedback = exercises.check("bits-per-dim", answer)
    assert not feedback and hint in feedback.hint, feedback


# -- the log-determinant of an IAF step ----------------------------------------------------
def _log_det(m, s):
    return -np.logaddexp(0.0, -s).reshape(len(s), -1).sum(axis=1)


def _sigmoid(s):
    return 1.0 / (1.0 + np.exp(-s))


def test_iaf_log_det_reference_passes_also_in_float32_keras_ops():
    from keras import ops

    assert exercises.check("iaf-log-det", _log_det)

    def keras_answer(m, s):
        log_sigma = ops.log_sigmoid(ops.convert_to_tensor(s, "float32"))
        return ops.convert_to_numpy(ops.sum(ops.reshape(log_sigma, (len(s), -1)), axis=1))

    assert exercises.check("iaf-log-det", keras_answer)


@pytest.mark.parametrize("answer, hint", [
    (lambda m, s: -_log_det(m, s), "sign"),
    (lambda m, s: np.log(_sigmoid(s)), "sum log sigma over every latent dimension"),
    (lambda m, s: np.log(_sigmoid(s)).sum(axis=-1), "not only the last axis"),
    (lambda m, s: np.log(1 - _sigmoid(s)).reshape(len(s), -1).sum(axis=1), "log(1 - sigma)"),
    (lambda m, s: _sigmoid(s).reshape(len(s), -1).sum(axis=1), "log is missing"),
    (lambda m, s: s.reshape(len(s), -1).sum(axis=1), "softplus"),
    (lambda m, s: np.log(_sigmoid(s)).reshape(len(s), -1).mean(axis=1), "averaged"),
    (lambda m, s: _log_det(m, s) + m.reshape(len(m), -1).sum(axis=1), "only m changes"),
])
def test_iaf_log_det_typical_mistakes_get_their_hint(answer, hint):
    feedback = exercises.check("iaf-log-det", answer)
    assert not feedback and hint in feedback.hint + feedback.message, feedback


def test_iaf_log_det_checker_agrees_with_the_package_step():
    """The checker's reference is what flows.IAFStep returns as its log-determinant."""
    from keras import ops

    from vae_course import flows

    rng = np.random.default_rng(1)
    step = flows.IAFStep(4, hidden_units=(8,), forget_bias=0.5)
    z = rng.normal(size=(3, 4)).astype("float32")
    h = rng.normal(size=(3, 2)).astype("float32")
    step([z, h])
    for w in step.weights:
        w.assign(rng.normal(size=w.shape).astype("float32"))
    _, log_det = step([z, h])
    m, s = step.made([z, h])
    s = ops.convert_to_numpy(s).astype("float64") + step.forget_bias
    np.testing.assert_allclose(ops.convert_to_numpy(log_det), _log_det(None, s), rtol=1e-5)
