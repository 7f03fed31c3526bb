"""Training speed of the package's trainer against the TensorFlow tutorial's loop.

Measured in one run, on one machine, same model and data:

1. the reference: a loop written the way the TensorFlow CVAE tutorial writes it (per-step
   ``tf.function`` with ``GradientTape``, batch 32, Adam 1e-4, single-sample Monte Carlo ELBO),
   10 epochs, test ELBO after every epoch;
2. the package's ``fit`` path at the tutorial's settings: images/s, as a ratio to (1), with
   one training step per compiled call (the default) and with 16 (``steps_per_execution``);
3. the package's recommended preset (``mnist-conv``): wall time until the test ELBO reaches
   the reference's 10-epoch value, as a fraction of the reference's wall time, and the test
   ELBO after 10 epochs.

Test ELBOs are the analytic-KL estimate on all 10,000 statically binarized test images
(same expectation as the tutorial's estimator). Training time excludes the
evaluations. Usage: ``python benchmarks/train_throughput.py [--epochs 10] [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from _table import print_table  # noqa: E402
from vae_course import configs, data, metrics, models  # noqa: E402


def test_elbo(model, x_test):
    return float(np.mean(metrics.elbo(model, x_test, batch_size=1000)))


def reference_loop(x_train, x_test, epochs, seed=0):
    """The tutorial's loop, written as it writes it (model from the package: same network)."""
    keras.utils.set_random_seed(seed)
    model = models.conv_vae(latent_dim=2, kl="monte_carlo", seed=seed)
    optimizer = tf.keras.optimizers.Adam(1e-4)
    log2pi = tf.math.log(2.0 * np.pi)

    def log_normal_pdf(sample, mean, logvar):
        return tf.reduce_sum(-0.5 * ((sample - mean) ** 2.0 * tf.exp(-logvar) + logvar + log2pi),
                             axis=1)

    def compute_loss(x):
        mean, logvar = tf.split(model.encoder(x), num_or_size_splits=2, axis=1)
        z = tf.random.normal(shape=tf.shape(mean)) * tf.exp(logvar * 0.5) + mean
        x_logit = model.decoder(z)
        cross_ent = tf.nn.sigmoid_cross_entropy_with_logits(logits=x_logit, labels=x)
        logpx_z = -tf.reduce_sum(cross_ent, axis=[1, 2, 3])
        logpz = log_normal_pdf(z, 0.0, 0.0)
        logqz_x = log_normal_pdf(z, mean, logvar)
        return -tf.reduce_mean(logpx_z + logpz - logqz_x)

    @tf.function
    def train_step(x):
        with tf.GradientTape() as tape:
            loss = compute_loss(x)
        variables = model.encoder.trainable_variables + model.decoder.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))

    dataset = tf.data.Dataset.from_tensor_slices(x_train).shuffle(len(x_train)).batch(32)
    elapsed, curve = 0.0, []
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        for batch in dataset:
            train_step(batch)
        elapsed += time.perf_counter() - start
        curve.append((epoch, elapsed, test_elbo(model, x_test)))
        print(f"  reference  epoch {epoch:2d}  {elapsed:7.1f} s  test ELBO {curve[-1][2]:8.2f}",
              flush=True)
    return curve


class Clock(keras.callbacks.Callback):
    """Training wall time per epoch (evaluations excluded) and the test ELBO after it."""

    def __init__(self, x_test, label, stop_at=None):
        super().__init__()
        self.x_test, self.label, self.stop_at = x_test, label, stop_at
        self.elapsed, self.curve = 0.0, []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.elapsed += time.perf_counter() - self.start
        value = test_elbo(self.model, self.x_test)
        self.curve.append((epoch + 1, self.elapsed, value))
        print(f"  {self.label:9s}  epoch {epoch + 1:2d}  {self.elapsed:7.1f} s  "
              f"test ELBO {value:8.2f}", flush=True)


def package_fit(config, x_train, x_test, label):
    keras.utils.set_random_seed(config.seed)
    model = models.conv_vae(config.latent_dim, kl=config.kl, seed=config.seed)
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), jit_compile=False,
                  steps_per_execution=config.steps_per_execution)
    clock = Clock(x_test, label)
    model.fit(x_train, batch_size=config.batch_size, epochs=config.epochs, shuffle=True,
              callbacks=[clock], verbose=0)
    return clock.curve


def first_time_reaching(curve, target):
    for _, t, value in curve:
        if value >= target:
            return t
    return None


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--quick", action="store_true", help="a smoke run on 1,024 images")
    p.add_argument("--json", help="also write the results to this file")
    args = p.parse_args(argv)

    (x_train_u8, _), (x_test_u8, _) = data.load_mnist()
    x_train, x_test = data.binarize_static(x_train_u8), data.binarize_static(x_test_u8)
    if args.quick:
        x_train, x_test = x_train[:1024], x_test[:512]
    n = len(x_train)
    tutorial = configs.get_preset("tutorial").replace(epochs=1)
    recommended = configs.get_preset("mnist-conv").replace(epochs=args.epochs)

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, TensorFlow {tf.__version__}, "
          f"Keras {keras.__version__}; {n} training images")
    ref = reference_loop(x_train, x_test, args.epochs)
    ref_time, target = ref[-1][1], ref[-1][2]
    same1 = package_fit(tutorial.replace(steps_per_execution=1), x_train, x_test, "fit@bs32,1")
    same = package_fit(tutorial.replace(steps_per_execution=16), x_train, x_test, "fit@bs32,16")
    rec = package_fit(recommended, x_train, x_test, "mnist-conv")
    ref_rate = n * len(ref) / ref_time
    same1_rate = n / same1[0][1]
    same_rate = n / same[0][1]
    rec_rate = n * len(rec) / rec[-1][1]
    reach = first_time_reaching(rec, target)

    rows = [
        ("reference loop (tutorial), batch 32", f"{ref_rate:,.0f}", "1.00",
         f"{ref[-1][2]:.2f}", f"{ref_time:.0f}"),
        ("package fit, tutorial settings, batch 32, 1 step per call", f"{same1_rate:,.0f}",
         f"{same1_rate / ref_rate:.2f}", "-", "-"),
        ("package fit, tutorial settings, batch 32, 16 steps per call",
         f"{same_rate:,.0f}", f"{same_rate / ref_rate:.2f}", "-", "-"),
        (f"package fit, mnist-conv preset (batch {recommended.batch_size})", f"{rec_rate:,.0f}",
         f"{rec_rate / ref_rate:.2f}", f"{rec[-1][2]:.2f}", f"{rec[-1][1]:.0f}"),
    ]
    header = ("trainer", "images/s", "ratio", f"test ELBO @{args.epochs} ep", "train s")
    print_table(header, rows)
    print()
    if reach is None:
        print(f"mnist-conv did not reach the reference's {args.epochs}-epoch test ELBO "
              f"({target:.2f}) in {args.epochs} epochs")
    else:
        print(f"time to the reference's {args.epochs}-epoch test ELBO ({target:.2f}): reference "
              f"{ref_time:.0f} s, mnist-conv {reach:.0f} s = {reach / ref_time:.2f} of the "
              f"reference's time")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"reference": ref, "package_bs32": same, "recommended": rec,
                       "images_per_s": {"reference": ref_rate, "package_bs32_1": same1_rate,
                                        "package_bs32": same_rate,
                                        "recommended": rec_rate},
                       "time_to_target_fraction": None if reach is None else reach / ref_time},
                      f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
