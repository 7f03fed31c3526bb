"""The reparameterization chapter's checkers: the reference answers pass, typical wrong answers
get the hint that names their mistake."""

import numpy as np
import pytest

from vae_course import exercises
from vae_course.exercises import reparameterization as ex

pytestmark = pytest.mark.backends


def test_both_checkers_are_listed_under_the_chapter():
    names = [name for name, _ in exercises.available()["reparameterization"]]
    assert {"score-function-baseline", "lognormal-pathwise"} <= set(names)


# -- the score-function estimator with a leave-one-out baseline ------------------------------
def _estimator(weight_of, score_of):
    """A score-function estimator assembled from a weight rule and a score rule (mistakes)."""
    def answer(f, mu, log_var, eps):
        sigma = np.exp(0.5 * log_var)
        values = f(mu + sigma * eps)
        weight = weight_of(values)[:, None]
        s_mu, s_lv = score_of(eps, sigma)
        return weight * s_mu, weight * s_lv
    return answer


def _leave_one_out(values):
    return values - (values.sum() - values) / (len(values) - 1)


def _score(eps, sigma):
    return eps / sigma, 0.5 * (eps ** 2 - 1)


def test_the_reference_passes_and_is_unbiased():
    feedback = exercises.check("score-function-baseline", ex.score_with_baseline_reference)
    assert feedback, feedback
    assert "Unbiased" in feedback.message and feedback.details["worst_z"] < 4.5


@pytest.mark.parametrize("answer, hint", [
    (_estimator(lambda v: v, _score), "No baseline"),
    (_estimator(lambda v: v - v.mean(), _score), "including draw i"),
    (_estimator(lambda v: v - v, _score), "cancels the signal"),
    (_estimator(_leave_one_out, lambda e, s: (e * s, 0.5 * (e ** 2 - 1))), "eps / sigma"),
    (_estimator(_leave_one_out, lambda e, s: (e / s, e ** 2 - 1)), "factor 1/2"),
    (_estimator(_leave_one_out, lambda e, s: (e / s, 0.5 * e ** 2)), "the -1"),
    (_estimator(lambda v: -_leave_one_out(v), _score), "sign"),
    (lambda f, mu, lv, eps: (eps, eps), "differs"),   # no rule matches: says biased
    (lambda f, mu, lv, eps: eps, "pair"),
])
def test_typical_wrong_estimators_get_their_hint(answer, hint):
    feedback = exercises.check("score-function-baseline", answer)
    assert not feedback
    assert hint in feedback.hint + feedback.message, feedback


def test_an_unbiased_but_different_baseline_is_told_apart_from_a_biased_one():
    # a constant baseline is unbiased, but it is not the leave-one-out estimator asked for
    feedback = exercises.check("score-function-baseline",
                               _estimator(lambda v: v - 20.0, _score))
    assert not feedback and "unbiased" in feedback.hint
    # an estimator with a wrong constant factor is biased, and the toy problem shows it
    feedback = exercises.check("score-function-baseline",
                               _estimator(lambda v: 0.7 * _leave_one_out(v), _score))
    assert not feedback and "biased" in feedback.hint and "unbiased" not in feedback.hint


# -- the log-normal's pathwise gradient ------------------------------------------------------
def test_the_lognormal_reference_passes():
    feedback = exercises.check("lognormal-pathwise", ex.lognormal_pathwise_reference)
    assert feedback, feedback
    assert feedback.details["worst_z"] < 4.5


def _lognormal(mu_factor, lv_factor):
    def answer(dfdz, mu, log_var, eps):
        sigma = np.exp(0.5 * log_var)
        z = np.exp(mu + sigma * eps)
        return dfdz * mu_factor(z), dfdz * lv_factor(z, sigma, eps)
    return answer


@pytest.mark.parametrize("answer, hint", [
    (_lognormal(lambda z: 1.0, lambda z, s, e: s * e / 2), "chain rule"),
    (_lognormal(lambda z: z, lambda z, s, e: z * s * e), "factor 1/2"),
    (_lognormal(lambda z: z, lambda z, s, e: z * s ** 2 / 2), "after averaging"),
    (_lognormal(np.log, lambda z, s, e: np.log(z) * s * e / 2), "not log z"),
])
def test_typical_wrong_lognormal_gradients_get_their_hint(answer, hint):
    feedback = exercises.check("lognormal-pathwise", answer)
    assert not feedback and hint in feedback.hint, feedback
