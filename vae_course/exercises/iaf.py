"""Checkers of the IAF chapter's exercises (NumPy only: no training, no backend needed)."""

from __future__ import annotations

import math

import numpy as np

from . import Feedback, checker, compare

LN2 = math.log(2.0)


# -- bits per dimension --------------------------------------------------------------------
def _bits_per_dim_case(answer, nll, shape):
    """Feedback for one image shape; ``nll`` (n,) nats per image."""
    dims = int(np.prod(shape))
    got = answer(nll.copy(), tuple(shape))
    expected = nll / (dims * LN2)
    pixels = int(np.prod(shape[:-1]))
    wrong = [
        (nll / dims, "These are nats per dimension: divide by ln 2 as well "
                     "(one bit is ln 2 = 0.693 nats)."),
        (nll * LN2 / dims, "You multiplied by ln 2. One bit is ln 2 nats, so a number of nats "
                           "becomes bits when divided by ln 2."),
        (nll / (dims * math.log10(2.0)), "That is log base 10 of 2. Nats are natural-log "
                                         "units: divide by the natural log, ln 2 = 0.693."),
        (nll / (784 * LN2), "You divided by 784, the size of an MNIST image. Take the "
                            "number of dimensions from image_shape (32 x 32 x 3 = 3,072 for "
                            "CIFAR-10)."),
        (nll / (3072 * LN2), f"You divided by 3,072 for an image of shape {tuple(shape)}: "
                             f"take the number of dimensions from image_shape."),
        (nll / (pixels * LN2), "You divided by the number of pixels. Every pixel has one "
                               "number per channel: count the sub-pixels, height x width x "
                               "channels."),
        (-expected, "The sign: a negative log-likelihood is positive, and so is bits/dim. "
                    "If you passed an ELBO or a log-likelihood, negate it first."),
        (expected + 8, "The + 8 belongs to a continuous density on pixels rescaled to [0, 1]; "
                       "a discrete model's nats convert with no offset."),
        (nll / LN2, "These are bits per image: divide by the number of dimensions too."),
    ]
    wrong = [(v, h) for v, h in wrong if not np.allclose(v, expected, rtol=1e-6)]
    return compare("bits-per-dim", got, expected, wrong, rtol=1e-5, atol=1e-9,
                   what=f"bits/dim for images of shape {tuple(shape)}")


@checker("bits-per-dim", "iaf",
         "bits per dimension from a negative log-likelihood in nats per image")
def bits_per_dim(answer):
    """``answer(nll_nats, image_shape) -> bits/dim``: ``nll_nats`` (n,), one per image."""
    rng = np.random.default_rng(0)
    cases = [(rng.uniform(6_000.0, 17_000.0, size=5), (32, 32, 3)),   # CIFAR-10
             (rng.uniform(60.0, 200.0, size=4), (28, 28, 1))]           # MNIST
    for nll, shape in cases:
        feedback = _bits_per_dim_case(answer, nll, shape)
        if not feedback:
            return feedback
    return Feedback("bits-per-dim", True, "bits/dim match the reference for CIFAR-10 and "
                                          "MNIST shapes.")


# -- the log-determinant of an IAF step ----------------------------------------------------
def _log_sigmoid(s):
    return -np.logaddexp(0.0, -s)


@checker("iaf-log-det", "iaf",
         "log|det dz_new/dz| of an IAF step from the MADE's outputs (m, s)")
def iaf_log_det(answer):
    """``answer(m, s) -> log|det dz_new/dz|`` per example for z_new = sigma*z + (1-sigma)*m,
    sigma = sigmoid(s). ``m``, ``s``: (batch, dim) vectors or (batch, h, w, c) latent maps."""
    rng = np.random.default_rng(0)
    for shape in ((4, 6), (3, 4, 4, 5)):            # a latent vector, then a latent map
        m = rng.normal(size=shape)
        s = rng.normal(1.0, 3.0, size=shape)
        got = answer(m.copy(), s.copy())
        shifted = answer(m + 1.0, s.copy())
        if np.shape(got) == np.shape(shifted) and not np.allclose(
                np.asarray(got, dtype="float64"), np.asarray(shifted, dtype="float64")):
            return Feedback("iaf-log-det", False, "your log-determinant changes when only m "
                                                  "changes.",
                            "m_i depends on z_1..z_{i-1} only: it fills the Jacobian below "
                            "the diagonal and never enters the determinant.")
        log_sigma = _log_sigmoid(s)
        expected = log_sigma.reshape(shape[0], -1).sum(axis=1)
        wrong = [
            (-expected, "The sign: the step multiplies z_i by sigma_i, so log|det| = "
                        "+sum(log sigma). It enters log q(z_T|x) with a minus sign."),
            (log_sigma, "One value per example: sum log sigma over every latent dimension."),
            (log_sigma.sum(axis=-1), "Sum over every latent dimension (height, width and "
                                     "channels of a map), not only the last axis."),
            (log_sigma.sum(), "One value per example: do not sum over the batch."),
            (_log_sigmoid(-s).reshape(shape[0], -1).sum(axis=1),
             "You used log(1 - sigma), the weight of m. The diagonal of the Jacobian is "
             "dz_new_i/dz_i = sigma_i."),
            (1.0 / (1.0 + np.exp(-s)), "One value per example, and take the log of sigma."),
            ((1.0 / (1.0 + np.exp(-s))).reshape(shape[0], -1).sum(axis=1),
             "The log is missing: the determinant is the product of the sigma_i, its log "
             "the sum of log sigma_i."),
            (s.reshape(shape[0], -1).sum(axis=1),
             "log sigmoid(s) is not s: log sigmoid(s) = -softplus(-s) = -log(1 + exp(-s))."),
            (expected / np.prod(shape[1:]), "You averaged over the dimensions; the log of a "
                                           "product of diagonal entries is their sum."),
        ]
        feedback = compare("iaf-log-det", got, expected, wrong, rtol=1e-5, atol=1e-4,
                           what=f"the log-determinant for inputs of shape {shape}")
        if not feedback:
            return feedback
    return Feedback("iaf-log-det", True, "the log-determinant matches the reference for "
                                         "latent vectors and latent maps.")
