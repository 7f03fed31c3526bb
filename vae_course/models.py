"""The VAE model: any encoder/decoder pair, trained with ``model.fit``.

The loss lives in :meth:`VAE.compute_loss` (not a TensorFlow-only ``train_step``), so ``fit``,
``evaluate``, callbacks and progress bars work under every Keras backend.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from . import losses, networks
from .layers import Sampling

# Log-variances are clipped to this range: exp(-30/2) ~ 3e-7 and exp(20/2) ~ 2e4 standard
# deviations are far outside anything a trained encoder needs, and the clip keeps exp() and
# its gradients finite.
LOG_VAR_RANGE = (-30.0, 20.0)


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


@keras.saving.register_keras_serializable(package="vae_course")
class VAE(keras.Model):
    """A variational autoencoder with a diagonal-Gaussian q(z|x), N(0, I) prior and Bernoulli p(x|z).

    Args:
        encoder: model x -> (batch, 2 * latent_dim), read as [z_mean, z_log_var].
        decoder: model z -> logits with the shape of x.
        kl: ``"analytic"`` (closed-form KL; the logged KL is exact) or ``"monte_carlo"`` (the
            TensorFlow tutorial's single-sample log p(z) - log q(z|x)).
        beta: weight of the KL term (1.0 is the ELBO; other values give a beta-VAE).
        seed: seed of the reparameterization noise.

    ``model(x)`` returns a dict: ``logits``, ``z_mean``, ``z_log_var``, ``z``.
    Training and evaluation log ``elbo``, ``reconstruction`` (log p(x|z)) and ``kl``,
    each averaged per example, in nats; ``loss`` is ``-(reconstruction - beta * kl)``.
    """

    def __init__(self, encoder, decoder, kl="analytic", beta=1.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if kl not in ("analytic", "monte_carlo"):
            raise ValueError(f"Expected kl='analytic' or 'monte_carlo'. Received: kl={kl!r}")
        if not beta >= 0:
            raise ValueError(f"Expected beta >= 0. Received: beta={beta!r}")
        self.encoder = encoder
        self.decoder = decoder
        self.kl = kl
        self.beta = float(beta)
        self.seed = seed
        self.latent_dim = int(decoder.inputs[0].shape[-1])
        self.sampler = Sampling(seed=seed, name="sampling")
        self.elbo_tracker = keras.metrics.Mean(name="elbo")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction")
        self.kl_tracker = keras.metrics.Mean(name="kl")

    # -- the three maps -------------------------------------------------------------------
    def encode(self, x):
        """x -> (z_mean, z_log_var), each (batch, latent_dim) float32."""
        params = ops.cast(self.encoder(x), "float32")
        z_mean, z_log_var = ops.split(params, 2, axis=-1)
        return z_mean, ops.clip(z_log_var, *LOG_VAR_RANGE)

    def decode(self, z, apply_sigmoid=False):
        """z (batch, latent_dim) -> logits (or probabilities) with the shape of x."""
        logits = ops.cast(self.decoder(z), "float32")
        return ops.sigmoid(logits) if apply_sigmoid else logits

    def call(self, x, training=False):
        z_mean, z_log_var = self.encode(x)
        z = self.sampler([z_mean, z_log_var])
        return {"logits": self.decode(z), "z_mean": z_mean, "z_log_var": z_log_var, "z": z}

    # -- objective ------------------------------------------------------------------------
    def elbo_terms(self, x, out):
        """Per-example (reconstruction, kl) in nats, both (batch,), from ``out = self(x)``."""
        x = ops.cast(x, "float32")
        reconstruction = losses.bernoulli_log_prob(x, out["logits"])
        if self.kl == "analytic":
            kl = losses.kl_standard_normal(out["z_mean"], out["z_log_var"])
        else:
            kl = (losses.gaussian_log_prob(out["z"], out["z_mean"], out["z_log_var"])
                  - losses.standard_normal_log_prob(out["z"]))
        return reconstruction, kl

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if isinstance(x, (tuple, list)):
            x = x[0]
        if y_pred is None:
            y_pred = self(x, training=training)
        reconstruction, kl = self.elbo_terms(x, y_pred)
        elbo = reconstruction - kl
        self.elbo_tracker.update_state(elbo)
        self.reconstruction_tracker.update_state(reconstruction)
        self.kl_tracker.update_state(kl)
        loss = -ops.mean(reconstruction - self.beta * kl)
        extra = self.losses
        if extra:
            loss = loss + ops.sum(extra)
        return losses.scale_for_replicas(loss)

    # -- input checks ---------------------------------------------------------------------
    def check_inputs(self, x):
        """Validate NumPy images against the encoder's input (see :mod:`vae_course.validation`)."""
        from .validation import check_images

        return check_images(x, self.encoder.inputs[0].shape[1:])

    def fit(self, x=None, *args, **kwargs):
        if isinstance(x, np.ndarray):
            x = self.check_inputs(x)
        return super().fit(x, *args, **kwargs)

    def evaluate(self, x=None, *args, **kwargs):
        if isinstance(x, np.ndarray):
            x = self.check_inputs(x)
        return super().evaluate(x, *args, **kwargs)

    # -- generation -----------------------------------------------------------------------
    def sample(self, n, seed=None, temperature=1.0):
        """Pixel probabilities (n, 28, 28, 1) of decoded prior samples z ~ N(0, temperature^2 I)."""
        z = temperature * keras.random.normal((n, self.latent_dim), seed=seed)
        return self.decode(z, apply_sigmoid=True)

    # -- serialization --------------------------------------------------------------------
    def get_config(self):
        return {
            **super().get_config(),
            **serialize_networks(self),
            "kl": self.kl,
            "beta": self.beta,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**deserialize_networks(config))


def conv_vae(latent_dim: int = 2, kl: str = "analytic", beta: float = 1.0, seed=None):
    """The TensorFlow tutorial's convolutional VAE for 28x28x1 binary images."""
    return VAE(networks.build_conv_encoder(latent_dim), networks.build_conv_decoder(latent_dim),
               kl=kl, beta=beta, seed=seed, name="conv_vae")
