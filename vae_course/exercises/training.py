"""Checkers of the training chapter's exercises."""

from __future__ import annotations

import math

import numpy as np

from . import Feedback, checker, compare
from .elbo import _numpy


def _as_scalar(got):
    return got.reshape(()) if got.size == 1 else got


@checker("iwae-bound", "training",
         "the K-sample importance-weighted bound per image from log-weights (K, n)")
def iwae_bound(answer):
    """``answer(log_w) -> (n,)``: log (1/K) sum_k exp(log_w[k]) for every column of ``log_w``."""
    rng = np.random.default_rng(0)
    k, n = 7, 5
    # log p(x, z_k) - log q(z_k | x) of real images: hundreds of nats below zero, so exp()
    # underflows to 0 even in float64.
    log_w = rng.normal(-800.0, 3.0, size=(k, n))
    got = _numpy(answer(log_w.copy()))
    expected = np.logaddexp.reduce(log_w, axis=0) - math.log(k)
    if got.shape == expected.shape and not np.all(np.isfinite(got)):
        return Feedback("iwae-bound", False, "your bound is -inf or NaN.",
                        "exp(-800) underflows to 0, so log(mean(exp(log_w))) is log 0. Take the "
                        "log of the average in log space: logsumexp(log_w, axis=0) - log K "
                        "(np.logaddexp.reduce, scipy.special.logsumexp or keras.ops.logsumexp).")
    wrong = [
        (log_w.mean(axis=0), "That is the average of the log-weights: the ELBO estimated with K "
                             "samples. The IWAE bound is the log of the average *weight*: "
                             "logsumexp over the K samples, minus log K."),
        (expected + math.log(k), "The - log K is missing: the bound is the log of the *average* "
                                 "of the K weights, not of their sum."),
        (log_w.max(axis=0), "That is the largest log-weight; the bound averages all K weights "
                            "(logsumexp - log K), and the largest one only dominates it."),
        (-expected, "The sign is flipped: this is a lower bound on log p(x), a negative number "
                    "here."),
    ]
    if got.shape == (k,):
        return Feedback("iwae-bound", False, f"your bound has shape {got.shape}: one value per "
                                             f"sample, expected one per image {expected.shape}.",
                        "log_w has shape (K, n), samples first: reduce over axis 0.")
    return compare("iwae-bound", got, expected, wrong, rtol=1e-6, atol=1e-4,   # float32 too
                   what="your bound")


@checker("free-bits", "training",
         "the free-bits KL term of a minibatch from per-example, per-dimension KLs (batch, d)")
def free_bits(answer):
    """``answer(kl, free_nats) -> ()``: sum_j max(free_nats, mean over the batch of kl[:, j]).

    The KL term of Kingma et al. (2016)'s objective, for a minibatch, with one group per
    latent dimension; the training loss uses it in place of the KL averaged over the batch.
    """
    rng = np.random.default_rng(0)
    batch, d, free = 8, 6, 0.5
    # Per-dimension KLs: two dimensions nearly collapsed, one just below the floor, the rest used.
    scale = np.array([0.01, 0.02, 0.4, 1.0, 2.0, 3.0])
    kl = rng.gamma(2.0, 0.5, size=(batch, d)) * scale
    got = _as_scalar(_numpy(answer(kl.astype("float32"), free)))
    mean_kl = kl.mean(axis=0)
    expected = np.maximum(free, mean_kl).sum()
    wrong = [
        (np.maximum(free, kl).sum(axis=1).mean(),
         "You applied the floor to each example's KL; free bits floor the minibatch *average* "
         "of each dimension's KL (an example may spend less than the floor if others spend "
         "more)."),
        (np.minimum(free, mean_kl).sum(), "max, not min: below the floor a dimension is charged "
                                          "the floor (a constant, so no gradient pushes its KL "
                                          "down); above it, its KL."),
        (np.maximum(free, mean_kl).mean(), "Sum over the latent dimensions, not average: the KL "
                                           "term is a sum over dimensions."),
        (mean_kl.sum(), "That is the plain KL term: no dimension is floored. The floor is "
                        "per latent dimension (a floor on the total KL does nothing once the "
                        "total exceeds it): take max(free_nats, average KL) per dimension, "
                        "then sum."),
        (np.maximum(free, kl.sum(axis=0)).sum(), "Average over the batch, not sum: each "
                                                 "dimension's KL is averaged over the examples "
                                                 "before the floor."),
    ]
    return compare("free-bits", got, np.asarray(expected), wrong, rtol=1e-5, atol=1e-5,
                   what="your KL term")
