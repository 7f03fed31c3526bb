"""Checkers of the convolutional-VAE chapter's exercises."""

from __future__ import annotations

import math

import numpy as np

from . import Feedback, checker, compare


LOG_2PI = math.log(2.0 * math.pi)


def _inputs(seed=0, k=40):
    """log p(x_i | z_ki) (k, 3) at draws z (k, 3, 2) from a Gaussian q per image (3, 2)."""
    rng = np.random.default_rng(seed)
    mean = rng.normal(0.0, 1.0, size=(3, 2))
    log_var = rng.normal(-3.0, 0.5, size=(3, 2))
    eps = rng.standard_normal((k, 3, 2))
    z = mean + np.exp(0.5 * log_var) * eps
    # decoders' log-likelihoods of real images: hundreds of nats below zero
    log_px = rng.normal(0.0, 3.0, size=(k, 3)) + np.array([-100.0, -420.0, -900.0])
    return log_px, z, mean, log_var


def is_bound_reference(log_px, z, mean, log_var):
    """log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k) per image, z_k ~ q = N(mean, diag(exp(log_var))).

    ``log_px`` (K, n), ``z`` (K, n, d), ``mean`` and ``log_var`` (n, d) -> (n,)."""
    log_prior = -0.5 * np.sum(LOG_2PI + z ** 2, axis=-1)
    log_q = -0.5 * np.sum(LOG_2PI + log_var + (z - mean) ** 2 / np.exp(log_var), axis=-1)
    log_w = log_px + log_prior - log_q
    top = log_w.max(axis=0)
    return top + np.log(np.mean(np.exp(log_w - top), axis=0))


def _log_mean_exp(log_w):
    top = log_w.max(axis=0)
    return top + np.log(np.mean(np.exp(log_w - top), axis=0))


@checker("is-bound-proposal", "conv_vae",
         "importance-sampled bound on log p(x) with a Gaussian proposal q, from log p(x|z_k)")
def is_bound_proposal(answer):
    """``answer(log_px (K, n), z (K, n, d), mean (n, d), log_var (n, d)) -> (n,)``."""
    name = "is-bound-proposal"
    log_px, z, mean, log_var = _inputs()
    k, d = len(z), z.shape[-1]
    got = np.asarray(answer(log_px.copy(), z.copy(), mean.copy(), log_var.copy()), "float64")
    if got.shape == (k,):
        return Feedback(name, False, f"your bound has shape {got.shape}, expected (3,): one "
                                     "number per image.",
                        "log_px is (K, n), samples first: reduce over axis 0.")
    if got.shape == (3,) and not np.all(np.isfinite(got)):
        return Feedback(name, False, "your bound is -inf or NaN for some images.",
                        "exp(-900) underflows to 0 even in float64: average the weights in log "
                        "space, subtracting each image's largest log weight (log-sum-exp, the "
                        "exercise of the training chapter).")
    log_prior = -0.5 * np.sum(LOG_2PI + z ** 2, axis=-1)
    log_q = -0.5 * np.sum(LOG_2PI + log_var + (z - mean) ** 2 / np.exp(log_var), axis=-1)
    log_w = log_px + log_prior - log_q
    expected = _log_mean_exp(log_w)
    half_log_det = 0.5 * np.sum(log_var, axis=-1)
    wrong = [
        (log_w.mean(axis=0),
         "This is the average log weight: an ELBO estimate (with q's ELBO as its expectation), "
         "below the bound by Jensen's inequality. Average the weights, then take the log."),
        (expected + math.log(k), "The 1/K is missing: subtract log K."),
        (_log_mean_exp(log_px - log_q),
         "The prior is missing: a weight is p(x|z) p(z) / q(z), with log p(z) = log N(z; 0, I)."),
        (_log_mean_exp(log_px + log_prior),
         "The proposal's density is missing: divide by q(z), i.e. subtract log q(z)."),
        (_log_mean_exp(log_w - half_log_det[None]),
         "log q(z) lacks its -1/2 sum(log_var) term (the log-determinant of q's covariance): "
         "with narrow posteriors it is several nats per image."),
        (_log_mean_exp(log_w + 0.5 * d * LOG_2PI),
         "Off by (d/2) log 2 pi: the constant is in log p(z) and in log q(z); it cancels only "
         "if both have it."),
        (_log_mean_exp(log_w - 0.5 * d * LOG_2PI),
         "Off by (d/2) log 2 pi: the constant is in log p(z) and in log q(z); it cancels only "
         "if both have it."),
        (_log_mean_exp(log_px),
         "This averages p(x|z) alone: the weights need p(z) / q(z) too."),
    ]
    return compare(name, got, expected, wrong, rtol=1e-6, atol=1e-4, what="your result")


@checker("upsampling-decoder", "conv_vae",
         "a decoder z -> 28x28x1 logits that upsamples instead of transposed convolutions")
def upsampling_decoder(answer):
    """``answer(latent_dim) -> keras.Model`` from z (batch, latent_dim) to logits (batch, 28,
    28, 1), with UpSampling2D layers and no Conv2DTranspose."""
    import keras

    name = "upsampling-decoder"
    model = answer(2)
    if not isinstance(model, keras.Model):
        return Feedback(name, False, f"expected a keras.Model, received {type(model).__name__}.",
                        "Build it with keras.Input((latent_dim,)) and return "
                        "keras.Model(z, logits).")
    kinds = [type(layer).__name__ for layer in model._flatten_layers(include_self=False)]
    in_shape = tuple(model.inputs[0].shape[1:])
    out_shape = tuple(model.outputs[0].shape[1:])
    if in_shape != (2,):
        return Feedback(name, False, f"the input has shape {in_shape}, expected (2,) for "
                                     "latent_dim=2.", "Use keras.Input((latent_dim,)).")
    if "Conv2DTranspose" in kinds:
        return Feedback(name, False, "the decoder still has a Conv2DTranspose layer.",
                        "Replace each stride-2 transposed convolution by UpSampling2D(2) "
                        "followed by a Conv2D with padding='same'.")
    if "UpSampling2D" not in kinds:
        return Feedback(name, False, "the decoder has no UpSampling2D layer.",
                        "Grow 7x7 to 28x28 with two UpSampling2D(2) layers, each followed by "
                        "a Conv2D.")
    if out_shape != (28, 28, 1):
        return Feedback(name, False, f"the output has shape {out_shape}, expected (28, 28, 1).",
                        "One logit per pixel: two doublings from 7x7, and a last Conv2D with "
                        "1 filter and padding='same'.")
    last = model.layers[-1]
    activation = getattr(getattr(last, "activation", None), "__name__", "linear")
    if activation != "linear":
        return Feedback(name, False, f"the last layer applies {activation!r}.",
                        "The decoder returns logits: the Bernoulli log-likelihood applies the "
                        "sigmoid itself (and a relu would forbid logits below 0).")
    z = np.random.default_rng(0).standard_normal((4, 2)).astype("float32")
    out = np.asarray(keras.ops.convert_to_numpy(model(z)))
    if not np.all(np.isfinite(out)):
        return Feedback(name, False, "the decoder returns NaN or infinite values.",
                        "Check the layers' activations.")
    params = model.count_params()
    if not 10_000 <= params <= 200_000:
        return Feedback(name, False, f"it has {params:,} parameters; the tutorial's decoder "
                                     "has 41,953.",
                        "Keep the tutorial's sizes (a 7x7x32 map, then 64 and 32 filters) so "
                        "the comparison is about upsampling, not size.")
    return Feedback(name, True, f"a {len(model.layers)}-layer decoder with {params:,} "
                                f"parameters ({kinds.count('UpSampling2D')} upsampling "
                                "layers) maps z to 28x28x1 logits.", details={"params": params})


def upsampling_decoder_reference(latent_dim):
    """The tutorial's decoder with each stride-2 transposed convolution replaced by
    nearest-neighbour upsampling and a 3x3 convolution (the same number of weights)."""
    import keras
    from keras import layers

    z = keras.Input((latent_dim,), name="z")
    h = layers.Dense(7 * 7 * 32, activation="relu")(z)
    h = layers.Reshape((7, 7, 32))(h)
    h = layers.UpSampling2D(2)(h)                                              # 7 -> 14
    h = layers.Conv2D(64, 3, padding="same", activation="relu")(h)
    h = layers.UpSampling2D(2)(h)                                              # 14 -> 28
    h = layers.Conv2D(32, 3, padding="same", activation="relu")(h)
    logits = layers.Conv2D(1, 3, padding="same", dtype="float32")(h)
    return keras.Model(z, logits, name="upsampling_decoder")
