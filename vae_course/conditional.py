"""The conditional VAE (Sohn, Lee & Yan, 2015): the label y goes into both networks.

    q(z | x, y) = N(z; mu(x, y), diag(sigma^2(x, y))),   p(z) = N(0, I),
    p(x | z, y) = prod_pixels Bernoulli(x; sigmoid(decoder([z, onehot(y)])))

so the bound is on log p(x | y):  log p(x | y) >= E_q[log p(x | z, y)] - KL(q(z | x, y) || p(z)).
With the digit given, z only has to carry the style.

Inputs are pairs ``(images, labels)``: images (n, 28, 28, 1) in {0, 1}, labels (n,) integers
0-9. ``fit(images, labels)`` (or a dataset of such pairs) trains it; the metrics, the trainer
and the explorer take the pair wherever other models take images. The decoder reads the
concatenated point [z, onehot(y)], so the explorer's label control and the in-browser decoder
move the same vector.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from . import losses, networks
from .layers import Sampling, reparameterize
from .models import LOG_VAR_RANGE, VariationalModel
from .validation import check_images, check_labels

NUM_CLASSES = 10


@keras.saving.register_keras_serializable(package="vae_course")
class ConditionalVAE(VariationalModel):
    """A VAE of p(x | y): Gaussian q(z | x, y), N(0, I) prior, Bernoulli p(x | z, y).

    Args:
        encoder: [x, onehot(y)] -> (batch, 2 * latent_dim).
        decoder: [z, onehot(y)] concatenated, (batch, latent_dim + num_classes) -> logits.
        beta: weight of the KL term (1.0 is the bound on log p(x | y)).
        seed: seed of the reparameterization noise.
    """

    pixel_output = "sigmoid"

    def __init__(self, encoder, decoder, beta=1.0, seed=None, **kwargs):
        super().__init__(encoder, decoder, seed=seed, **kwargs)
        self.num_classes = int(encoder.inputs[1].shape[-1])
        latent = int(encoder.outputs[0].shape[-1]) // 2
        if int(decoder.inputs[0].shape[-1]) != latent + self.num_classes:
            raise ValueError(
                f"Expected a decoder reading latent_dim + num_classes = "
                f"{latent + self.num_classes} values ([z, one-hot label]). Received a decoder "
                f"with {decoder.inputs[0].shape[-1]} inputs.")
        self.beta = float(beta)
        self.sampler = Sampling(seed=seed, name="sampling")

    @property
    def latent_shape(self) -> tuple:
        return (int(self.encoder.outputs[0].shape[-1]) // 2,)

    @property
    def image_shape(self) -> tuple:
        return tuple(int(d) for d in self.encoder.inputs[0].shape[1:])

    @property
    def condition(self):
        return {"offset": self.latent_shape[0], "classes": self.num_classes}

    def onehot(self, labels):
        return ops.one_hot(ops.cast(labels, "int32"), self.num_classes)

    # -- the maps -------------------------------------------------------------------------
    def posterior(self, x):
        images, labels = x
        params = ops.cast(self.encoder([ops.cast(images, "float32"), self.onehot(labels)]),
                          "float32")
        mean, log_var = ops.split(params, 2, axis=-1)
        return mean, ops.clip(log_var, *LOG_VAR_RANGE), None

    def decoder_input(self, z, x):
        return ops.concatenate([z, self.onehot(x[1])], axis=-1)

    def encode_point(self, x):
        """(images, labels) -> [posterior mean, one-hot label], (n, latent_dim + classes)."""
        mean, _, _ = self.posterior(x)
        return self.decoder_input(mean, x)

    def decode_mean(self, points, compiled=False):
        """[z, one-hot label] points -> pixel probabilities (n, 28, 28, 1)."""
        return ops.sigmoid(self.decode_params(points, compiled))

    def decode(self, z, labels, apply_sigmoid=False):
        """z (n, latent_dim) and labels (n,) -> logits (or probabilities)."""
        logits = self.decode_params(ops.concatenate([z, self.onehot(labels)], axis=-1))
        return ops.sigmoid(logits) if apply_sigmoid else logits

    def call(self, x, training=False):
        z_mean, z_log_var = self.encode(x)
        z = self.sampler([z_mean, z_log_var])
        return {"logits": self.decode_params(self.decoder_input(z, x)), "z_mean": z_mean,
                "z_log_var": z_log_var, "z": z}

    # -- objective ------------------------------------------------------------------------
    def loss_inputs(self, x, y):
        if isinstance(x, (tuple, list)) and len(x) == 2:
            return tuple(x)
        raise ValueError("Expected (images, labels) as a ConditionalVAE's input: "
                         "fit((images, labels)) or fit(images, labels). Received images only.")

    def log_px(self, x, params):
        return losses.bernoulli_log_prob(ops.cast(x[0], "float32"), params)

    def elbo_terms(self, x, out):
        return (self.log_px(x, out["logits"]),
                losses.kl_standard_normal(out["z_mean"], out["z_log_var"]))

    def elbo(self, x, seed=None, estimator="analytic"):
        """Single-sample bound on log p(x | y) with the closed-form KL -> (batch,)."""
        if estimator != "analytic":
            return super().elbo(x, seed=seed, estimator=None)
        z_mean, z_log_var = self.encode(x)
        z = reparameterize(z_mean, z_log_var, keras.random.normal(ops.shape(z_mean), seed=seed))
        logits = self.decode_params(self.decoder_input(z, x))
        return self.log_px(x, logits) - losses.kl_standard_normal(z_mean, z_log_var)

    # -- inputs and pictures --------------------------------------------------------------
    def check_inputs(self, x):
        if not isinstance(x, (tuple, list)) or len(x) != 2:
            raise ValueError(f"Expected (images, labels) for a ConditionalVAE. Received "
                             f"{type(x).__name__}. Pass the labels too, e.g. (x_test, y_test).")
        images = check_images(x[0], self.image_shape)
        return images, check_labels(x[1], len(images), self.num_classes)

    def fit(self, x=None, y=None, *args, **kwargs):
        """``fit(images, labels)`` or ``fit((images, labels))``: the pair is the model's one
        input (Keras's own train step calls the model on x only)."""
        if isinstance(x, np.ndarray) and y is not None:
            x, y = self.check_inputs((x, y)), None
        elif isinstance(x, tuple) and len(x) == 2 and isinstance(x[0], np.ndarray):
            x = self.check_inputs(x)
        return super(VariationalModel, self).fit(x, y, *args, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        if isinstance(x, np.ndarray) and y is not None:
            x, y = self.check_inputs((x, y)), None
        elif isinstance(x, tuple) and len(x) == 2 and isinstance(x[0], np.ndarray):
            x = self.check_inputs(x)
        return super(VariationalModel, self).evaluate(x, y, *args, **kwargs)

    def example_input(self, n=1):
        return np.zeros((n,) + self.image_shape, "float32"), np.zeros(n, "int32")

    def pixels(self, x):
        return np.asarray(x[0])

    def prior_points(self, rng, columns=8):
        """One row per digit; the columns share z, so a column shows one style as ten digits."""
        z = rng.standard_normal((columns,) + self.latent_shape).astype("float32")
        z = np.tile(z, (self.num_classes, 1))
        onehot = np.repeat(np.eye(self.num_classes, dtype="float32"), columns, axis=0)
        return np.concatenate([z, onehot], axis=-1)

    def get_config(self):
        return {**super().get_config(), "beta": self.beta}


def conditional_vae(latent_dim: int = 2, beta: float = 1.0, seed=None,
                    num_classes: int = NUM_CLASSES, iwae_samples: int = 1):
    """The conv VAE's networks with the label in both: q(z | x, y) and p(x | z, y)."""
    return ConditionalVAE(networks.build_conv_encoder(latent_dim, num_classes=num_classes),
                          networks.build_conv_decoder(latent_dim + num_classes),
                          beta=beta, seed=seed, iwae_samples=iwae_samples,
                          name="conditional_vae")
