"""Checkers of the reparameterization chapter's exercises.

Both take the reader's gradient estimator, run it on fixed noise against the reference, then
on many draws of a toy problem whose gradient is known exactly, to say whether it is unbiased.
"""

from __future__ import annotations

import math

import numpy as np

from . import Feedback, checker, compare

_MU = np.array([0.3, -0.4, 0.1])
_LOG_VAR = np.array([0.2, -0.7, -1.5])
_A = np.array([1.0, -0.5, 2.0])
_OFFSET = 25.0   # f is far from zero, as a log-likelihood is: a missing baseline shows


def _toy(z):
    """f(z) = sum_j (z_j - a_j)^2 + 25, on NumPy arrays (n, 3) -> (n,)."""
    return np.sum((np.asarray(z, np.float64) - _A) ** 2, axis=-1) + _OFFSET


def _toy_gradient():
    """Exact d/d(mu, log_var) of E[f] = |mu - a|^2 + sum exp(log_var) + 25."""
    return np.concatenate([2.0 * (_MU - _A), np.exp(_LOG_VAR)])


def _as_pair(out, n, d):
    """The reader's (grad_mu, grad_log_var) as one (n, 2d) array, or a reason it is not."""
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        return None, f"expected a pair (grad_mu, grad_log_var), received {type(out).__name__}"
    g_mu, g_lv = (np.asarray(o, np.float64) for o in out)
    if g_mu.shape != (n, d) or g_lv.shape != (n, d):
        return None, (f"expected two arrays of shape {(n, d)} (one estimate per draw), "
                      f"received {g_mu.shape} and {g_lv.shape}")
    return np.concatenate([g_mu, g_lv], axis=1), ""


def _unbiased(answer, draws_per_call, calls, seed=1):
    """Mean over many calls on the toy vs the exact gradient: (ok, worst |error| / s.e.)."""
    rng = np.random.default_rng(seed)
    d = len(_MU)
    pool = []
    for _ in range(calls):
        eps = rng.standard_normal((draws_per_call, d))
        got, _ = _as_pair(answer(_toy, _MU.copy(), _LOG_VAR.copy(), eps), draws_per_call, d)
        pool.append(got)
    pool = np.concatenate(pool)
    mean = pool.mean(0)
    se = pool.std(0, ddof=1) / math.sqrt(len(pool))
    worst = float(np.max(np.abs(mean - _toy_gradient()) / se))
    return worst < 4.5, worst, pool


# -- exercise: the score-function estimator with a leave-one-out baseline ----------------------
def score_with_baseline_reference(f, mu, log_var, eps):
    """One score-function estimate per draw with the leave-one-out baseline.

    z_i = mu + sigma * eps_i; b_i = mean of f(z_j) over the other draws j != i (independent of
    z_i, so the estimate stays unbiased); estimate_i = (f(z_i) - b_i) * d log q(z_i) / d theta.
    """
    sigma = np.exp(0.5 * log_var)
    values = f(mu + sigma * eps)
    n = len(values)
    baseline = (values.sum() - values) / (n - 1)
    weight = (values - baseline)[:, None]
    return weight * eps / sigma, weight * 0.5 * (eps ** 2 - 1.0)


@checker("score-function-baseline", "reparameterization",
         "score-function gradient estimates with a leave-one-out baseline")
def score_function_baseline(answer):
    """``answer(f, mu, log_var, eps) -> (grad_mu (n, d), grad_log_var (n, d))``."""
    name = "score-function-baseline"
    eps = np.random.default_rng(0).standard_normal((6, 3))
    got, why = _as_pair(answer(_toy, _MU.copy(), _LOG_VAR.copy(), eps.copy()), 6, 3)
    if got is None:
        return Feedback(name, False, why, "Return one row per draw: the estimates are averaged "
                                          "by the caller.")
    sigma = np.exp(0.5 * _LOG_VAR)
    values = _toy(_MU + sigma * eps)
    score = np.concatenate([eps / sigma, 0.5 * (eps ** 2 - 1.0)], axis=1)
    loo = (values.sum() - values) / (len(values) - 1)
    expected = (values - loo)[:, None] * score
    wrong = [
        (values[:, None] * score,
         "No baseline was subtracted: that estimator is unbiased too, but its variance grows "
         "with f^2. Subtract b_i, the mean of f over the *other* draws."),
        ((values - values.mean())[:, None] * score,
         "Your baseline averages over all draws, including draw i itself, so it depends on "
         "z_i: the estimate shrinks by a factor (n - 1)/n on average (biased). Leave draw i out."),
        (np.zeros_like(expected),
         "Every estimate is zero: b_i = f(z_i) cancels the signal. The baseline must not "
         "depend on z_i."),
        ((values - loo)[:, None] * np.concatenate([eps * sigma, 0.5 * (eps ** 2 - 1.0)], 1),
         "The score with respect to the mean is (z - mu) / sigma^2 = eps / sigma."),
        ((values - loo)[:, None] * np.concatenate([eps / sigma, eps ** 2 - 1.0], 1),
         "The score with respect to log_var has a factor 1/2: ((z - mu)^2 / sigma^2 - 1) / 2."),
        ((values - loo)[:, None] * np.concatenate([eps / sigma, 0.5 * eps ** 2], 1),
         "The score with respect to log_var is ((z - mu)^2 / sigma^2 - 1) / 2: the -1 makes "
         "it zero on average, which is what lets a baseline in."),
        (-expected, "The sign is flipped: the estimate is (f - b) times the score, "
                    "d log q / d theta, not minus it."),
    ]
    feedback = compare(name, got, expected, wrong, rtol=1e-6, atol=1e-8,
                       what="your result")
    if not feedback.ok and feedback.hint.startswith("Compare with"):
        ok, worst, _ = _unbiased(answer, 5, 2000)
        feedback.hint = ("It is unbiased on the toy problem, but not the leave-one-out estimator "
                         "asked for: b_i is the mean of f over the other n - 1 draws." if ok else
                         f"On a toy problem with a known gradient its average is {worst:.1f} "
                         "standard errors away: biased. Check each factor against the chapter.")
    if feedback.ok:
        ok, worst, pool = _unbiased(answer, 5, 2000)
        feedback.message += (f" Unbiased on a toy problem: its average over {len(pool):,} "
                             f"estimates is within {worst:.1f} standard errors of the exact "
                             "gradient.")
        feedback.details["worst_z"] = worst
    return feedback


# -- exercise: the pathwise gradient of a log-normal ---------------------------------------------
def lognormal_pathwise_reference(dfdz, mu, log_var, eps):
    """z = exp(mu + sigma * eps): dz/dmu = z, dz/dlog_var = z * sigma * eps / 2 (per draw)."""
    sigma = np.exp(0.5 * log_var)
    z = np.exp(mu + sigma * eps)
    return dfdz * z, dfdz * z * sigma * eps / 2.0


@checker("lognormal-pathwise", "reparameterization",
         "pathwise gradient of E[f(z)] for a log-normal z = exp(mu + sigma * eps)")
def lognormal_pathwise(answer):
    """``answer(dfdz, mu, log_var, eps) -> (grad_mu (n, d), grad_log_var (n, d))``."""
    name = "lognormal-pathwise"
    rng = np.random.default_rng(0)
    eps, dfdz = rng.standard_normal((6, 3)), rng.standard_normal((6, 3))
    got, why = _as_pair(answer(dfdz.copy(), _MU.copy(), _LOG_VAR.copy(), eps.copy()), 6, 3)
    if got is None:
        return Feedback(name, False, why, "Return one row per draw.")
    sigma = np.exp(0.5 * _LOG_VAR)
    z = np.exp(_MU + sigma * eps)
    expected = np.concatenate([dfdz * z, dfdz * z * sigma * eps / 2], axis=1)
    wrong = [
        (np.concatenate([dfdz, dfdz * sigma * eps / 2], 1),
         "These are the Gaussian's pathwise gradients: z = exp(u) with u = mu + sigma * eps, "
         "so the chain rule adds a factor dz/du = z."),
        (np.concatenate([dfdz * z, dfdz * z * sigma * eps], 1),
         "d sigma / d log_var = sigma / 2: the log_var gradient has a factor 1/2."),
        (np.concatenate([dfdz * z, dfdz * z * sigma ** 2 / 2], 1),
         "That is the exact gradient's factor, E[z] sigma^2 / 2, which appears only after "
         "averaging over eps; one draw's pathwise gradient is df/dz * z * sigma * eps / 2."),
        (np.concatenate([dfdz * np.log(z), dfdz * np.log(z) * sigma * eps / 2], 1),
         "dz/du for z = exp(u) is exp(u) = z itself, not log z."),
    ]
    feedback = compare(name, got, expected, wrong, rtol=1e-6, atol=1e-8,
                       what="your result")
    if feedback.ok:
        # E[sum z] = sum exp(mu + sigma^2 / 2): d/dmu = E[z], d/dlog_var = E[z] sigma^2 / 2
        draws = np.random.default_rng(1).standard_normal((200_000, 3))
        g_mu, g_lv = answer(np.ones_like(draws), _MU.copy(), _LOG_VAR.copy(), draws)
        pool = np.concatenate([np.asarray(g_mu), np.asarray(g_lv)], axis=1)
        mean_z = np.exp(_MU + np.exp(_LOG_VAR) / 2)
        exact = np.concatenate([mean_z, mean_z * np.exp(_LOG_VAR) / 2])
        se = pool.std(0, ddof=1) / math.sqrt(len(pool))
        worst = float(np.max(np.abs(pool.mean(0) - exact) / se))
        feedback.message += (f" With f(z) = sum(z), the average of 200,000 estimates is within "
                             f"{worst:.1f} standard errors of the exact gradient of "
                             "E[z] = exp(mu + sigma^2 / 2).")
        feedback.details["worst_z"] = worst
    return feedback
