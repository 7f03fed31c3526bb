"""Encoder and decoder builders (functional Keras models)."""

from __future__ import annotations

import keras
from keras import layers

from .losses import MIX_PARAMS_PER_COMPONENT


def _check_latent_dim(latent_dim):
    if not isinstance(latent_dim, int) or isinstance(latent_dim, bool) or latent_dim <= 0:
        raise ValueError(f"Expected latent_dim to be a positive integer. "
                         f"Received: latent_dim={latent_dim!r}")
    if latent_dim > 4096:
        raise ValueError(f"Expected latent_dim <= 4096 for these 28x28 models. "
                         f"Received: latent_dim={latent_dim}")


def build_conv_encoder(latent_dim: int, input_shape=(28, 28, 1), num_classes: int = 0,
                       name="encoder"):
    """The TensorFlow tutorial's inference network.

    x: (batch, 28, 28, 1) -> (batch, 2 * latent_dim) = [z_mean, z_log_var]. With
    ``num_classes > 0`` it also reads a one-hot label (batch, num_classes), joined to the
    flattened convolution features: the conditional VAE's q(z | x, y).
    """
    _check_latent_dim(latent_dim)
    x = keras.Input(shape=input_shape, name="x")
    h = layers.Conv2D(32, 3, strides=2, activation="relu", name="conv1")(x)   # 28 -> 13
    h = layers.Conv2D(64, 3, strides=2, activation="relu", name="conv2")(h)   # 13 -> 6
    h = layers.Flatten()(h)                                                   # 6*6*64 = 2304
    inputs = x
    if num_classes:
        y = keras.Input(shape=(num_classes,), name="y")
        h = layers.Concatenate(name="with_label")([h, y])
        inputs = [x, y]
    out = layers.Dense(2 * latent_dim, name="z_params", dtype="float32")(h)
    return keras.Model(inputs, out, name=name)


def build_conv_decoder(latent_dim: int, name="decoder"):
    """The TensorFlow tutorial's generative network.

    z: (batch, latent_dim) -> logits (batch, 28, 28, 1) of independent Bernoulli pixels.
    """
    _check_latent_dim(latent_dim)
    z = keras.Input(shape=(latent_dim,), name="z")
    h = layers.Dense(7 * 7 * 32, activation="relu", name="fc")(z)
    h = layers.Reshape((7, 7, 32))(h)
    h = layers.Conv2DTranspose(64, 3, strides=2, padding="same", activation="relu",
                               name="deconv1")(h)                             # 7 -> 14
    h = layers.Conv2DTranspose(32, 3, strides=2, padding="same", activation="relu",
                               name="deconv2")(h)                             # 14 -> 28
    logits = layers.Conv2DTranspose(1, 3, strides=1, padding="same", name="logits",
                                    dtype="float32")(h)
    return keras.Model(z, logits, name=name)


def _check_hidden(hidden_units):
    units = tuple(hidden_units)
    if not units or not all(isinstance(u, int) and not isinstance(u, bool) and u > 0
                            for u in units):
        raise ValueError(f"Expected hidden_units to be a non-empty sequence of positive integers. "
                         f"Received: hidden_units={hidden_units!r}")
    return units


def build_dense_encoder(latent_dim: int, hidden_units=(512, 256), input_shape=(28, 28, 1),
                        name="encoder"):
    """An MLP inference network, as in the PyTorch Lightning and tflearn examples.

    x: (batch, 28, 28, 1) -> flatten (batch, 784) -> ReLU layers of ``hidden_units``
    -> (batch, 2 * latent_dim) = [z_mean, z_log_var]. No batch normalization (see the
    training chapter for why).
    """
    _check_latent_dim(latent_dim)
    units = _check_hidden(hidden_units)
    x = keras.Input(shape=input_shape, name="x")
    h = layers.Flatten(name="flatten")(x)                                     # 28*28*1 = 784
    for i, u in enumerate(units, 1):
        h = layers.Dense(u, activation="relu", name=f"dense{i}")(h)
    out = layers.Dense(2 * latent_dim, name="z_params", dtype="float32")(h)
    return keras.Model(x, out, name=name)


def build_dense_decoder(latent_dim: int, hidden_units=(256, 512), output_shape=(28, 28, 1),
                        name="decoder"):
    """An MLP generative network: z (batch, latent_dim) -> ReLU layers of ``hidden_units``
    -> logits (batch, 28, 28, 1) of independent Bernoulli pixels."""
    _check_latent_dim(latent_dim)
    units = _check_hidden(hidden_units)
    z = keras.Input(shape=(latent_dim,), name="z")
    h = z
    for i, u in enumerate(units, 1):
        h = layers.Dense(u, activation="relu", name=f"dense{i}")(h)
    size = 1
    for d in output_shape:
        size *= d
    h = layers.Dense(size, name="logits_flat", dtype="float32")(h)           # (batch, 784)
    logits = layers.Reshape(output_shape, name="logits", dtype="float32")(h)
    return keras.Model(z, logits, name=name)


# -- 8-bit colour images (CIFAR-10): the IAF chapter's networks -----------------------------
CIFAR_IMAGE_SHAPE = (32, 32, 3)


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
    x = keras.Input(shape=CIFAR_IMAGE_SHAPE, name="x")
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
    out = layers.Conv2D(MIX_PARAMS_PER_COMPONENT * nr_mix, 1, name="mix_params",
                        dtype="float32")(h)
    return keras.Model(z, out, name=name)
