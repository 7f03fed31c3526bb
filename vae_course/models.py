"""The book's models and the one interface they share.

Every model here is a :class:`LatentModel`: an encoder to a latent space and a decoder back
to images. That part is all the latent explorer and the per-epoch images need:

    latent_shape           shape of one latent variable z, without the batch axis
    point_shape            shape of what the decoder reads: z, or [z, one-hot label] for a
                           conditional model (the explorer moves these points)
    condition              None, or {"offset", "classes"}: where a one-hot label sits in a point
    encode_point(x)        one point per image (the posterior mean, or the code)
    decode_mean(points)    images in [0, 1]: the decoder's mean (its output for autoencoders)
    prior_points(rng, n)   decoder inputs for samples from the prior (the per-epoch images)
    pixels(x)              the images of an input batch, in [0, 1], for showing
    example_input(n)       n blank inputs of the kind the model takes (to build its layers)
    pixel_output           how the decoder's raw output becomes pixels in the browser
                           explorer: "sigmoid", "identity" or "mixture1"
    prior                  "standard_normal", or None (autoencoders have no prior)
    explorer_start         where the explorer starts: "prior_mean", "median_code" or
                           "first_code" (the first image's point)

A :class:`VariationalModel` adds what the metrics, the trainer and the CLI use:

    check_inputs(x)        validate NumPy images; returns them as the model takes them
    elbo_terms(x, out)     per-example (log p(x|z), KL) in nats, from ``out = model(x)``
    log_weights(x, k)      (k, batch) log p(x, z_k) - log q(z_k|x), z_k ~ q(z|x)
    elbo(x, seed)          per-example single-sample ELBO estimate

and trains with ``fit`` (the loss is in ``compute_loss``). A new model type that implements
this surface works in :mod:`vae_course.metrics`, the CLI's ``evaluate`` and the explorer
unchanged. The Gaussian posterior's importance weights are written once, in
:func:`gaussian_log_weights`; a model supplies its pieces (posterior parameters, an optional
flow, the decoder's likelihood).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from . import losses, networks
from .importance import gaussian_log_weights
from .layers import Sampling, reparameterize

# Log-variances are clipped to this range: exp(-30/2) ~ 3e-7 and exp(20/2) ~ 2e4 standard
# deviations are far outside anything a trained encoder needs, and the clip keeps exp() and
# its gradients finite.
LOG_VAR_RANGE = (-30.0, 20.0)

# The MLP of the reparameterization and training chapters: 2 ReLU layers of 400 units each way.
MLP_HIDDEN_UNITS = 400
MLP_HIDDEN_LAYERS = 2


def serialize_networks(model) -> dict:
    """The ``encoder`` and ``decoder`` entries of a model's config (for ``get_config``)."""
    return {key: keras.saving.serialize_keras_object(getattr(model, key))
            for key in ("encoder", "decoder")}


def deserialize_networks(config: dict) -> dict:
    """A copy of ``config`` with ``encoder`` and ``decoder`` rebuilt (for ``from_config``)."""
    config = dict(config)
    for key in ("encoder", "decoder"):
        config[key] = keras.saving.deserialize_keras_object(config[key])
    return config


class LatentModel(keras.Model):
    """An encoder/decoder pair seen through the surface the explorer and the images use."""

    pixel_output = "identity"
    prior = None
    explorer_start = "median_code"   # where the explorer starts: the codes' median

    @property
    def latent_shape(self) -> tuple:
        return tuple(int(d) for d in self.decoder.inputs[0].shape[1:])

    condition = None

    @property
    def point_shape(self) -> tuple:
        return tuple(int(d) for d in self.decoder.inputs[0].shape[1:])

    @property
    def image_shape(self) -> tuple:
        return tuple(int(d) for d in self.encoder.inputs[0].shape[1:])

    def prior_points(self, rng, columns=8):
        """Two rows of ``columns`` decoder inputs z ~ N(0, I) drawn from NumPy ``rng``."""
        return rng.standard_normal((2 * columns,) + self.latent_shape).astype("float32")

    def example_input(self, n=1):
        """``n`` blank inputs of the kind the model takes (to build its layers)."""
        return np.zeros((n,) + self.image_shape, "float32")

    def pixels(self, x):
        """The images of an input batch as floats in [0, 1] (uint8 pixels are scaled)."""
        x = np.asarray(x)
        return x / 255.0 if x.dtype == np.uint8 else x

    def decode_params(self, z, compiled=False):
        """The decoder's raw output, float32. ``compiled=True`` runs Keras's compiled predict
        step (``predict_on_batch``): faster for evaluation, not differentiable."""
        out = self.decoder.predict_on_batch(z) if compiled else self.decoder(z)
        return ops.cast(out, "float32")

    def encode_point(self, x):
        raise NotImplementedError

    def decode_mean(self, z, compiled=False):
        """z -> images in [0, 1]."""
        return self.decode_params(z, compiled)

    def get_config(self):
        return {**super().get_config(), **serialize_networks(self)}

    @classmethod
    def from_config(cls, config):
        return cls(**deserialize_networks(config))


class VariationalModel(LatentModel):
    """A VAE: a Gaussian q(z|x) (optionally with a flow), N(0, I) prior and a decoder
    likelihood. Subclasses supply ``posterior``, ``log_px`` and ``elbo_terms``.

    Training and evaluation log ``elbo``, ``reconstruction`` (log p(x|z)) and ``kl``, each
    averaged per example, in nats; ``loss`` is ``-(reconstruction - beta * kl)``.

    ``iwae_samples=k > 1`` trains on the importance-weighted bound of Burda et al. (2016)
    instead, log (1/k) sum_i p(x, z_i) / q(z_i|x) with z_1..z_k ~ q(z|x): ``loss`` is minus
    that bound, also logged as ``iwae``; ``elbo``, ``reconstruction`` and ``kl`` are then
    their Monte Carlo estimates from the same k draws (the KL from log q - log p).
    """

    prior = "standard_normal"
    explorer_start = "prior_mean"
    beta = 1.0

    def __init__(self, encoder, decoder, seed=None, iwae_samples=1, **kwargs):
        super().__init__(**kwargs)
        if not (isinstance(iwae_samples, int) and not isinstance(iwae_samples, bool)
                and 1 <= iwae_samples <= 4096):
            raise ValueError(f"Expected iwae_samples an integer in [1, 4096] (1: the ELBO). "
                             f"Received: iwae_samples={iwae_samples!r}")
        self.encoder = encoder
        self.decoder = decoder
        self.seed = seed
        self.iwae_samples = iwae_samples
        self.elbo_tracker = keras.metrics.Mean(name="elbo")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction")
        self.kl_tracker = keras.metrics.Mean(name="kl")
        if iwae_samples > 1:
            self.iwae_tracker = keras.metrics.Mean(name="iwae")
            # Its own noise: the stream the ELBO's draws use stays as it was
            self.iwae_noise = keras.random.SeedGenerator(
                None if seed is None else seed + 1)

    @property
    def latent_dim(self) -> int:
        return self.latent_shape[-1]

    # -- the posterior --------------------------------------------------------------------
    def posterior(self, x):
        """x -> (mean, log_var, context) of q(z|x); context is None without a flow."""
        raise NotImplementedError

    def flow(self, z, context):
        """Push z_0 through the posterior's flow: (z_T, sum of log-determinants)."""
        return z, ops.zeros((ops.shape(z)[0],), dtype="float32")

    def decoder_input(self, z, x):
        """What the decoder reads for latent z and inputs x: z itself (a conditional model
        appends the label)."""
        return z

    def encode(self, x):
        """x -> (z_mean, z_log_var) of the Gaussian q(z|x) (before any flow)."""
        mean, log_var, _ = self.posterior(x)
        return mean, log_var

    def encode_point(self, x):
        """One latent point per image: the Gaussian's mean, pushed through the flow if any."""
        mean, _, context = self.posterior(x)
        return self.flow(mean, context)[0]

    # -- likelihoods ----------------------------------------------------------------------
    def log_px(self, x, params):
        """log p(x|z) per example from the decoder output ``params`` -> (batch,)."""
        raise NotImplementedError

    def log_weights(self, x, k, seed=None, compiled=False):
        """(k, batch) importance weights log p(x|z_k) + log p(z_k) - log q(z_k|x)."""
        return gaussian_log_weights(self, x, k, seed=seed, compiled=compiled)

    def elbo(self, x, seed=None, estimator=None):
        """Per-example single-sample ELBO estimate (log_weights with k = 1) -> (batch,)."""
        if estimator not in (None, "monte_carlo"):
            raise ValueError(f"Expected estimator None or 'monte_carlo' for "
                             f"{type(self).__name__} (its KL has no closed form here). "
                             f"Received: estimator={estimator!r}")
        return self.log_weights(x, 1, seed=seed)[0]

    def elbo_terms(self, x, out):
        """Per-example (reconstruction, kl) in nats from ``out = self(x)``."""
        raise NotImplementedError

    # -- training -------------------------------------------------------------------------
    def track(self, reconstruction, kl):
        """Update the logged metrics with one batch's per-example terms."""
        self.elbo_tracker.update_state(reconstruction - kl)
        self.reconstruction_tracker.update_state(reconstruction)
        self.kl_tracker.update_state(kl)

    def loss_inputs(self, x, y):
        """The model's input from what ``fit`` passes to ``compute_loss``: the images alone
        (a conditional model also takes ``y``, the labels)."""
        return x[0] if isinstance(x, (tuple, list)) else x

    def iwae_loss(self, x):
        """Minus the batch's mean IWAE bound with ``iwae_samples`` draws per image."""
        k = self.iwae_samples
        if self.beta != 1.0:
            raise ValueError(f"Expected beta 1 with iwae_samples > 1 (the IWAE bound has no "
                             f"KL weight). Received: beta={self.beta!r}")
        log_px, log_pz, log_q = gaussian_log_weights(self, x, k, seed=self.iwae_noise,
                                                     parts=True)
        bound = ops.logsumexp(log_px + log_pz - log_q, axis=0) - float(np.log(k))
        self.track(ops.mean(log_px, axis=0), ops.mean(log_q - log_pz, axis=0))
        self.iwae_tracker.update_state(bound)
        return -ops.mean(bound)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        x = self.loss_inputs(x, y)
        if self.iwae_samples > 1:
            loss = self.iwae_loss(x)
            return losses.scale_for_replicas(loss + ops.sum(self.losses) if self.losses
                                             else loss)
        if y_pred is None:
            y_pred = self(x, training=training)
        reconstruction, kl = self.elbo_terms(x, y_pred)
        self.track(reconstruction, kl)
        loss = -ops.mean(reconstruction - self.beta * kl)
        extra = self.losses
        if extra:
            loss = loss + ops.sum(extra)
        return losses.scale_for_replicas(loss)

    # -- input checks ---------------------------------------------------------------------
    def check_inputs(self, x):
        raise NotImplementedError

    def fit(self, x=None, *args, **kwargs):
        if isinstance(x, np.ndarray):
            x = self.check_inputs(x)
        return super().fit(x, *args, **kwargs)

    def evaluate(self, x=None, *args, **kwargs):
        if isinstance(x, np.ndarray):
            x = self.check_inputs(x)
        return super().evaluate(x, *args, **kwargs)

    def get_config(self):
        return {**super().get_config(), "seed": self.seed, "iwae_samples": self.iwae_samples}


@keras.saving.register_keras_serializable(package="vae_course")
class VAE(VariationalModel):
    """A variational autoencoder with a diagonal-Gaussian q(z|x), N(0, I) prior and Bernoulli p(x|z).

    Args:
        encoder: model x -> (batch, 2 * latent_dim), read as [z_mean, z_log_var].
        decoder: model z -> logits with the shape of x.
        kl: ``"analytic"`` (closed-form KL; the logged KL is exact) or ``"monte_carlo"`` (the
            TensorFlow tutorial's single-sample log p(z) - log q(z|x)).
        beta: weight of the KL term (1.0 is the ELBO; other values give a beta-VAE).
        seed: seed of the reparameterization noise.

    ``model(x)`` returns a dict: ``logits``, ``z_mean``, ``z_log_var``, ``z``.
    """

    pixel_output = "sigmoid"

    def __init__(self, encoder, decoder, kl="analytic", beta=1.0, seed=None, **kwargs):
        if kl not in ("analytic", "monte_carlo"):
            raise ValueError(f"Expected kl='analytic' or 'monte_carlo'. Received: kl={kl!r}")
        if not beta >= 0:
            raise ValueError(f"Expected beta >= 0. Received: beta={beta!r}")
        enc_out = int(encoder.outputs[0].shape[-1])
        dec_in = int(decoder.inputs[0].shape[-1])
        if enc_out != 2 * dec_in:
            raise ValueError(
                f"Expected an encoder with 2 * latent_dim outputs for a decoder of latent_dim "
                f"{dec_in} (that is {2 * dec_in}: [z_mean, z_log_var]). Received an encoder "
                f"with {enc_out} outputs. Build both networks with the same latent_dim.")
        super().__init__(encoder, decoder, seed=seed, **kwargs)
        self.kl = kl
        self.beta = float(beta)
        self.sampler = Sampling(seed=seed, name="sampling")

    # -- the maps -------------------------------------------------------------------------
    def posterior(self, x):
        params = ops.cast(self.encoder(x), "float32")
        z_mean, z_log_var = ops.split(params, 2, axis=-1)
        return z_mean, ops.clip(z_log_var, *LOG_VAR_RANGE), None

    def decode(self, z, apply_sigmoid=False):
        """z (batch, latent_dim) -> logits (or probabilities) with the shape of x."""
        logits = self.decode_params(z)
        return ops.sigmoid(logits) if apply_sigmoid else logits

    def decode_mean(self, z, compiled=False):
        return ops.sigmoid(self.decode_params(z, compiled))

    def call(self, x, training=False):
        z_mean, z_log_var = self.encode(x)
        z = self.sampler([z_mean, z_log_var])
        return {"logits": self.decode(z), "z_mean": z_mean, "z_log_var": z_log_var, "z": z}

    # -- objective ------------------------------------------------------------------------
    def log_px(self, x, params):
        return losses.bernoulli_log_prob(ops.cast(x, "float32"), params)

    def elbo_terms(self, x, out):
        """Per-example (reconstruction, kl) in nats, both (batch,), from ``out = self(x)``."""
        reconstruction = self.log_px(x, out["logits"])
        if self.kl == "analytic":
            kl = losses.kl_standard_normal(out["z_mean"], out["z_log_var"])
        else:
            kl = (losses.gaussian_log_prob(out["z"], out["z_mean"], out["z_log_var"])
                  - losses.standard_normal_log_prob(out["z"]))
        return reconstruction, kl

    def elbo(self, x, seed=None, estimator="analytic"):
        """Per-example single-sample ELBO: ``"analytic"`` uses the closed-form KL,
        ``"monte_carlo"`` log p(z) - log q(z|x) at the sampled z (same expectation)."""
        if estimator not in ("analytic", "monte_carlo"):
            raise ValueError(f"Expected estimator 'analytic' or 'monte_carlo'. "
                             f"Received: estimator={estimator!r}")
        z_mean, z_log_var = self.encode(x)
        eps = keras.random.normal(ops.shape(z_mean), seed=seed)
        z = reparameterize(z_mean, z_log_var, eps)
        logits = self.decode(z)
        if estimator == "analytic":
            return losses.elbo_analytic(x, logits, z_mean, z_log_var)
        return losses.elbo_monte_carlo(x, logits, z, z_mean, z_log_var)

    # -- input checks ---------------------------------------------------------------------
    def check_inputs(self, x):
        """Validate NumPy images against the encoder's input (see :mod:`vae_course.validation`)."""
        from .validation import check_images

        return check_images(x, self.encoder.inputs[0].shape[1:])

    # -- generation -----------------------------------------------------------------------
    def sample(self, n, seed=None, temperature=1.0):
        """Pixel probabilities (n, 28, 28, 1) of decoded prior samples z ~ N(0, temperature^2 I)."""
        z = temperature * keras.random.normal((n, self.latent_dim), seed=seed)
        return self.decode(z, apply_sigmoid=True)

    # -- serialization --------------------------------------------------------------------
    def get_config(self):
        return {**super().get_config(), "kl": self.kl, "beta": self.beta}


def conv_vae(latent_dim: int = 2, kl: str = "analytic", beta: float = 1.0, seed=None,
             iwae_samples: int = 1):
    """The TensorFlow tutorial's convolutional VAE for 28x28x1 binary images."""
    return VAE(networks.build_conv_encoder(latent_dim), networks.build_conv_decoder(latent_dim),
               kl=kl, beta=beta, seed=seed, iwae_samples=iwae_samples, name="conv_vae")


def mlp_vae(latent_dim: int = 2, hidden_units: int = MLP_HIDDEN_UNITS,
            hidden_layers: int = MLP_HIDDEN_LAYERS, kl: str = "analytic", beta: float = 1.0,
            seed=None, image_shape=(28, 28, 1), iwae_samples: int = 1):
    """The MLP VAE of the reparameterization and training chapters: ``hidden_layers`` ReLU layers
    of ``hidden_units`` each, in the encoder and (mirrored) in the decoder.

    x: (batch, *image_shape) in {0, 1} (MNIST: (28, 28, 1)); z: (batch, latent_dim); Bernoulli
    logits with the shape of x. On CIFAR-10, ``image_shape=(32, 32, 3)`` gives the common
    tutorial start whose cross-entropy on grey levels is not a likelihood (the IAF chapter).
    ``iwae_samples > 1`` trains on the IWAE bound with that many draws (see
    :class:`VariationalModel`).
    """
    for name, value in (("hidden_units", hidden_units), ("hidden_layers", hidden_layers)):
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"Expected {name} to be a positive integer. Received: {name}={value!r}")
    units = (hidden_units,) * hidden_layers
    return VAE(networks.build_dense_encoder(latent_dim, units, input_shape=image_shape),
               networks.build_dense_decoder(latent_dim, units, output_shape=image_shape),
               kl=kl, beta=beta, seed=seed, iwae_samples=iwae_samples, name="mlp_vae")
