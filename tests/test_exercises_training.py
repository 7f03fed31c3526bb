"""The training chapter's checkers: the reference answers pass, typical wrong answers get their
hint."""

import math

import numpy as np
import pytest

from vae_course import exercises

pytestmark = pytest.mark.backends


# -- iwae-bound --------------------------------------------------------------------------------
def iwae_reference(log_w):
    return np.logaddexp.reduce(log_w, axis=0) - math.log(len(log_w))


def iwae_keras(log_w):
    from keras import ops

    return ops.logsumexp(log_w, axis=0) - math.log(log_w.shape[0])


def test_iwae_checker_accepts_numpy_and_keras_answers():
    assert exercises.check("iwae-bound", iwae_reference)
    assert exercises.check("iwae-bound", iwae_keras)
    assert "iwae-bound" in dict(exercises.available()["training"])


@pytest.mark.parametrize("answer, hint", [
    (lambda w: np.log(np.mean(np.exp(w), axis=0)), "underflows"),
    (lambda w: w.mean(axis=0), "average of the log-weights"),
    (lambda w: np.logaddexp.reduce(w, axis=0), "- log K is missing"),
    (lambda w: w.max(axis=0), "largest log-weight"),
    (lambda w: -iwae_reference(w), "sign is flipped"),
    (lambda w: np.logaddexp.reduce(w, axis=1) - math.log(w.shape[1]), "axis 0"),
])
def test_iwae_checker_names_the_typical_mistakes(answer, hint):
    with np.errstate(all="ignore"):
        feedback = exercises.check("iwae-bound", answer)
    assert not feedback and hint in " ".join(str(feedback).split()), feedback


# -- free-bits ---------------------------------------------------------------------------------
def free_bits_reference(kl, free_nats):
    return np.sum(np.maximum(free_nats, np.mean(kl, axis=0)))


def free_bits_keras(kl, free_nats):
    from keras import ops

    return ops.sum(ops.maximum(free_nats, ops.mean(kl, axis=0)))


def test_free_bits_checker_accepts_numpy_and_keras_answers():
    assert exercises.check("free-bits", free_bits_reference)
    assert exercises.check("free-bits", free_bits_keras)
    assert exercises.check("free-bits", lambda kl, f: [free_bits_reference(kl, f)])   # shape (1,)


@pytest.mark.parametrize("answer, hint", [
    (lambda kl, f: np.maximum(f, kl).sum(axis=1).mean(), "each example"),
    (lambda kl, f: np.minimum(f, kl.mean(0)).sum(), "max, not min"),
    (lambda kl, f: max(f, kl.mean(0).sum()), "per latent dimension"),
    (lambda kl, f: np.maximum(f, kl.mean(0)).mean(), "not average"),
    (lambda kl, f: kl.mean(0).sum(), "plain KL term"),
    (lambda kl, f: np.maximum(f, kl.sum(0)).sum(), "Average over the batch"),
    (lambda kl, f: np.maximum(f, kl.mean(0)), "shape"),
])
def test_free_bits_checker_names_the_typical_mistakes(answer, hint):
    feedback = exercises.check("free-bits", answer)
    assert not feedback and hint in " ".join(str(feedback).split()), feedback
