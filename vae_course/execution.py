"""How a run executes: numeric precision, deterministic kernels and device placement."""

from __future__ import annotations

import contextlib

import keras


@contextlib.contextmanager
def precision(mixed: bool):
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def enable_determinism():
    """Deterministic kernels for the current Keras backend (bit-for-bit repeatable CPU runs).

    TensorFlow: op determinism; torch: deterministic algorithms; JAX needs nothing on CPU
    (XLA's CPU kernels give the same bits run to run).
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    elif backend == "torch":
        import torch

        torch.use_deterministic_algorithms(True)


def mirrored_strategy():
    """``tf.distribute.MirroredStrategy`` over all GPUs or, with none, all logical CPU devices.

    TensorFlow-only (tf.distribute). Each step splits the global batch (``batch_size``) evenly
    across the devices and sums their gradients; the models' ``compute_loss`` divides by the
    number of replicas for that (:func:`vae_course.losses.scale_for_replicas`).
    """
    import tensorflow as tf

    if keras.backend.backend() != "tensorflow":
        raise ValueError(f"Expected the tensorflow backend for strategy 'mirrored' "
                         f"(tf.distribute). Received: KERAS_BACKEND={keras.backend.backend()!r}")
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    return tf.distribute.MirroredStrategy(devices=[d.name for d in devices])


@contextlib.contextmanager
def distribution_scope(strategy: str):
    """Build, compile and fit inside this scope: one device, or a MirroredStrategy."""
    if strategy == "default":
        yield None
        return
    mirrored = mirrored_strategy()
    with mirrored.scope():
        yield mirrored
