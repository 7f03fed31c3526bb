"""Evaluation: ELBO estimates and the importance-sampled log-likelihood (IWAE bound).

All functions take a trained :class:`vae_course.models.VAE` and images ``x`` of shape
(n, 28, 28, 1) in {0, 1}, and return one number per image (numpy, nats).
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from . import losses


def _batches(n, batch_size):
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


def elbo(model, x, batch_size=500, estimator="analytic", seed=0):
    """Per-image single-sample ELBO estimate, (n,) in nats.

    ``estimator="analytic"`` uses the closed-form KL; ``"monte_carlo"`` uses
    log p(z) - log q(z|x) at the sampled z (the TensorFlow tutorial's estimator). Both have
    the same expectation over z.
    """
    x = model.check_inputs(x)
    rng = keras.random.SeedGenerator(seed)
    out = []
    if hasattr(model, "log_weights"):  # FlowVAE (8-bit images): its own single-sample terms
        for s in _batches(len(x), batch_size):
            log_w = model.log_weights(x[s], 1, seed=rng)
            out.append(ops.convert_to_numpy(log_w[0]))
        return np.concatenate(out)
    for s in _batches(len(x), batch_size):
        xb = x[s]
        z_mean, z_log_var = model.encode(xb)
        z = z_mean + ops.exp(0.5 * z_log_var) * keras.random.normal(ops.shape(z_mean), seed=rng)
        logits = model.decode(z)
        if estimator == "analytic":
            value = losses.elbo_analytic(xb, logits, z_mean, z_log_var)
        elif estimator == "monte_carlo":
            value = losses.elbo_monte_carlo(xb, logits, z, z_mean, z_log_var)
        else:
            raise ValueError(f"Expected estimator 'analytic' or 'monte_carlo'. "
                             f"Received: estimator={estimator!r}")
        out.append(ops.convert_to_numpy(value))
    return np.concatenate(out)


def log_likelihood(model, x, k=1000, batch_size=None, max_decode=4096, seed=0):
    """Importance-sampled estimate of log p(x) with K samples from q(z|x), (n,) in nats.

        log p(x) >= log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x),   z_k ~ q(z|x)

    This is the IWAE bound of Burda et al. (2016): K=1 is the ELBO, it never decreases in
    expectation as K grows, and it tends to log p(x) as K -> infinity. The sum is taken in
    log space with a running log-sum-exp; images go through the decoder at most
    ``max_decode`` at a time, so memory stays bounded for any K and any n.
    """
    x = model.check_inputs(x)
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"Expected k >= 1 importance samples. Received: k={k!r}")
    if k > 1_000_000:
        raise ValueError(f"Expected k <= 1e6 importance samples. Received: k={k}")
    batch_size = batch_size or max(1, min(len(x), max_decode // min(k, max_decode) * 4, 256))
    chunk = max(1, max_decode // batch_size)
    rng = keras.random.SeedGenerator(seed)
    out = []
    if hasattr(model, "log_weights"):  # FlowVAE: the model computes its importance weights
        for s in _batches(len(x), batch_size):
            running, done = None, 0
            while done < k:
                c = min(chunk, k - done)
                log_w = model.log_weights(x[s], c, seed=rng)               # (c, b)
                if running is not None:
                    log_w = ops.concatenate([running[None], log_w], axis=0)
                running = ops.logsumexp(log_w, axis=0)
                done += c
            out.append(ops.convert_to_numpy(running) - math.log(k))
        return np.concatenate(out)
    for s in _batches(len(x), batch_size):
        xb = ops.convert_to_tensor(x[s])
        b = xb.shape[0]
        x_flat = ops.reshape(xb, (1, b, -1))
        z_mean, z_log_var = model.encode(xb)
        std = ops.exp(0.5 * z_log_var)
        running = None
        done = 0
        while done < k:
            c = min(chunk, k - done)
            eps = keras.random.normal((c, b, model.latent_dim), seed=rng)
            z = z_mean[None] + std[None] * eps                       # (c, b, latent)
            # the decoder's compiled predict step: faster than op-by-op calls here
            logits = model.decoder.predict_on_batch(ops.reshape(z, (c * b, model.latent_dim)))
            logits = ops.reshape(ops.cast(logits, "float32"), (c, b, -1))
            log_px_z = ops.sum(x_flat * logits - ops.softplus(logits), axis=-1)
            log_pz = -0.5 * ops.sum(math.log(2 * math.pi) + ops.square(z), axis=-1)
            log_qz = -0.5 * ops.sum(math.log(2 * math.pi) + z_log_var[None]
                                    + ops.square(eps), axis=-1)
            log_w = log_px_z + log_pz - log_qz                        # (c, b)
            if running is not None:
                log_w = ops.concatenate([running[None], log_w], axis=0)
            running = ops.logsumexp(log_w, axis=0)
            done += c
        out.append(ops.convert_to_numpy(running) - math.log(k))
    return np.concatenate(out)


def bits_per_dim(nll_nats, dims):
    """Negative log-likelihood in nats per image -> bits per dimension: nll / (dims * ln 2)."""
    return np.asarray(nll_nats) / (dims * math.log(2.0))
