"""Deterministic autoencoders: dense, convolutional and linear, any code size.

An autoencoder is an encoder ``x -> z`` and a decoder ``z -> x_hat`` trained together to make
``x_hat`` close to ``x``. Here the loss is the mean squared error on pixels in [0, 1], so the
models train with plain ``compile(loss="mse")`` and ``fit(x, x)``.

    from vae_course import autoencoders
    model = autoencoders.conv_autoencoder(code_size=10)
    history = autoencoders.train_autoencoder(model, x_train, x_val, epochs=10)
    errors = autoencoders.reconstruction_error(model, x_test)   # (n,) summed squared error

Chapter 1 trains and explores the convolutional model; chapter 2 compares all three with PCA.
"""

from __future__ import annotations

import os
import tempfile
import time

import keras
import numpy as np
from keras import layers

from .models import LatentModel

IMAGE_SHAPE = (28, 28, 1)


def _check_code_size(code_size):
    if not isinstance(code_size, (int, np.integer)) or isinstance(code_size, bool) or code_size <= 0:
        raise ValueError(f"Expected code_size > 0. Received: code_size={code_size!r}")
    if code_size > 784:
        raise ValueError(f"Expected code_size <= 784 (the number of pixels). "
                         f"Received: code_size={code_size}")
    return int(code_size)


@keras.saving.register_keras_serializable(package="vae_course")
class Autoencoder(LatentModel):
    """An encoder/decoder pair trained to reproduce its input.

    Args:
        encoder: model x (batch, 28, 28, 1) -> z (batch, code_size).
        decoder: model z (batch, code_size) -> x_hat (batch, 28, 28, 1).

    ``model(x)`` returns the reconstruction ``x_hat``; ``encode`` and ``decode`` give the
    two halves (``encode_point`` and ``decode_mean`` are the same maps under the names of the
    package's model interface, :class:`vae_course.models.LatentModel`). Compile with
    ``loss="mse"`` and fit with ``fit(x, x)``.
    """

    def __init__(self, encoder, decoder, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.code_size = int(decoder.inputs[0].shape[-1])
        if int(encoder.outputs[0].shape[-1]) != self.code_size:
            raise ValueError(f"Expected the encoder's output size to equal the decoder's input "
                             f"size. Received: {encoder.outputs[0].shape[-1]} and {self.code_size}")
        self.built = True  # both halves are functional models with known shapes

    def encode(self, x):
        """x (batch, 28, 28, 1) in [0, 1] -> z (batch, code_size)."""
        return self.encoder(x)

    encode_point = encode

    def decode(self, z):
        """z (batch, code_size) -> x_hat (batch, 28, 28, 1)."""
        return self.decoder(z)

    def call(self, x, training=False):
        return self.decoder(self.encoder(x, training=training), training=training)


# ----------------------------------------------------------------------------------------
# Builders


def conv_encoder(code_size: int, filters=(32, 64), name="encoder"):
    """Stride-2 convolutions down, then a linear dense layer to the code.

    x: (batch, 28, 28, 1) -> z: (batch, code_size), no activation on z (codes may be negative).
    """
    code_size = _check_code_size(code_size)
    x = keras.Input(shape=IMAGE_SHAPE, name="x")
    h = layers.Conv2D(filters[0], 3, strides=2, padding="same", activation="relu",
                      name="conv1")(x)                                        # 28 -> 14
    h = layers.Conv2D(filters[1], 3, strides=2, padding="same", activation="relu",
                      name="conv2")(h)                                        # 14 -> 7
    h = layers.Flatten(name="flatten")(h)                                     # 7*7*64 = 3136
    z = layers.Dense(code_size, name="z")(h)
    return keras.Model(x, z, name=name)


def conv_decoder(code_size: int, filters=(64, 32), upsampling="nearest", name="decoder"):
    """A dense layer to a 7x7 map, then two 2x upsamplings back to 28x28 pixels in [0, 1].

    ``upsampling="nearest"``: a 3x3 convolution, then UpSampling2D (repeat each pixel 2x2),
    so every upsampled map is smoothed by the next convolution; ``"transpose"``: a stride-2 3x3 transposed convolution, whose uneven kernel
    overlap tends to print a checkerboard pattern on the output.

    z: (batch, code_size) -> x_hat: (batch, 28, 28, 1).
    """
    code_size = _check_code_size(code_size)
    if upsampling not in ("nearest", "transpose"):
        raise ValueError(f"Expected upsampling 'nearest' or 'transpose'. "
                         f"Received: upsampling={upsampling!r}")
    z = keras.Input(shape=(code_size,), name="z")
    h = layers.Dense(7 * 7 * filters[0], activation="relu", name="fc")(z)
    h = layers.Reshape((7, 7, filters[0]), name="reshape")(h)
    for i, f in enumerate(filters, start=1):                                  # 7 -> 14 -> 28
        if upsampling == "nearest":
            # Convolve at the low resolution, then repeat pixels: the next convolution (or
            # the output layer) smooths the 2x2 blocks. Cheaper than convolving after.
            h = layers.Conv2D(f, 3, padding="same", activation="relu", name=f"conv{i}")(h)
            h = layers.UpSampling2D(2, name=f"up{i}")(h)
        else:
            h = layers.Conv2DTranspose(f, 3, strides=2, padding="same", activation="relu",
                                       name=f"deconv{i}")(h)
    x_hat = layers.Conv2D(1, 3, padding="same", activation="sigmoid", name="x_hat")(h)
    return keras.Model(z, x_hat, name=name)


def conv_autoencoder(code_size: int, upsampling="nearest", seed=None, name="conv_autoencoder"):
    """The chapters' convolutional autoencoder (about 0.2 M parameters for code size 10)."""
    if seed is not None:
        keras.utils.set_random_seed(seed)
    return Autoencoder(conv_encoder(code_size), conv_decoder(code_size, upsampling=upsampling),
                       name=name)


def dense_autoencoder(code_size: int, hidden=(512, 256), activation="relu", seed=None,
                      name="dense_autoencoder"):
    """A fully connected autoencoder: 784 -> hidden... -> code_size -> ...hidden -> 784.

    With ``hidden=()`` and ``activation=None`` it is the linear autoencoder
    (see :func:`linear_autoencoder`). The output is a sigmoid when ``activation`` is set,
    linear otherwise.
    """
    code_size = _check_code_size(code_size)
    if seed is not None:
        keras.utils.set_random_seed(seed)
    x = keras.Input(shape=IMAGE_SHAPE, name="x")
    h = layers.Flatten(name="flatten")(x)                                    # (batch, 784)
    for i, units in enumerate(hidden, start=1):
        h = layers.Dense(units, activation=activation, name=f"enc{i}")(h)
    encoder = keras.Model(x, layers.Dense(code_size, name="z")(h), name="encoder")

    z = keras.Input(shape=(code_size,), name="z")
    h = z
    for i, units in enumerate(reversed(hidden), start=1):
        h = layers.Dense(units, activation=activation, name=f"dec{i}")(h)
    out = layers.Dense(784, activation="sigmoid" if activation else None, name="pixels")(h)
    decoder = keras.Model(z, layers.Reshape(IMAGE_SHAPE, name="x_hat")(out), name="decoder")
    return Autoencoder(encoder, decoder, name=name)


def linear_autoencoder(code_size: int, seed=None, name="linear_autoencoder"):
    """x -> W_e x + b_e -> W_d z + b_d: no hidden layers, no activations.

    Trained with MSE its decoder spans the same subspace as the first ``code_size``
    principal components (Baldi and Hornik, 1989), though its weights need not be orthogonal.
    """
    return dense_autoencoder(code_size, hidden=(), activation=None, seed=seed, name=name)


# ----------------------------------------------------------------------------------------
# Training and evaluation


def images(x) -> np.ndarray:
    """uint8 (n, 28, 28) or float (n, 28, 28[, 1]) -> float32 (n, 28, 28, 1) in [0, 1]."""
    x = np.asarray(x)
    if x.dtype == np.uint8:
        x = x.astype("float32") / 255.0
    if x.ndim == 3:
        x = x[..., None]
    if x.shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"Expected images of shape (n, 28, 28) or (n, 28, 28, 1). "
                         f"Received: shape {x.shape}")
    return x.astype("float32")


def make_optimizer(optimizer="rmsprop", learning_rate=1e-3):
    """``"rmsprop"`` or ``"adam"`` with ``learning_rate`` (a float or a Keras schedule), or an
    optimizer instance, returned as it is."""
    if isinstance(optimizer, keras.optimizers.Optimizer):
        return optimizer
    if optimizer == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate)
    if optimizer == "adam":
        return keras.optimizers.Adam(learning_rate)
    raise ValueError(f"Expected optimizer 'rmsprop' or 'adam'. Received: optimizer={optimizer!r}")


class TimeLimit(keras.callbacks.Callback):
    """Stop training at the end of the first epoch that ends after ``seconds`` of fitting."""

    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if time.perf_counter() - self.start > self.seconds:
            self.model.stop_training = True


def train_autoencoder(model, x_train, x_val, epochs=10, batch_size=128, optimizer="rmsprop",
                      learning_rate=1e-3, patience=3, checkpoint=None, verbose=2, seed=0,
                      time_limit=None):
    """Fit ``model`` with MSE, keep the weights of the best validation epoch.

    ``ModelCheckpoint`` writes the model whenever the validation loss improves (to
    ``checkpoint``, default a temporary file); ``EarlyStopping`` stops after ``patience``
    epochs without improvement; with ``time_limit`` (seconds) training also stops after the
    first epoch that ends past it. At the end the best checkpoint's weights are loaded back.

    Returns the Keras ``History.history`` dict (``loss``, ``val_loss`` per epoch) plus
    ``seconds`` (wall time of ``fit``) and ``best_epoch`` (1-based).
    """
    if epochs <= 0:
        raise ValueError(f"Expected epochs > 0. Received: epochs={epochs}")
    x_train, x_val = images(x_train), images(x_val)
    keras.utils.set_random_seed(seed)
    model.compile(optimizer=make_optimizer(optimizer, learning_rate), loss="mse")
    if checkpoint is None:
        checkpoint = os.path.join(tempfile.mkdtemp(prefix="ae-"), "best.keras")
    callbacks = [
        keras.callbacks.ModelCheckpoint(checkpoint, monitor="val_loss", save_best_only=True),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience),
    ]
    if time_limit is not None:
        callbacks.append(TimeLimit(time_limit))
    start = time.perf_counter()
    history = model.fit(x_train, x_train, validation_data=(x_val, x_val), epochs=epochs,
                        batch_size=batch_size, callbacks=callbacks, verbose=verbose)
    seconds = time.perf_counter() - start
    best = keras.saving.load_model(checkpoint, compile=False, safe_mode=True)
    model.set_weights(best.get_weights())
    result = dict(history.history)
    result["seconds"] = seconds
    result["best_epoch"] = int(np.argmin(result["val_loss"])) + 1
    return result


def encode(model, x, batch_size=1000) -> np.ndarray:
    """Codes (n, code_size) of images x, as numpy."""
    return np.asarray(model.encoder.predict(images(x), batch_size=batch_size, verbose=0))


def decode(model, z, batch_size=1000) -> np.ndarray:
    """Images (n, 28, 28, 1) decoded from codes z (n, code_size), as numpy."""
    z = np.asarray(z, dtype="float32").reshape(-1, model.code_size)
    return np.asarray(model.decoder.predict(z, batch_size=batch_size, verbose=0))


def reconstruct(model, x, batch_size=1000) -> np.ndarray:
    return np.asarray(model.predict(images(x), batch_size=batch_size, verbose=0))


def reconstruction_error(model, x, batch_size=1000) -> np.ndarray:
    """Summed squared error per image, (n,): sum over 784 pixels of (x - x_hat)^2, x in [0, 1].

    This is Hinton and Salakhutdinov's (2006) measure; MSE per pixel is this divided by 784.
    """
    x = images(x)
    x_hat = reconstruct(model, x, batch_size)
    return np.sum(np.square(x - x_hat).reshape(len(x), -1), axis=1)


def pretrained_name(code_size: int) -> str:
    """Name of the shipped convolutional autoencoder with this code size."""
    return f"mnist-conv-ae-{_check_code_size(code_size)}"


def train_linear_full_batch(x, code_size, steps=1000, seed=0):
    """Train a linear autoencoder by full-batch gradient descent on the exact training MSE.

    The model is ``x_hat = mean + W_d @ W_e @ (x - mean)`` (the linear autoencoder with its
    biases at their optimum). Its loss per image, ``E||(I - W_d W_e)(x - mean)||^2``, depends
    on the data only through the pixel covariance C, so each gradient step costs
    O(D^2 k) however many images there are, and has no sampling noise:

        dL/dW_d = -2 (I - W_d W_e) C W_e^T,     dL/dW_e = -2 W_d^T (I - W_d W_e) C.

    The step size is 0.25 / lambda_max(C) (a power iteration estimates lambda_max).
    Returns ``(w_enc (k, D), w_dec (D, k), mean (D,), losses)`` with ``losses`` the mean
    summed squared error per training image before every step.
    """
    code_size = _check_code_size(code_size)
    x = np.asarray(x).reshape(len(x), -1)
    x = x.astype("float64") / (255.0 if x.dtype == np.uint8 else 1.0)
    mean = x.mean(axis=0)
    cov = (x - mean).T @ (x - mean) / len(x)                              # (D, D)
    d = cov.shape[0]
    rng = np.random.default_rng(seed)
    v = rng.standard_normal(d)
    for _ in range(50):                                                   # power iteration
        v = cov @ v
        v /= np.linalg.norm(v)
    lr = 0.25 / float(v @ cov @ v)
    scale = np.sqrt(2.0 / (d + code_size))                                # Glorot normal
    w_enc = rng.normal(0.0, scale, (code_size, d))
    w_dec = rng.normal(0.0, scale, (d, code_size))
    trace, losses = np.trace(cov), []
    for _ in range(steps):
        c_we = cov @ w_enc.T                                              # (D, k) = C W_e^T
        wd_c = w_dec.T @ cov                                              # (k, D) = W_d^T C
        ece = w_enc @ c_we                                                # (k, k) = W_e C W_e^T
        dtd = w_dec.T @ w_dec                                             # (k, k)
        # L = tr C - 2 tr(W_d W_e C) + tr(W_e C W_e^T W_d^T W_d), all without a (D, D) product.
        losses.append(trace - 2.0 * np.sum(wd_c * w_enc) + np.sum(ece * dtd))
        grad_dec = -2.0 * (c_we - w_dec @ ece)
        grad_enc = -2.0 * (wd_c - dtd @ c_we.T)
        w_dec -= lr * grad_dec
        w_enc -= lr * grad_enc
    return w_enc, w_dec, mean, np.array(losses)
