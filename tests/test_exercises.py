"""The exercise checkers: each reference answer passes, typical wrong answers get their hint."""

import numpy as np
import pytest

from vae_course import exercises

pytestmark = pytest.mark.backends


def test_every_checker_is_listed_under_a_chapter_of_the_book():
    listed = exercises.available()
    assert set(listed) <= set(exercises.CHAPTERS)
    assert sum(len(v) for v in listed.values()) >= 1


def test_unknown_exercise_names_the_known_ones():
    with pytest.raises(ValueError, match="bayes-posterior"):
        exercises.check("no-such-exercise", None)


def test_an_answer_that_raises_is_reported_not_raised():
    feedback = exercises.check("bayes-posterior", lambda a, b: 1 / 0)
    assert not feedback and "ZeroDivisionError" in feedback.message


# -- conditional VAE -----------------------------------------------------------------------
def _posterior(log_px_y, log_prior):
    joint = log_px_y + log_prior
    return joint - np.logaddexp.reduce(joint, axis=1, keepdims=True)


@pytest.mark.parametrize("answer, hint", [
    (lambda a, p: a + p, "the joint"),
    (lambda a, p: a - np.logaddexp.reduce(a, axis=1, keepdims=True), "prior is missing"),
    (lambda a, p: np.log(np.exp(a + p) / np.exp(a + p).sum(1, keepdims=True)), "log-sum-exp"),
    (lambda a, p: (a + p) - np.logaddexp.reduce(a + p, axis=0, keepdims=True), "axis 1"),
])
def test_bayes_posterior_checker(answer, hint):
    assert exercises.check("bayes-posterior", _posterior)
    feedback = exercises.check("bayes-posterior", answer)
    assert not feedback and hint in feedback.hint, feedback


def test_shown_feedback_wraps_at_88_characters_and_keeps_every_word():
    message = ("the log-likelihood per image matches the reference on every test input, "
               "including images with confident pixels (logits of +-40 to +-120) and a "
               "batch of one; " * 2).strip()
    hint = ("sigmoid(40) rounds to exactly 1, so log(1 - sigmoid(40)) is -inf: compute "
            "x * logits - softplus(logits) instead, which never takes a log of zero. " * 2)
    feedback = exercises.Feedback("bernoulli-log-likelihood", False, message, hint)
    words = f"[bernoulli-log-likelihood] not yet: {message} Hint: {hint}".split()
    for shown in (str(feedback), repr(feedback)):
        lines = shown.splitlines()
        assert max(len(line) for line in lines) <= 88, shown
        assert lines[0].startswith("[bernoulli-log-likelihood] not yet: the log-likelihood")
        heads = [line for line in lines if not line.startswith(" ")]
        assert len(heads) == 2 and heads[1].startswith("Hint: sigmoid(40)"), shown
        assert shown.split() == words, shown
    assert feedback.message == message and feedback.hint == hint   # the attributes stay whole
    short = exercises.Feedback("squared-error", True, "the squared error matches.")
    assert str(short) == "[squared-error] correct: the squared error matches."
