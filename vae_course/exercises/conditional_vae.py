"""Checkers of the conditional-VAE chapter's exercises."""

from __future__ import annotations

import numpy as np

from . import Feedback, checker, compare


@checker("bayes-posterior", "conditional_vae",
         "log p(y | x) from log p(x | y) (n, classes) and a prior log p(y)")
def bayes_posterior(answer):
    """``answer(log_px_given_y, log_prior) -> log p(y | x)``, both arrays, (n, classes)."""
    rng = np.random.default_rng(0)
    # hundreds of nats each, as for real images: exp() of them underflows even in float64
    log_px_y = rng.normal(-800.0, 5.0, size=(6, 10))
    log_prior = np.log(rng.dirichlet(np.ones(10)))
    got = answer(log_px_y.copy(), log_prior.copy())
    joint = log_px_y + log_prior
    expected = joint - np.logaddexp.reduce(joint, axis=1, keepdims=True)
    if np.asarray(got).shape == expected.shape and not np.all(np.isfinite(got)):
        return Feedback("bayes-posterior", False, "your log-posterior has -inf or NaN entries.",
                        "exp(-800) underflows to 0 even in float64: normalize in log space with "
                        "a log-sum-exp (np.logaddexp.reduce or scipy.special.logsumexp).")
    flat_prior = log_px_y - np.logaddexp.reduce(log_px_y, axis=1, keepdims=True)
    wrong = [
        (joint, "These are log p(x | y) + log p(y), the joint: subtract its log-sum-exp over "
                "the labels so that each row sums to one."),
        (flat_prior, "The prior is missing: add log p(y) to every row before normalizing."),
        (log_px_y - log_prior - np.logaddexp.reduce(log_px_y - log_prior, axis=1, keepdims=True),
         "The prior enters with the wrong sign: p(y | x) is proportional to p(x | y) p(y)."),
        (joint - np.logaddexp.reduce(joint, axis=0, keepdims=True),
         "You normalized over the images (axis 0); normalize over the labels (axis 1)."),
        (np.exp(expected), "These are probabilities; the exercise asks for log-probabilities."),
    ]
    return compare("bayes-posterior", got, expected, wrong, rtol=1e-6, atol=1e-6,
                   what="the log-posterior")
