"""Custom layers. All are registered as Keras-serializable."""

from __future__ import annotations

import keras
from keras import ops


def reparameterize(z_mean, z_log_var, eps):
    """z = z_mean + exp(z_log_var / 2) * eps: a draw of N(z_mean, exp(z_log_var)) from noise
    eps ~ N(0, I), written so that gradients flow to z_mean and z_log_var (the
    reparameterization trick). The one place the package writes it."""
    return z_mean + ops.exp(0.5 * z_log_var) * eps


@keras.saving.register_keras_serializable(package="vae_course")
class Sampling(keras.layers.Layer):
    """The reparameterization step: z = z_mean + exp(z_log_var / 2) * eps, eps ~ N(0, I).

    The layer owns its randomness (a ``keras.random.SeedGenerator``), so the draw is
    repeatable from ``seed`` and gradients flow to ``z_mean`` and ``z_log_var``.
    Inputs: ``[z_mean, z_log_var]``, each (batch, latent_dim). Output: z (batch, latent_dim).
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        eps = keras.random.normal(ops.shape(z_mean), dtype=z_mean.dtype,
                                  seed=self.seed_generator)
        return reparameterize(z_mean, z_log_var, eps)

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}
