"""VAEs for 8-bit colour images (CIFAR-10), with or without an inverse autoregressive flow.

:class:`FlowVAE` reads uint8 images, scales them to [-1, 1], and models them with a
per-pixel mixture of discretized logistics (:func:`vae_course.losses.discretized_mix_logistic_log_prob`),
a true probability over the 256 levels of every sub-pixel, so its ELBO converts to bits per
dimension. The approximate posterior is a diagonal Gaussian, optionally followed by
``flow_steps`` IAF steps (:class:`vae_course.flows.IAFStep`) that read a context vector h the
encoder also outputs:

    z_0 = mu + sigma * eps,   log q(z_0|x) = log N(z_0; mu, sigma^2)
    z_t, logdet_t = IAFStep_t(z_{t-1}, h),   log q(z_T|x) = log q(z_0|x) - sum_t logdet_t

With ``flow_steps=0`` the KL term is computed in closed form; with a flow there is no closed
form and it is the single-sample estimate log q(z_T|x) - log p(z_T).

:class:`Bernoulli256` scores a Bernoulli-decoder VAE trained on pixels in [0, 1] as a model
of the same 8-bit images, so the two are compared in the same units.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from . import data, losses, networks
from .flows import IAFStep
from .layers import reparameterize
from .importance import gaussian_log_weights
from .models import LOG_VAR_RANGE, VariationalModel
from .validation import UnsupportedDecoderError, check_uint8_images

DIMS = data.dims("cifar10")


@keras.saving.register_keras_serializable(package="vae_course")
class FlowVAE(VariationalModel):
    """A VAE for 8-bit images with a discretized-logistic-mixture decoder and an optional IAF.

    Args:
        encoder: x in [-1, 1] -> (batch, 2 * latent_dim + context_dim).
        decoder: z -> (batch, 32, 32, 10 * nr_mix) mixture parameters.
        flow_steps: number of IAF steps (0: a diagonal-Gaussian posterior).
        flow_hidden: hidden units of each step's MADE.
        nr_mix: mixture components per pixel.
        seed: seed of the posterior noise.

    ``model.fit(x_uint8)`` trains on the negative ELBO; logs ``elbo``, ``reconstruction``,
    ``kl`` (nats per image) and ``bpd`` (bits per dimension of the ELBO).
    """

    # a latent map of 2,048 numbers decodes to a grey blur at the prior mean: start at an image
    explorer_start = "first_code"

    def __init__(self, encoder, decoder, flow_steps=0, flow_hidden=(64, 64), nr_mix=1,
                 seed=None, **kwargs):
        super().__init__(encoder, decoder, seed=seed, **kwargs)
        latent_dim = self.latent_shape[-1]
        self.context_dim = int(encoder.outputs[0].shape[-1]) - 2 * latent_dim
        if self.context_dim < 0:
            raise ValueError(f"Expected the encoder to output at least 2 * latent_dim = "
                             f"{2 * latent_dim} values. Received "
                             f"{encoder.outputs[0].shape[-1]}.")
        if flow_steps and self.context_dim == 0:
            raise ValueError("Expected an encoder that also outputs a context h (context_dim > 0) "
                             f"for flow_steps={flow_steps}. Received context_dim=0.")
        self.flow_steps = int(flow_steps)
        self.flow_hidden = tuple(int(u) for u in flow_hidden)
        self.nr_mix = int(nr_mix)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.steps = [IAFStep(latent_dim, self.flow_hidden, reverse=bool(i % 2),
                              kernel_size=3 if len(self.latent_shape) == 3 else 1,
                              name=f"iaf_{i}") for i in range(self.flow_steps)]
        self.bpd_tracker = keras.metrics.Mean(name="bpd")

    @property
    def pixel_output(self):
        if self.nr_mix != 1:
            raise UnsupportedDecoderError("The browser explorer decodes nr_mix=1 models only.")
        return "mixture1"

    # -- maps -----------------------------------------------------------------------------
    def posterior(self, x):
        """uint8 x -> (mu, log_var, h): the Gaussian base of q(z|x) and the flow's context."""
        out = ops.cast(self.encoder(losses.scale_pixels(x)), "float32")
        d = self.latent_dim
        mu = out[..., :d]
        log_var = ops.clip(out[..., d:2 * d], *LOG_VAR_RANGE)
        return mu, log_var, out[..., 2 * d:]

    encode_all = posterior   # the name the IAF chapter uses

    def flow(self, z, context):
        """Push z_0 through the IAF steps: returns (z_T, sum of log-determinants)."""
        log_det = ops.zeros((ops.shape(z)[0],), dtype="float32")
        for step in self.steps:
            z, ld = step([z, context])
            log_det = log_det + ld
        return z, log_det

    def posterior_sample(self, mu, log_var, h, eps):
        """z_T and log q(z_T|x) for base noise ``eps`` (same shape as mu)."""
        eps = ops.convert_to_tensor(eps, dtype="float32")   # NumPy noise: torch needs a tensor
        z, log_det = self.flow(reparameterize(mu, log_var, eps), h)
        return z, losses.reparameterized_log_prob(eps, log_var) - log_det

    def reconstruct(self, x):
        """uint8 x -> the decoder's mean images in [0, 1] at :meth:`encode_point`."""
        return self.decode_mean(self.encode_point(x))

    def decode_mean(self, z, compiled=False):
        """z -> mean images in [0, 1] (the mixture's expected pixel values, R/G/B coupled)."""
        return mixture_mean_image(self.decode_params(z, compiled), self.nr_mix)

    def decode(self, z, apply_sigmoid=True):
        """z -> mean images in [0, 1] (:meth:`decode_mean`; ``apply_sigmoid`` is ignored)."""
        return self.decode_mean(z)

    def call(self, x, training=False):
        mu, log_var, h = self.posterior(x)
        eps = keras.random.normal(ops.shape(mu), seed=self.seed_generator)
        z, log_q = self.posterior_sample(mu, log_var, h, eps)
        return {"params": self.decode_params(z), "z": z, "log_q": log_q,
                "z_mean": mu, "z_log_var": log_var}

    # -- objective ------------------------------------------------------------------------
    def log_px(self, x, params):
        return losses.discretized_mix_logistic_log_prob(losses.scale_pixels(x), params,
                                                        self.nr_mix)

    def elbo_terms(self, x, out):
        """Per-example (reconstruction, kl) in nats from ``out = self(x)``."""
        reconstruction = self.log_px(x, out["params"])
        if self.flow_steps:
            kl = out["log_q"] - losses.standard_normal_log_prob(out["z"])
        else:
            kl = losses.kl_standard_normal(out["z_mean"], out["z_log_var"])
        return reconstruction, kl

    def track(self, reconstruction, kl):
        super().track(reconstruction, kl)
        self.bpd_tracker.update_state(losses.bits_per_dim(kl - reconstruction, DIMS))

    # -- checks ---------------------------------------------------------------------------
    def example_input(self, n=1):
        return np.zeros((n,) + self.image_shape, "uint8")

    def check_inputs(self, x):
        return check_uint8_images(x, self.image_shape)

    # -- generation -----------------------------------------------------------------------
    def sample(self, n, seed=None, temperature=1.0):
        """Mean images in [0, 1] (n, 32, 32, 3) of z ~ N(0, temperature^2 I)."""
        z = temperature * keras.random.normal((n,) + self.latent_shape, seed=seed)
        return self.decode_mean(z)

    def get_config(self):
        return {**super().get_config(), "flow_steps": self.flow_steps,
                "flow_hidden": list(self.flow_hidden), "nr_mix": self.nr_mix}


def mixture_mean_image(params, nr_mix):
    """Expected pixel values in [0, 1] of the mixture, (b, 32, 32, 3).

    The expected value is taken per component (a logistic's mean is its location; the
    clipping at the end bins is ignored), with G and B following the component's R and G.
    """
    logits, means, _, coeffs = losses.mixture_params(params, nr_mix)
    weights = ops.softmax(logits, axis=-1) if nr_mix > 1 else ops.ones_like(logits)
    r = ops.clip(means[..., 0, :], -1.0, 1.0)
    g = ops.clip(means[..., 1, :] + coeffs[..., 0, :] * r, -1.0, 1.0)
    b = ops.clip(means[..., 2, :] + coeffs[..., 1, :] * r + coeffs[..., 2, :] * g, -1.0, 1.0)
    rgb = ops.stack([r, g, b], axis=3)                                    # (b, h, w, 3, mix)
    mean = ops.sum(rgb * weights[..., None, :], axis=-1)
    return (mean + 1.0) / 2.0


def cifar_vae(latent_dim: int = 32, flow_steps: int = 0, width: int = 32, nr_mix: int = 1,
              latent_size: int = 8, context_dim: int | None = None, flow_hidden=(64, 64),
              seed=None, iwae_samples: int = 1):
    """The IAF chapter's convolutional VAE; ``flow_steps > 0`` adds an IAF posterior;
    ``iwae_samples > 1`` trains on the IWAE bound (see
    :class:`~vae_course.models.VariationalModel`)."""
    for name, value, lo, hi in [("latent_dim", latent_dim, 1, 1024), ("flow_steps", flow_steps, 0, 64),
                                ("width", width, 1, 4096), ("nr_mix", nr_mix, 1, 32)]:
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or not lo <= value <= hi:
            raise ValueError(f"Expected {name} to be an integer in [{lo}, {hi}]. "
                             f"Received: {name}={value!r}")
    if context_dim is None:
        context_dim = latent_dim if flow_steps else 0
    return FlowVAE(networks.build_cifar_encoder(latent_dim, context_dim, width, latent_size),
                   networks.build_cifar_decoder(latent_dim, nr_mix, width, latent_size),
                   flow_steps=flow_steps, flow_hidden=flow_hidden, nr_mix=nr_mix, seed=seed,
                   iwae_samples=iwae_samples, name="iaf_vae" if flow_steps else "cifar_vae")


class Bernoulli256:
    """A Bernoulli-decoder VAE trained on pixels in [0, 1], scored as a model of 8-bit images.

    Its decoder's logits are turned into a proper distribution over the 256 levels of each
    sub-pixel (:func:`vae_course.losses.bernoulli_256_log_prob`), so its ELBO and
    importance-sampled bound are in the same units as :class:`FlowVAE`'s. Takes uint8 images;
    works with :func:`vae_course.metrics.elbo` and :func:`vae_course.metrics.log_likelihood`.
    """

    def __init__(self, vae):
        self.vae = vae
        self.latent_shape = vae.latent_shape

    def check_inputs(self, x):
        return check_uint8_images(x, self.vae.image_shape)

    def posterior(self, x):
        return self.vae.posterior(ops.cast(x, "float32") / 255.0)

    def flow(self, z, context):
        return self.vae.flow(z, context)

    def decoder_input(self, z, x):
        return self.vae.decoder_input(z, x)

    def decode_params(self, z, compiled=False):
        return self.vae.decode_params(z, compiled)

    def log_px(self, x, params):
        return losses.bernoulli_256_log_prob(x, params)

    def log_weights(self, x, k, seed=None, compiled=False):
        return gaussian_log_weights(self, x, k, seed=seed, compiled=compiled)

    def elbo(self, x, seed=None, estimator=None):
        return VariationalModel.elbo(self, x, seed=seed, estimator=estimator)
