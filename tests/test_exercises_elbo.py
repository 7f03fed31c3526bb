"""The ELBO chapter's checkers: the reference answers pass, typical wrong answers get their hint."""

import numpy as np
import pytest

from vae_course import exercises

pytestmark = pytest.mark.backends


# -- kl-closed-form ----------------------------------------------------------------------------
def kl_reference(mean, log_var):
    return 0.5 * np.sum(np.exp(log_var) + mean ** 2 - 1.0 - log_var, axis=-1)


def kl_keras(mean, log_var):
    from keras import ops

    return 0.5 * ops.sum(ops.exp(log_var) + ops.square(mean) - 1.0 - log_var, axis=-1)


def test_kl_checker_accepts_the_reference_the_package_and_a_keras_answer():
    from vae_course import losses

    assert exercises.check("kl-closed-form", kl_reference)
    assert exercises.check("kl-closed-form", kl_keras)
    assert exercises.check("kl-closed-form", losses.kl_standard_normal)
    assert "kl-closed-form" in dict(exercises.available()["elbo"])


@pytest.mark.parametrize("answer, hint", [
    (lambda m, lv: -kl_reference(m, lv), "sign is flipped"),
    (lambda m, lv: 0.5 * (np.exp(lv) + m ** 2 - 1.0 - lv), "sum the per-dimension terms"),
    (lambda m, lv: 0.5 * np.mean(np.exp(lv) + m ** 2 - 1.0 - lv, axis=-1), "averaged"),
    (lambda m, lv: np.sum(np.exp(lv) + m ** 2 - 1.0 - lv, axis=-1), "1/2 in front"),
    (lambda m, lv: 0.5 * np.sum(np.exp(lv) + m ** 2 - lv, axis=-1), "-1 inside the sum"),
    (lambda m, lv: 0.5 * np.sum(np.exp(2 * lv) + m ** 2 - 1.0 - 2 * lv, axis=-1), "log sigma^2"),
    (lambda m, lv: 0.5 * np.sum(lv ** 2 + m ** 2 - 1.0 - np.log(lv ** 2), axis=-1),
     "standard deviation"),
    (lambda m, lv: 0.5 * np.sum(np.exp(lv) + m ** 2 - 1.0 + lv, axis=-1), "wrong sign"),
    (lambda m, lv: 0.5 * np.sum(np.exp(lv / 2) + m ** 2 - 1.0 - lv, axis=-1), "variance"),
])
def test_kl_checker_names_the_typical_mistakes(answer, hint):
    with np.errstate(all="ignore"):
        feedback = exercises.check("kl-closed-form", answer)
    assert not feedback and hint in " ".join(str(feedback).split()), feedback


def test_kl_checker_reports_an_unrelated_wrong_answer_with_its_size():
    feedback = exercises.check("kl-closed-form", lambda m, lv: kl_reference(m, lv) + 0.3)
    assert not feedback and feedback.details["max_abs_error"] == pytest.approx(0.3, rel=1e-3)


# -- bernoulli-log-likelihood -------------------------------------------------------------------
def bernoulli_reference(x, logits):
    n = len(x)
    return np.sum(x * logits - np.logaddexp(0.0, logits), axis=tuple(range(1, x.ndim))).reshape(n)


def sigmoid_then_log(x, logits):
    p = 1.0 / (1.0 + np.exp(-logits))
    return np.sum((x * np.log(p) + (1 - x) * np.log(1 - p)).reshape(len(x), -1), axis=1)


def test_bernoulli_checker_accepts_the_reference_and_the_package():
    from vae_course import losses

    assert exercises.check("bernoulli-log-likelihood", bernoulli_reference)
    assert exercises.check("bernoulli-log-likelihood", losses.bernoulli_log_prob)


@pytest.mark.parametrize("answer, hint", [
    (sigmoid_then_log, "Never take the sigmoid first"),
    (lambda x, l: bernoulli_reference(x.astype("float64"), l.astype("float64")) * -1, "sign"),
    (lambda x, l: bernoulli_reference(x, l) / x[0].size, "averaged over the pixels"),
    (lambda x, l: (x * l - np.logaddexp(0, l)).reshape(len(x), -1), "sum over the pixels"),
    (lambda x, l: np.sum(x * l - np.logaddexp(0, l)), "one number"),
    (lambda x, l: bernoulli_reference(1 - x, l), "swapped"),
])
def test_bernoulli_checker_names_the_typical_mistakes(answer, hint):
    with np.errstate(all="ignore"):
        feedback = exercises.check("bernoulli-log-likelihood", answer)
    assert not feedback and hint in " ".join(str(feedback).split()), feedback


def test_bernoulli_checker_recognizes_clipped_probabilities():
    def clipped(x, logits):
        p = np.clip(1.0 / (1.0 + np.exp(-logits.astype("float64"))), 1e-7, 1 - 1e-7)
        return np.sum((x * np.log(p) + (1 - x) * np.log(1 - p)).reshape(len(x), -1), axis=1)

    with np.errstate(all="ignore"):
        feedback = exercises.check("bernoulli-log-likelihood", clipped)
    assert not feedback and "clipping" in feedback.hint, feedback
