"""Autoregressive layers for inverse autoregressive flow (Kingma et al., 2016).

- :class:`MaskedDense`: a dense layer whose kernel is multiplied by a fixed 0/1 mask.
- :class:`MADE`: a masked autoencoder (Germain et al., 2015) on z, with an unmasked context
  input h: output i depends on z_1..z_{i-1} and on h only.
- :class:`IAFStep`: one IAF step, z <- sigma * z + (1 - sigma) * m with (m, s) = MADE(z, h),
  sigma = sigmoid(s); it returns the new z and log|det dz_new/dz| = sum(log sigma).

Because output i of the MADE never sees z_i or later coordinates, dz_new_i/dz_j = 0 for
j > i and dz_new_i/dz_i = sigma_i: the Jacobian is triangular and its log-determinant is the
sum of log sigma. The masks are rebuilt from the config, so the layers are serializable.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


def made_degrees(dim: int, hidden_units) -> list[np.ndarray]:
    """Degrees of the input, each hidden layer, as in MADE (inputs 1..dim, hidden 1..dim-1)."""
    degrees = [np.arange(1, dim + 1)]
    for units in hidden_units:
        # Cycle through 1..dim-1 so every degree is represented (deterministic, no RNG).
        degrees.append(np.arange(units) % max(dim - 1, 1) + 1)
    return degrees


def made_masks(dim: int, hidden_units) -> list[np.ndarray]:
    """The 0/1 kernel masks of a MADE with ``hidden_units``; the last maps to ``dim`` outputs.

    Hidden unit k may see input d if deg(k) >= d; output i may see hidden unit k if
    i > deg(k). Hence output i depends on inputs 1..i-1 only (strictly autoregressive).
    """
    degrees = made_degrees(dim, hidden_units)
    masks = [(d_out[None, :] >= d_in[:, None]).astype("float32")
             for d_in, d_out in zip(degrees[:-1], degrees[1:])]
    out_degrees = np.arange(1, dim + 1)
    masks.append((out_degrees[None, :] > degrees[-1][:, None]).astype("float32"))
    return masks


@keras.saving.register_keras_serializable(package="vae_course")
class MaskedDense(keras.layers.Layer):
    """``y = x @ (kernel * mask) + bias`` over the last axis. ``mask`` is a fixed (in, out) 0/1 array.

    With ``kernel_size > 1`` the inputs are feature maps (batch, height, width, in) and the
    layer is a "same"-padded convolution whose every spatial tap carries the same channel mask:
    output channel i then sees input channels the mask allows, at all neighbouring positions.
    Ordering the variables channel by channel keeps the Jacobian triangular.
    """

    def __init__(self, units, mask, activation=None, kernel_initializer="glorot_uniform",
                 kernel_size=1, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.kernel_size = int(kernel_size)
        self.mask = np.asarray(mask, dtype="float32")
        if self.mask.ndim != 2 or self.mask.shape[1] != self.units:
            raise ValueError(f"Expected a mask of shape (input_dim, {self.units}). "
                             f"Received a mask of shape {self.mask.shape}.")
        self.activation = keras.activations.get(activation)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        if input_shape[-1] != self.mask.shape[0]:
            raise ValueError(f"Expected inputs with {self.mask.shape[0]} features for this mask. "
                             f"Received input shape {tuple(input_shape)}.")
        shape = self.mask.shape
        if self.kernel_size > 1:
            shape = (self.kernel_size, self.kernel_size) + shape
        self.kernel = self.add_weight(shape=shape, initializer=self.kernel_initializer,
                                      name="kernel")
        self.bias = self.add_weight(shape=(self.units,), initializer="zeros", name="bias")

    def call(self, x):
        mask = ops.convert_to_tensor(self.mask, dtype=self.kernel.dtype)
        if self.kernel_size > 1:
            y = ops.conv(x, self.kernel * mask[None, None], padding="same")
        else:
            y = ops.matmul(x, self.kernel * mask)
        return self.activation(y + self.bias)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "mask": self.mask.tolist(),
                "kernel_size": self.kernel_size,
                "activation": keras.activations.serialize(self.activation),
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}


@keras.saving.register_keras_serializable(package="vae_course")
class MADE(keras.layers.Layer):
    """Masked autoencoder on z (dim) with a context h: returns (m, s), each (batch, dim).

    ``m_i`` and ``s_i`` depend on ``z_1..z_{i-1}`` and on ``h``. The context enters the first
    hidden layer through an ordinary (unmasked) dense layer, which keeps the property.
    """

    def __init__(self, dim, hidden_units=(256, 256), kernel_size=1, **kwargs):
        super().__init__(**kwargs)
        self.kernel_size = int(kernel_size)
        if not isinstance(dim, int) or dim < 1:
            raise ValueError(f"Expected dim to be a positive integer. Received: dim={dim!r}")
        self.dim = dim
        self.hidden_units = tuple(int(u) for u in hidden_units)
        if not self.hidden_units or min(self.hidden_units) < 1:
            raise ValueError(f"Expected hidden_units to be positive integers. "
                             f"Received: hidden_units={hidden_units!r}")
        masks = made_masks(dim, self.hidden_units)
        k = self.kernel_size
        self.hidden = [MaskedDense(u, m, kernel_size=k, name=f"masked{i}")
                       for i, (u, m) in enumerate(zip(self.hidden_units, masks[:-1]), 1)]
        if k > 1:
            self.context = keras.layers.Conv2D(self.hidden_units[0], k, padding="same",
                                               use_bias=False, name="context")
        else:
            self.context = keras.layers.Dense(self.hidden_units[0], use_bias=False, name="context")
        self.out_m = MaskedDense(dim, masks[-1], kernel_initializer="zeros", kernel_size=k,
                                 name="m")
        self.out_s = MaskedDense(dim, masks[-1], kernel_initializer="zeros", kernel_size=k,
                                 name="s")

    def build(self, input_shape):
        z_shape, h_shape = input_shape
        shape = z_shape
        for layer in self.hidden:
            layer.build(shape)
            shape = tuple(shape[:-1]) + (layer.units,)
        self.context.build(h_shape)
        self.out_m.build(shape)
        self.out_s.build(shape)

    def call(self, inputs):
        z, h = inputs
        a = self.hidden[0](z) + self.context(h)
        a = ops.elu(a)
        for layer in self.hidden[1:]:
            a = ops.elu(layer(a))
        return self.out_m(a), self.out_s(a)

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "hidden_units": list(self.hidden_units),
                "kernel_size": self.kernel_size}


@keras.saving.register_keras_serializable(package="vae_course")
class IAFStep(keras.layers.Layer):
    """One inverse autoregressive flow step (Kingma et al., 2016, eq. 11-14).

    ``z_new = sigma * z + (1 - sigma) * m`` with ``(m, s) = MADE(z, h)`` and
    ``sigma = sigmoid(s + forget_bias)``. The positive ``forget_bias`` starts every step
    near the identity (sigma ~ 0.88 for 2.0), as the paper recommends. ``reverse=True``
    flips the order of the coordinates before and after the step, so that stacked steps
    alternate their autoregressive order.

    z may be a vector (batch, dim) or a feature map (batch, height, width, dim) with a context
    map h; on maps the step is autoregressive over channels (``dim``) and, with
    ``kernel_size=3``, mixes neighbouring positions of earlier channels.

    Call: ``z_new, log_det = step([z, h])``; ``log_det`` is (batch,), log|det dz_new/dz|.
    """

    def __init__(self, dim, hidden_units=(256, 256), reverse=False, forget_bias=2.0,
                 kernel_size=1, **kwargs):
        super().__init__(**kwargs)
        self.dim = dim
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.reverse = bool(reverse)
        self.forget_bias = float(forget_bias)
        self.kernel_size = int(kernel_size)
        self.made = MADE(dim, self.hidden_units, kernel_size=self.kernel_size, name="made")

    def build(self, input_shape):
        self.made.build(input_shape)

    def call(self, inputs):
        z, h = inputs
        if self.reverse:
            z = ops.flip(z, axis=-1)
        m, s = self.made([z, h])
        s = s + self.forget_bias
        sigma = ops.sigmoid(s)
        z = sigma * z + (1.0 - sigma) * m
        log_sigma = -ops.softplus(-s)                          # log sigmoid(s), stable
        log_det = ops.sum(ops.reshape(log_sigma, (ops.shape(s)[0], -1)), axis=-1)
        if self.reverse:
            z = ops.flip(z, axis=-1)
        return z, log_det

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "hidden_units": list(self.hidden_units),
                "reverse": self.reverse, "forget_bias": self.forget_bias,
                "kernel_size": self.kernel_size}
