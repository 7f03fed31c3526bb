"""Checkers of the autoencoder chapter's exercises (chapter 1)."""

from __future__ import annotations

import numpy as np

from . import Feedback, checker, compare

D = 784                       # pixels of an MNIST image
SIGMAS = (0.1, 0.5)           # two noise levels, so that sigma and sigma**2 cannot be confused


def _images(n=5, seed=0):
    """A batch of images x and reconstructions x_hat, (n, 28, 28, 1) float64 in [0, 1]."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 1.0, (n, 28, 28, 1))
    x_hat = np.clip(x + rng.normal(0.0, 0.2, x.shape), 0.0, 1.0)
    return x, x_hat


@checker("squared-error", "autoencoders",
         "summed squared error per image, (n,), from x and x_hat (n, 28, 28, 1)")
def squared_error(answer):
    """``answer(x, x_hat) -> (n,)``: the sum over pixels of (x - x_hat)^2, one value per image."""
    x, x_hat = _images()
    got = answer(x.copy(), x_hat.copy())
    diff = (x - x_hat).reshape(len(x), -1)                       # (n, 784)
    expected = np.sum(diff**2, axis=1)
    wrong = [
        (np.mean(diff**2, axis=1), "This is the mean over the pixels (MSE per pixel): sum the "
                                   "784 squared differences instead, as in the chapter."),
        (np.sum(diff**2), "One number for the whole batch: sum over the pixels of each image "
                          "only, keeping one value per image."),
        (np.mean(diff**2), "One number for the whole batch (the MSE): sum over the pixels of "
                           "each image only, keeping one value per image."),
        (np.sum((x - x_hat) ** 2, axis=0), "You summed over the images (axis 0); sum over the "
                                           "pixels (axes 1, 2, 3) instead."),
        (np.sqrt(expected), "This is the distance ||x - x_hat||; the exercise asks for its "
                            "square (no square root)."),
        (np.sum(np.abs(diff), axis=1), "These are absolute differences; square them."),
    ]
    return compare("squared-error", got, expected, wrong, rtol=1e-5, atol=1e-6,
                   what="the squared error per image")


@checker("gaussian-log-likelihood", "autoencoders",
         "log N(x; x_hat, sigma^2 I) per image, (n,), summed over the 784 pixels")
def gaussian_log_likelihood(answer):
    """``answer(x, x_hat, sigma) -> (n,)``: log p(x | x_hat) for independent Gaussian pixels
    with mean x_hat and standard deviation sigma, summed over the pixels of each image."""
    x, x_hat = _images()
    got = np.stack([np.asarray(answer(x.copy(), x_hat.copy(), s), dtype="float64")
                    for s in SIGMAS])                             # (2, n)
    sq = np.sum((x - x_hat).reshape(len(x), -1) ** 2, axis=1)    # (n,)

    def loglik(quad, const):
        return np.stack([-quad(s) - const(s) for s in SIGMAS])

    expected = loglik(lambda s: sq / (2 * s**2), lambda s: D / 2 * np.log(2 * np.pi * s**2))
    wrong = [
        (-expected, "The sign is flipped: this is the negative log-likelihood (the loss). The "
                    "log-likelihood is -||x - x_hat||^2 / (2 sigma^2) - (D/2) log(2 pi sigma^2)."),
        (loglik(lambda s: sq / (2 * s**2), lambda s: 0.0),
         "The normalizing constant -(D/2) log(2 pi sigma^2) is missing. It does not depend on "
         "x_hat, so it does not change training, but it is part of log p(x | x_hat)."),
        (loglik(lambda s: sq / s**2, lambda s: D / 2 * np.log(2 * np.pi * s**2)),
         "The squared error needs the factor 1/2: divide by 2 sigma^2, not sigma^2."),
        (loglik(lambda s: sq / (2 * s), lambda s: D / 2 * np.log(2 * np.pi * s)),
         "sigma is the standard deviation: the variance is sigma**2, in the quadratic term and "
         "in the constant."),
        (loglik(lambda s: sq / (2 * s**2), lambda s: D / 2 * np.log(2 * np.pi * s)),
         "The constant uses sigma where it needs the variance: (D/2) log(2 pi sigma^2) = "
         "(D/2) log(2 pi) + D log(sigma)."),
        (loglik(lambda s: sq / (2 * s**2), lambda s: 0.5 * np.log(2 * np.pi * s**2)),
         "The constant counts one pixel: each of the D = 784 pixels contributes "
         "-(1/2) log(2 pi sigma^2)."),
        (expected / D, "This is an average over the pixels: the pixels are independent given "
                       "x_hat, so their log-densities add (sum, do not average)."),
    ]
    if np.asarray(got).shape == (len(SIGMAS),):
        return Feedback("gaussian-log-likelihood", False,
                        "your function returns one number per batch, expected one per image.",
                        "Sum over the pixels of each image only (axes 1, 2, 3), not over the "
                        "batch.")
    return compare("gaussian-log-likelihood", got, expected, wrong, rtol=1e-5, atol=1e-3,
                   what="the log-likelihood per image")
