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
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import layers, ops

from . import losses
from .flows import IAFStep
from .models import LOG_VAR_RANGE, deserialize_networks, serialize_networks

IMAGE_SHAPE = (32, 32, 3)
DIMS = 32 * 32 * 3


def _check_latent_size(latent_size):
    if latent_size not in (8, 16):
        raise ValueError(f"Expected latent_size 8 or 16 (an 8x8 or 16x16 map of latents). "
                         f"Received: latent_size={latent_size!r}")


def build_cifar_encoder(latent_dim: int, context_dim: int = 0, width: int = 32,
                        latent_size: int = 8, name="encoder"):
    """x (batch, 32, 32, 3) in [-1, 1] -> (batch, s, s, 2 * latent_dim + context_dim), s = latent_size.

    The channels are [mu, log var, h] of a map of latent variables: a latent map keeps
    "where" for free, so the code spends its bits on "what". Strided 3x3 convolutions down to
    ``latent_size``, then 3x3 convolutions at that size.
    """
    _check_latent_size(latent_size)
    x = keras.Input(shape=IMAGE_SHAPE, name="x")
    h = layers.Conv2D(width, 3, strides=2, padding="same", activation="elu", name="conv1")(x)
    if latent_size == 8:
        h = layers.Conv2D(2 * width, 3, strides=2, padding="same", activation="elu",
                          name="conv2")(h)
    h = layers.Conv2D(2 * width, 3, padding="same", activation="elu", name="conv3")(h)
    out = layers.Conv2D(2 * latent_dim + context_dim, 3, padding="same", name="q_params",
                        dtype="float32")(h)
    return keras.Model(x, out, name=name)


def build_cifar_decoder(latent_dim: int, nr_mix: int = 1, width: int = 32, latent_size: int = 8,
                        name="decoder"):
    """z (batch, s, s, latent_dim) -> mixture parameters (batch, 32, 32, 10 * nr_mix).

    The encoder's mirror image: two 3x3 convolutions at the latent size, transposed
    convolutions up to 32x32, and a 1x1 convolution to the mixture parameters.
    """
    _check_latent_size(latent_size)
    z = keras.Input(shape=(latent_size, latent_size, latent_dim), name="z")
    h = layers.Conv2D(2 * width, 3, padding="same", activation="elu", name="conv1")(z)
    h = layers.Conv2D(2 * width, 3, padding="same", activation="elu", name="conv2")(h)
    if latent_size == 8:
        h = layers.Conv2DTranspose(width, 3, strides=2, padding="same", activation="elu",
                                   name="deconv1")(h)                         # 8 -> 16
    h = layers.Conv2DTranspose(width, 3, strides=2, padding="same", activation="elu",
                               name="deconv2")(h)                             # 16 -> 32
    out = layers.Conv2D(losses.MIX_PARAMS_PER_COMPONENT * nr_mix, 1, name="mix_params",
                        dtype="float32")(h)
    return keras.Model(z, out, name=name)


def check_uint8_images(x, name="x"):
    """Validate (n, 32, 32, 3) uint8 images; returns them unchanged."""
    x = np.asarray(x)
    expected = "uint8 images of shape (n, 32, 32, 3) with values in [0, 255]"
    if x.ndim != 4 or x.shape[1:] != IMAGE_SHAPE:
        hint = " Add a batch axis, e.g. x[None]." if x.shape == IMAGE_SHAPE else ""
        raise ValueError(f"Expected {expected}. Received {name} of shape {x.shape}.{hint}")
    if x.shape[0] == 0:
        raise ValueError(f"Expected {expected}. Received an empty batch.")
    if x.dtype != np.uint8:
        hint = ""
        if np.issubdtype(x.dtype, np.floating) and x.size and np.nanmax(x) <= 1.0:
            hint = (" They look like pixels scaled to [0, 1]: pass the original uint8 images "
                    "(e.g. (x * 255).round().astype('uint8')); the model scales them itself.")
        raise ValueError(f"Expected {expected}. Received dtype {x.dtype}.{hint}")
    return x


@keras.saving.register_keras_serializable(package="vae_course")
class FlowVAE(keras.Model):
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

    def __init__(self, encoder, decoder, flow_steps=0, flow_hidden=(64, 64), nr_mix=1,
                 seed=None, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.latent_shape = tuple(int(d) for d in decoder.inputs[0].shape[1:])
        self.latent_dim = self.latent_shape[-1]
        self.context_dim = int(encoder.outputs[0].shape[-1]) - 2 * self.latent_dim
        if self.context_dim < 0:
            raise ValueError(f"Expected the encoder to output at least 2 * latent_dim = "
                             f"{2 * self.latent_dim} values. Received "
                             f"{encoder.outputs[0].shape[-1]}.")
        if flow_steps and self.context_dim == 0:
            raise ValueError("Expected an encoder that also outputs a context h (context_dim > 0) "
                             f"for flow_steps={flow_steps}. Received context_dim=0.")
        self.flow_steps = int(flow_steps)
        self.flow_hidden = tuple(int(u) for u in flow_hidden)
        self.nr_mix = int(nr_mix)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.steps = [IAFStep(self.latent_dim, self.flow_hidden, reverse=bool(i % 2),
                              kernel_size=3 if len(self.latent_shape) == 3 else 1,
                              name=f"iaf_{i}") for i in range(self.flow_steps)]
        self.elbo_tracker = keras.metrics.Mean(name="elbo")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction")
        self.kl_tracker = keras.metrics.Mean(name="kl")
        self.bpd_tracker = keras.metrics.Mean(name="bpd")

    # -- maps -----------------------------------------------------------------------------
    def encode_all(self, x):
        """uint8 x -> (mu, log_var, h): the Gaussian base of q(z|x) and the flow's context."""
        out = ops.cast(self.encoder(losses.scale_pixels(x)), "float32")
        d = self.latent_dim
        mu = out[..., :d]
        log_var = ops.clip(out[..., d:2 * d], *LOG_VAR_RANGE)
        return mu, log_var, out[..., 2 * d:]

    def encode(self, x):
        """uint8 x -> (mu, log_var) of the Gaussian before the flow."""
        mu, log_var, _ = self.encode_all(x)
        return mu, log_var

    def flow(self, z, h):
        """Push z_0 through the IAF steps: returns (z_T, sum of log-determinants)."""
        log_det = ops.zeros((ops.shape(z)[0],), dtype="float32")
        for step in self.steps:
            z, ld = step([z, h])
            log_det = log_det + ld
        return z, log_det

    def posterior_sample(self, mu, log_var, h, eps):
        """z_T and log q(z_T|x) for base noise ``eps`` (same shape as mu)."""
        eps = ops.convert_to_tensor(eps, dtype="float32")   # NumPy noise: torch needs a tensor
        z0 = mu + ops.exp(0.5 * log_var) * eps
        log_q0 = losses.standard_normal_log_prob(eps) - 0.5 * ops.sum(
            ops.reshape(log_var, (ops.shape(log_var)[0], -1)), axis=-1)
        z, log_det = self.flow(z0, h)
        return z, log_q0 - log_det

    def encode_point(self, x):
        """uint8 x -> one latent point per image: the flow applied to the Gaussian's mean
        (eps = 0), flattened to the latent map's shape. Reconstructions decode this."""
        mu, log_var, h = self.encode_all(x)
        z, _ = self.posterior_sample(mu, log_var, h, ops.zeros_like(mu))
        return z

    def reconstruct(self, x):
        """uint8 x -> the decoder's mean images in [0, 1] at :meth:`encode_point`."""
        return self.decode(self.encode_point(x))

    def decode_params(self, z):
        return ops.cast(self.decoder(z), "float32")

    def decode(self, z, apply_sigmoid=True):
        """z -> mean images in [0, 1] (the mixture's expected pixel values, R/G/B coupled)."""
        return mixture_mean_image(self.decode_params(z), self.nr_mix)

    def call(self, x, training=False):
        mu, log_var, h = self.encode_all(x)
        eps = keras.random.normal(ops.shape(mu), seed=self.seed_generator)
        z, log_q = self.posterior_sample(mu, log_var, h, eps)
        return {"params": self.decode_params(z), "z": z, "log_q": log_q,
                "z_mean": mu, "z_log_var": log_var}

    # -- objective ------------------------------------------------------------------------
    def elbo_terms(self, x, out):
        """Per-example (reconstruction, kl) in nats from ``out = self(x)``."""
        reconstruction = losses.discretized_mix_logistic_log_prob(
            losses.scale_pixels(x), out["params"], self.nr_mix)
        if self.flow_steps:
            kl = out["log_q"] - losses.standard_normal_log_prob(out["z"])
        else:
            kl = losses.kl_standard_normal(out["z_mean"], out["z_log_var"])
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
        self.bpd_tracker.update_state(-elbo / (DIMS * math.log(2.0)))
        return losses.scale_for_replicas(-ops.mean(elbo))

    def log_weights(self, x, k, seed=None):
        """log p(x|z_k) + log p(z_k) - log q(z_k|x) for k posterior samples: (k, batch)."""
        mu, log_var, h = self.encode_all(x)
        b = ops.shape(mu)[0]
        eps = keras.random.normal((k, b) + self.latent_shape, seed=seed)
        flat = lambda t: ops.reshape(t, (k * b,) + tuple(t.shape[2:]))   # noqa: E731
        tile = lambda t: flat(ops.broadcast_to(t[None], (k,) + tuple(t.shape)))  # noqa: E731
        z, log_q = self.posterior_sample(tile(mu), tile(log_var), tile(h), flat(eps))
        x_scaled = losses.scale_pixels(x)
        log_px = losses.discretized_mix_logistic_log_prob(
            tile(x_scaled), self.decode_params(z), self.nr_mix)
        log_w = log_px + losses.standard_normal_log_prob(z) - log_q
        return ops.reshape(log_w, (k, b))

    # -- checks ---------------------------------------------------------------------------
    def check_inputs(self, x):
        return check_uint8_images(x)

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
        """Mean images in [0, 1] (n, 32, 32, 3) of z ~ N(0, temperature^2 I)."""
        z = temperature * keras.random.normal((n,) + self.latent_shape, seed=seed)
        return self.decode(z)

    def get_config(self):
        return {**super().get_config(), **serialize_networks(self),
                "flow_steps": self.flow_steps, "flow_hidden": list(self.flow_hidden),
                "nr_mix": self.nr_mix, "seed": self.seed}

    @classmethod
    def from_config(cls, config):
        return cls(**deserialize_networks(config))


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
              seed=None):
    """The chapter's convolutional VAE; ``flow_steps > 0`` adds an IAF posterior."""
    for name, value, lo, hi in [("latent_dim", latent_dim, 1, 1024), ("flow_steps", flow_steps, 0, 64),
                                ("width", width, 1, 4096), ("nr_mix", nr_mix, 1, 32)]:
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or not lo <= value <= hi:
            raise ValueError(f"Expected {name} to be an integer in [{lo}, {hi}]. "
                             f"Received: {name}={value!r}")
    if context_dim is None:
        context_dim = latent_dim if flow_steps else 0
    return FlowVAE(build_cifar_encoder(latent_dim, context_dim, width, latent_size),
                   build_cifar_decoder(latent_dim, nr_mix, width, latent_size),
                   flow_steps=flow_steps, flow_hidden=flow_hidden, nr_mix=nr_mix, seed=seed,
                   name="iaf_vae" if flow_steps else "cifar_vae")


class Bernoulli256:
    """A Bernoulli-decoder VAE trained on pixels in [0, 1], scored as a model of 8-bit images.

    Its decoder's logits are turned into a proper distribution over the 256 levels of each
    sub-pixel (:func:`vae_course.losses.bernoulli_256_log_prob`), so its ELBO and
    importance-sampled bound are in the same units as :class:`FlowVAE`'s. Takes uint8 images;
    works with :func:`vae_course.metrics.elbo` and :func:`vae_course.metrics.log_likelihood`.
    """

    def __init__(self, vae):
        self.vae = vae
        self.latent_dim = vae.latent_dim

    def check_inputs(self, x):
        return check_uint8_images(x)

    def log_weights(self, x, k, seed=None):
        z_mean, z_log_var = self.vae.encode(ops.cast(x, "float32") / 255.0)
        b = ops.shape(z_mean)[0]
        eps = keras.random.normal((k, b, self.latent_dim), seed=seed)
        z = ops.reshape(z_mean[None] + ops.exp(0.5 * z_log_var)[None] * eps, (k * b, -1))
        logits = ops.reshape(self.vae.decode(z), (k, b, -1))
        x_flat = ops.reshape(ops.cast(x, "float32"), (1, b, -1))
        log_px = ops.sum(ops.reshape(losses.bernoulli_256_log_prob(
            ops.reshape(ops.broadcast_to(x_flat, (k, b, DIMS)), (k * b, DIMS)),
            ops.reshape(logits, (k * b, DIMS))), (k, b, -1)), axis=-1)
        log_q = -0.5 * ops.sum(math.log(2 * math.pi) + z_log_var[None] + ops.square(eps), axis=-1)
        log_pz = ops.reshape(losses.standard_normal_log_prob(z), (k, b))
        return log_px + log_pz - log_q
