"""Evaluation: ELBO estimates and the importance-sampled log-likelihood (IWAE bound).

Both functions take any model with the package's variational interface
(:class:`vae_course.models.VariationalModel`: ``check_inputs``, ``elbo``, ``log_weights``) and
images ``x`` as the model takes them (binary MNIST for the VAEs, uint8 for the CIFAR models),
and return one number per image (numpy, nats). Bits per dimension:
:func:`vae_course.losses.bits_per_dim`.
"""

from __future__ import annotations

import math
import numbers

import keras
import numpy as np
from keras import ops

from . import data, losses


def _check_model(model, function):
    missing = [m for m in ("check_inputs", "elbo", "log_weights") if not hasattr(model, m)]
    if missing:
        hint = (" An autoencoder has no likelihood: score it with "
                "vae_course.autoencoders.reconstruction_error." if hasattr(model, "encode")
                and not hasattr(model, "log_weights") else "")
        raise TypeError(f"metrics.{function} expected a variational model (with check_inputs, "
                        f"elbo and log_weights). Received {type(model).__name__}, which has no "
                        f"{', '.join(missing)}.{hint}")


def _check_count(name, value, lo=1, hi=None):
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= lo
    if ok and hi is not None:
        ok = value <= hi
    if not ok:
        limit = f"{name} >= {lo}" + (f" and <= {hi:g}" if hi is not None else "")
        raise ValueError(f"Expected {limit}, an integer. Received: {name}={value!r}")
    return int(value)


def _batches(n, batch_size):
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


def elbo(model, x, batch_size=500, estimator=None, seed=0):
    """Per-image single-sample ELBO estimate, (n,) in nats.

    ``estimator``: the model's default when ``None`` (for a :class:`~vae_course.models.VAE`,
    ``"analytic"``: the closed-form KL); ``"monte_carlo"`` uses log p(z) - log q(z|x) at the
    sampled z (the TensorFlow tutorial's estimator). Both have the same expectation over z.
    """
    _check_model(model, "elbo")
    batch_size = _check_count("batch_size", batch_size)
    x = model.check_inputs(x)
    rng = keras.random.SeedGenerator(seed)
    kwargs = {} if estimator is None else {"estimator": estimator}
    return np.concatenate([ops.convert_to_numpy(model.elbo(data.take(x, s), seed=rng, **kwargs))
                           for s in _batches(data.count(x), batch_size)])


def log_likelihood(model, x, k=1000, batch_size=None, max_decode=4096, seed=0):
    """Importance-sampled estimate of log p(x) with K samples from q(z|x), (n,) in nats.

        log p(x) >= log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x),   z_k ~ q(z|x)

    This is the IWAE bound of Burda et al. (2016): K=1 is the ELBO, it never decreases in
    expectation as K grows, and it tends to log p(x) as K -> infinity. The sum is taken in
    log space with a running log-sum-exp; images go through the decoder at most
    ``max_decode`` at a time, so memory stays bounded for any K and any n.
    """
    _check_model(model, "log_likelihood")
    k = _check_count("k", k, 1, 1_000_000)
    max_decode = _check_count("max_decode", max_decode)
    if batch_size is not None:
        batch_size = _check_count("batch_size", batch_size)
    x = model.check_inputs(x)
    n = data.count(x)
    batch_size = batch_size or max(1, min(n, max_decode // min(k, max_decode) * 4, 256))
    chunk = max(1, max_decode // batch_size)
    rng = keras.random.SeedGenerator(seed)
    out = []
    for s in _batches(n, batch_size):
        xb = data.take(x, s)
        running, done = None, 0
        while done < k:
            c = min(chunk, k - done)
            # the decoder's compiled predict step: faster than op-by-op calls here
            log_w = model.log_weights(xb, c, seed=rng, compiled=True)        # (c, b)
            if running is not None:
                log_w = ops.concatenate([running[None], log_w], axis=0)
            running = ops.logsumexp(log_w, axis=0)
            done += c
        out.append(ops.convert_to_numpy(running) - math.log(k))
    return np.concatenate(out)


def label_log_likelihoods(model, images, k=100, seed=0, **kwargs):
    """log p(x | y) for every label y of a conditional model: (n, classes), importance-sampled
    with ``k`` draws per image and label (:func:`log_likelihood`; ``kwargs`` go to it)."""
    if not getattr(model, "condition", None):
        raise TypeError(f"Expected a conditional model (one with a `condition`). Received "
                        f"{type(model).__name__}.")
    n, classes = len(images), model.condition["classes"]
    return np.stack([log_likelihood(model, (images, np.full(n, c)), k=k, seed=seed + c, **kwargs)
                     for c in range(classes)], axis=1)


def classify(log_px_given_y, log_prior=None):
    """Bayes' rule on log p(x | y) (n, classes): returns (predicted labels (n,), log p(y | x)).

    ``log_prior``: log p(y) (classes,), default uniform."""
    log_joint = np.asarray(log_px_given_y, dtype="float64")
    if log_prior is not None:
        log_joint = log_joint + np.asarray(log_prior, dtype="float64")
    log_post = log_joint - np.logaddexp.reduce(log_joint, axis=1, keepdims=True)
    return log_post.argmax(axis=1), log_post


def test_set(model, config, examples=None):
    """What a trained model of ``config`` is scored on: ``(scored, x, description)``.

    ``x``: the first ``examples`` test images (default all) in the form the model is scored
    on (binarized MNIST as the config says; uint8 CIFAR-10). ``scored``: the model, or for a
    Bernoulli MLP trained on CIFAR-10 pixels in [0, 1], that model scored as a distribution
    over the 256 levels (:class:`vae_course.cifar.Bernoulli256`), in the same units as the
    other CIFAR models.
    """
    if examples is not None:
        examples = _check_count("examples", examples)
    if config.dataset == "cifar10":
        (_, _), (x, _) = data.load_cifar10()
        x = x[:examples]
        if config.model == "mlp":
            from .cifar import Bernoulli256

            return Bernoulli256(model), x, "CIFAR-10 8-bit images"
        return model, x, "CIFAR-10 8-bit images"
    (_, _), (x_test, y_test) = data.load_mnist()
    x = data.binarize(x_test[:examples], config.binarization)
    if config.model == "cvae":   # scored as a model of p(x | y)
        return model, (x, y_test[:examples]), f"{config.binarization} binarization, labels given"
    return model, x, f"{config.binarization} binarization"


def evaluate(model, config, k=1000, examples=None):
    """The CLI's ``evaluate``: test ELBO and importance-sampled NLL of a trained model of
    ``config`` (see :func:`test_set`), as a dict of numbers (nats per image; bits per
    dimension for CIFAR-10). Works for any model with the variational interface."""
    scored, x, what = test_set(model, config, examples)
    elbo_mean = float(np.mean(elbo(scored, x)))
    nll_mean = float(-np.mean(log_likelihood(scored, x, k=k)))
    result = {"images": data.count(x), "what": what, "k": k, "test_elbo": elbo_mean,
              "is_nll": nll_mean}
    if config.dataset == "cifar10":
        dims = data.dims("cifar10")
        result.update(test_bpd=float(losses.bits_per_dim(-elbo_mean, dims)),
                      is_bpd=float(losses.bits_per_dim(nll_mean, dims)))
    return result
