"""Chapter 1's exercise checkers: the reference answers pass, typical mistakes get their hint."""

import numpy as np
import pytest

from vae_course import exercises

pytestmark = pytest.mark.backends

D = 784


def _squared_error(x, x_hat):
    return np.sum((x - x_hat) ** 2, axis=(1, 2, 3))


def _log_likelihood(x, x_hat, sigma):
    return -_squared_error(x, x_hat) / (2 * sigma**2) - D / 2 * np.log(2 * np.pi * sigma**2)


def test_the_chapter_checkers_are_listed():
    names = [name for name, _ in exercises.available()["autoencoders"]]
    assert {"squared-error", "gaussian-log-likelihood"} <= set(names)


def test_reference_answers_pass():
    assert exercises.check("squared-error", _squared_error)
    assert exercises.check("gaussian-log-likelihood", _log_likelihood)


def test_a_tfp_answer_in_float32_passes():
    tfp = pytest.importorskip("tensorflow_probability")

    def by_tfp(x, x_hat, sigma):
        normal = tfp.distributions.Normal(np.float32(x_hat), np.float32(sigma))
        return np.sum(normal.log_prob(np.float32(x)).numpy(), axis=(1, 2, 3))

    assert exercises.check("gaussian-log-likelihood", by_tfp)


@pytest.mark.parametrize("answer, hint", [
    (lambda x, h: np.mean((x - h) ** 2, axis=(1, 2, 3)), "mean over the pixels"),
    (lambda x, h: np.sum((x - h) ** 2), "whole batch"),
    (lambda x, h: np.sum((x - h) ** 2, axis=0), "axis 0"),
    (lambda x, h: np.sqrt(_squared_error(x, h)), "no square root"),
    (lambda x, h: np.sum(np.abs(x - h), axis=(1, 2, 3)), "square them"),
])
def test_squared_error_mistakes(answer, hint):
    feedback = exercises.check("squared-error", answer)
    assert not feedback and hint in feedback.hint, feedback


@pytest.mark.parametrize("answer, hint", [
    (lambda x, h, s: -_log_likelihood(x, h, s), "sign is flipped"),
    (lambda x, h, s: -_squared_error(x, h) / (2 * s**2), "normalizing constant"),
    (lambda x, h, s: -_squared_error(x, h) / s**2 - D / 2 * np.log(2 * np.pi * s**2),
     "factor 1/2"),
    (lambda x, h, s: -_squared_error(x, h) / (2 * s) - D / 2 * np.log(2 * np.pi * s),
     "standard deviation"),
    (lambda x, h, s: -_squared_error(x, h) / (2 * s**2) - D / 2 * np.log(2 * np.pi * s),
     "D log(sigma)"),
    (lambda x, h, s: -_squared_error(x, h) / (2 * s**2) - 0.5 * np.log(2 * np.pi * s**2),
     "counts one pixel"),
    (lambda x, h, s: _log_likelihood(x, h, s) / D, "sum, do not average"),
    (lambda x, h, s: np.sum(_log_likelihood(x, h, s)), "not over the batch"),
])
def test_gaussian_log_likelihood_mistakes(answer, hint):
    feedback = exercises.check("gaussian-log-likelihood", answer)
    assert not feedback and hint in feedback.hint, feedback
