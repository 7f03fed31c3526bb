"""Checkers of the ELBO chapter's exercises."""

from __future__ import annotations

import numpy as np

from . import Feedback, checker, compare


def _numpy(value):
    """The reader's result as float64 numpy (NumPy arrays, or tensors of any Keras backend)."""
    try:
        from keras import ops

        return np.asarray(ops.convert_to_numpy(value), dtype="float64")
    except Exception:   # plain Python numbers or lists, or no Keras
        return np.asarray(value, dtype="float64")


def _kl_inputs():
    rng = np.random.default_rng(0)
    mean = rng.normal(0.0, 1.5, size=(6, 4)).astype("float32")
    log_var = rng.uniform(-3.0, 2.0, size=(6, 4)).astype("float32")
    mean[0], log_var[0] = 0.0, 0.0                 # q equal to the prior: KL must be 0
    return mean, log_var


@checker("kl-closed-form", "elbo",
         "KL(N(mean, diag exp(log_var)) || N(0, I)) per example, from (mean, log_var) (n, d)")
def kl_closed_form(answer):
    """``answer(mean, log_var) -> (n,)`` KL divergence to the standard normal, in nats."""
    mean, log_var = _kl_inputs()
    got = _numpy(answer(mean.copy(), log_var.copy()))
    m, lv = mean.astype("float64"), log_var.astype("float64")
    per_dim = 0.5 * (np.exp(lv) + m ** 2 - 1.0 - lv)
    expected = per_dim.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma_read_as_std = 0.5 * np.sum(lv ** 2 + m ** 2 - 1.0 - np.log(lv ** 2), axis=1)
    read_as_std = ("You read log_var as the standard deviation sigma. It is the log of the "
                   "variance: sigma^2 = exp(log_var).")
    wrong = [
        (-expected, "The sign is flipped: a KL divergence is never negative. It is "
                    "1/2 sum_j (sigma_j^2 + mu_j^2 - 1 - log sigma_j^2)."),
        (per_dim, "One value per example is expected: sum the per-dimension terms over the "
                  "latent dimensions (axis=-1)."),
        (per_dim.mean(axis=1), "You averaged over the latent dimensions; the KL of a diagonal "
                               "Gaussian is the *sum* of the per-dimension KLs."),
        (2.0 * expected, "Off by a factor of 2: the formula has a 1/2 in front of the sum."),
        (expected + 0.5 * m.shape[1], "The -1 inside the sum is missing (check: for mean 0 and "
                                      "log_var 0, q is the prior and the KL must be 0)."),
        (0.5 * np.sum(np.exp(2 * lv) + m ** 2 - 1.0 - 2 * lv, axis=1),
         "You read log_var as log sigma. It is log sigma^2: sigma^2 = exp(log_var), and "
         "log sigma^2 is log_var itself."),
        (sigma_read_as_std, read_as_std),
        (0.5 * np.sum(np.exp(lv) + m ** 2 - 1.0 + lv, axis=1),
         "The log-variance term has the wrong sign: it is - log sigma^2."),
        (0.5 * np.sum(np.exp(0.5 * lv) + m ** 2 - 1.0 - lv, axis=1),
         "You used sigma = exp(log_var / 2) where the formula needs the variance "
         "sigma^2 = exp(log_var)."),
    ]
    if got.shape == expected.shape and not np.all(np.isfinite(got)):
        finite = np.isfinite(sigma_read_as_std)
        if (np.array_equal(np.isfinite(got), finite)
                and np.allclose(got[finite], sigma_read_as_std[finite], rtol=1e-4, atol=1e-4)):
            return Feedback("kl-closed-form", False, "your KL is infinite where log_var = 0.",
                            read_as_std)
        return Feedback("kl-closed-form", False, "your KL contains NaN or infinite values.",
                        "log_var may be any real number (0 means variance 1): the formula "
                        "needs no log of it and no division by it.")
    wrong = [(value, hint) for value, hint in wrong if np.all(np.isfinite(value))]
    return compare("kl-closed-form", got, expected, wrong, rtol=1e-4, atol=1e-4, what="your KL")


def _bernoulli_inputs():
    rng = np.random.default_rng(1)
    x = (rng.random((4, 28, 28, 1)) < 0.2).astype("float32")
    logits = rng.normal(0.0, 3.0, size=x.shape).astype("float32")
    # A few confident pixels, as a trained decoder outputs: |logit| of 40 to 120.
    logits[0, :4, 0, 0] = [40.0, -40.0, 120.0, -120.0]
    x[0, :4, 0, 0] = [0.0, 1.0, 1.0, 0.0]          # two confidently wrong, two confidently right
    return x, logits


@checker("bernoulli-log-likelihood", "elbo",
         "log p(x | logits) of binary images under independent Bernoulli pixels, per image")
def bernoulli_log_likelihood(answer):
    """``answer(x, logits) -> (n,)``: sum over pixels of x l - log(1 + e^l), in nats."""
    x, logits = _bernoulli_inputs()
    got = _numpy(answer(x.copy(), logits.copy()))
    xd, ld = x.astype("float64"), logits.astype("float64")
    per_pixel = xd * ld - np.logaddexp(0.0, ld)
    expected = per_pixel.reshape(len(x), -1).sum(axis=1)
    if got.shape == expected.shape and not np.all(np.isfinite(got)):
        return Feedback("bernoulli-log-likelihood", False,
                        "your log-likelihood is -inf or NaN for an image with confident pixels "
                        "(logits of +-40 to +-120).",
                        "sigmoid(40) rounds to exactly 1, so log(1 - sigmoid(40)) is log 0. Never "
                        "take the sigmoid first: use x * logits - softplus(logits), with "
                        "softplus(l) = log(1 + e^l) computed stably (np.logaddexp(0, l) or "
                        "keras.ops.softplus).")
    wrong = [
        (-expected, "The sign is flipped: a log-probability of a discrete outcome is <= 0. "
                    "(Binary cross-entropy is its negative.)"),
        (per_pixel.reshape(len(x), -1).mean(axis=1),
         "You averaged over the pixels; the log-likelihood of an image is the *sum* over its "
         "784 independent pixels."),
        (per_pixel.reshape(len(x), -1), "One value per image is expected: sum over the pixels."),
        (((1 - xd) * ld - np.logaddexp(0.0, ld)).reshape(len(x), -1).sum(axis=1),
         "x and 1 - x are swapped: a pixel that is on (x = 1) should contribute "
         "log sigmoid(l) = l - softplus(l)."),
        ((xd * ld - np.logaddexp(0.0, -ld)).reshape(len(x), -1).sum(axis=1),
         "log sigmoid(l) = -softplus(-l), but log(1 - sigmoid(l)) = -softplus(l): with "
         "x l - softplus(l) the softplus takes +l."),
    ]
    clipped = np.clip(1.0 / (1.0 + np.exp(-ld)), 1e-7, 1 - 1e-7)
    wrong.append(((xd * np.log(clipped) + (1 - xd) * np.log(1 - clipped))
                  .reshape(len(x), -1).sum(axis=1),
                  "Close, but clipping the probabilities (as Keras's from_logits=False does) "
                  "changes the answer for confident pixels. Work with the logits: "
                  "x * logits - softplus(logits)."))
    if got.shape == () or got.size == 1:
        return Feedback("bernoulli-log-likelihood", False,
                        f"you returned one number; expected one per image, shape {expected.shape}.",
                        "Sum over the pixel axes only (e.g. reshape to (n, -1), then sum "
                        "over axis 1).")
    return compare("bernoulli-log-likelihood", got, expected, wrong, rtol=1e-4, atol=1e-3,
                   what="your log-likelihood")
