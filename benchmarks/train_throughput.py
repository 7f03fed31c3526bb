"""Training speed of the package's trainer against the TensorFlow tutorial's loop.

Measured in one run, on one machine, same model and data:

1. the reference: a loop written the way the TensorFlow CVAE tutorial writes it (per-step
   ``tf.function`` with ``GradientTape``, batch 32, Adam 1e-4, single-sample Monte Carlo ELBO),
   10 epochs, test ELBO after every epoch;
2. at batch 32, the package's trainer path at the tutorial's settings (``vae_course.train``:
   whole batches of static shape from ``pipeline.whole_batches``, 16 steps per compiled call),
   and the same arrays handed to ``fit`` for Keras to batch, against the reference: ratios of
   images/s. The three train fresh models in turn on the same blocks of ``--block`` images,
   ``--rounds`` times after a warm-up block, so that the machine's minute-to-minute speed (it
   varies by +-10% here) hits all three alike; the ratio is the geometric mean of the
   per-round ratios, with a bootstrap 95% interval. Every block is one ``fit`` call: more calls
   than the trainer makes (one per epoch), so the package's figure is, if anything, low.
   The host sometimes caps this machine at one CPU's worth of time for a while (a capped block
   uses no more CPU time than wall time, and both CPUs sit half idle); the ratio is also given
   over the rounds in which no contender was capped, i.e. over the rounds that had two cores;
3. the package's recommended preset (``mnist-conv``): wall time until the test ELBO reaches
   the reference's 10-epoch value, as a fraction of the reference's wall time, and the test
   ELBO after 10 epochs.

Test ELBOs are the analytic-KL estimate on all 10,000 statically binarized test images
(same expectation as the tutorial's estimator). Training time excludes the
evaluations. Usage: ``python benchmarks/train_throughput.py [--epochs 10] [--quick]``;
``--epochs 0`` runs the batch-32 comparison only.
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

from _table import CAPPED_UTILIZATION, Stopwatch, print_table  # noqa: E402
from vae_course import configs, data, metrics, models, pipeline, train  # noqa: E402


def geometric_mean_with_interval(ratios, resamples=10_000, seed=0):
    """Geometric mean of paired ratios and its bootstrap 95% interval (percentile method)."""
    logs = np.log(np.asarray(ratios, dtype=float))
    if len(logs) == 0:
        return float("nan"), (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = logs[rng.integers(0, len(logs), size=(resamples, len(logs)))].mean(axis=1)
    low, high = np.exp(np.percentile(means, [2.5, 97.5]))
    return float(np.exp(logs.mean())), (float(low), float(high))


def mean_test_elbo(model, x_test):
    return float(np.mean(metrics.elbo(model, x_test, batch_size=1000)))


class ReferenceRun:
    """The tutorial's loop, written as it writes it (model from the package: same network)."""

    def __init__(self, x_train, x_test, seed=0):
        keras.utils.set_random_seed(seed)
        model = models.conv_vae(latent_dim=2, kl="monte_carlo", seed=seed)
        optimizer = tf.keras.optimizers.Adam(1e-4)
        log2pi = tf.math.log(2.0 * np.pi)

        def log_normal_pdf(sample, mean, logvar):
            return tf.reduce_sum(-0.5 * ((sample - mean) ** 2.0 * tf.exp(-logvar) + logvar
                                         + log2pi), axis=1)

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

        self.model, self.train_step, self.x_test = model, train_step, x_test
        self.x_train = x_train
        self.dataset = None   # the tutorial's pipeline over x_train, made on the first epoch
        self.elapsed, self.curve = 0.0, []

    @staticmethod
    def batches(x):
        return tf.data.Dataset.from_tensor_slices(x).shuffle(len(x)).batch(32)

    def run(self, dataset):
        with Stopwatch() as clock:
            for batch in dataset:
                self.train_step(batch)
        return clock

    def block(self, x):
        """Train on ``x`` the same way (its own shuffled batches of 32); a ``Stopwatch``."""
        return self.run(self.batches(x))

    def epoch(self):
        if self.dataset is None:   # made once and reshuffled every pass, as the tutorial does
            self.dataset = self.batches(self.x_train)
        took = self.run(self.dataset).wall
        self.elapsed += took
        self.curve.append((len(self.curve) + 1, self.elapsed,
                           mean_test_elbo(self.model, self.x_test)))
        print(f"  {'reference':12s} epoch {len(self.curve):2d}  {self.elapsed:7.1f} s  "
              f"test ELBO {self.curve[-1][2]:8.2f}", flush=True)
        return took


class PackageRun:
    """The package's trainer path, one epoch per ``fit`` call as ``vae_course.train`` runs it:
    that epoch's order (``epoch_data``), cut to whole batches (``whole_batches``); with
    ``arrays=True`` the same arrays handed to ``fit`` for Keras to batch (what the trainer did
    before). Times each ``fit`` call (evaluations excluded)."""

    def __init__(self, config, x_train, x_test, label, arrays=False):
        keras.utils.set_random_seed(config.seed)
        self.model = models.conv_vae(config.latent_dim, kl=config.kl, seed=config.seed)
        self.model.compile(optimizer=keras.optimizers.Adam(config.learning_rate),
                           jit_compile=False,
                           steps_per_execution=1 if arrays else config.steps_per_call)
        self.config, self.x_train, self.x_test = config, x_train, x_test
        self.label, self.arrays = label, arrays
        self.elapsed, self.curve = 0.0, []

    def block(self, x):
        """One ``fit`` call on ``x`` (already in order), cut to whole batches; a ``Stopwatch``."""
        x = pipeline.whole_batches(x, self.config.batch_size, dataset=not self.arrays)
        batching = dict(batch_size=self.config.batch_size) if self.arrays else {}
        with Stopwatch() as clock:
            self.model.fit(x, epochs=1, shuffle=False, verbose=0, **batching)
        return clock

    def epoch(self):
        epoch = len(self.curve)
        took = self.block(pipeline.epoch_data(self.x_train, self.config.seed, epoch)).wall
        self.elapsed += took
        self.curve.append((epoch + 1, self.elapsed, mean_test_elbo(self.model, self.x_test)))
        print(f"  {self.label:12s} epoch {epoch + 1:2d}  {self.elapsed:7.1f} s  "
              f"test ELBO {self.curve[-1][2]:8.2f}", flush=True)
        return took


def first_time_reaching(curve, target):
    for _, t, value in curve:
        if value >= target:
            return t
    return None


def time_to_target(args, x_train, x_test, n, tutorial, recommended):
    """10 epochs each: the tutorial's loop, then the recommended preset, with test ELBOs."""
    print(f"\n{args.epochs} epochs each on {n:,} images, test ELBO after every epoch:")
    ref = ReferenceRun(x_train, x_test)
    for _ in range(args.epochs):
        ref.epoch()
    rec = PackageRun(recommended, x_train, x_test, "mnist-conv")
    for _ in range(args.epochs):
        rec.epoch()

    ref_time, target = ref.curve[-1][1], ref.curve[-1][2]
    ref_rate = n * args.epochs / ref_time
    rec_rate = n // recommended.batch_size * recommended.batch_size * args.epochs / rec.elapsed
    reach = first_time_reaching(rec.curve, target)
    print_table(("trainer", "images/s", "ratio", f"test ELBO @{args.epochs} ep", "train s"), [
        ("reference loop (tutorial), batch 32", f"{ref_rate:,.0f}", "1.00",
         f"{target:.2f}", f"{ref_time:.0f}"),
        (f"package trainer, mnist-conv preset (batch {recommended.batch_size})",
         f"{rec_rate:,.0f}", f"{rec_rate / ref_rate:.2f}", f"{rec.curve[-1][2]:.2f}",
         f"{rec.elapsed:.0f}")])
    if reach is None:
        print(f"mnist-conv did not reach the reference's {args.epochs}-epoch test ELBO "
              f"({target:.2f}) in {args.epochs} epochs")
    else:
        print(f"time to the reference's {args.epochs}-epoch test ELBO ({target:.2f}): reference "
              f"{ref_time:.0f} s, mnist-conv {reach:.0f} s = {reach / ref_time:.2f} of the "
              f"reference's time")
    return {"reference": ref.curve, "recommended": rec.curve,
            "epoch_images_per_s": {"reference": ref_rate, "recommended": rec_rate},
            "time_to_target_fraction": None if reach is None else reach / ref_time}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--rounds", type=int, default=None,
                   help="rounds of the paired batch-32 comparison (default 40; --quick: 3)")
    p.add_argument("--block", type=int, default=None,
                   help="images each contender trains on per round (default 4,096; --quick: 256)")
    p.add_argument("--quick", action="store_true", help="a smoke run on 1,024 images")
    p.add_argument("--json", help="also write the results to this file")
    args = p.parse_args(argv)
    args.rounds = args.rounds or (3 if args.quick else 40)
    args.block = args.block or (256 if args.quick else 4096)

    (x_train_u8, _), (x_test_u8, _) = data.load_mnist()
    x_train, x_test = data.binarize_static(x_train_u8), data.binarize_static(x_test_u8)
    if args.quick:
        x_train, x_test = x_train[:1024], x_test[:512]
    n = len(x_train)
    tutorial = configs.get_preset("tutorial")
    recommended = configs.get_preset("mnist-conv")

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, TensorFlow {tf.__version__}, "
          f"Keras {keras.__version__}; {n} training images")
    # batch 32, paired: short blocks in turn, so the machine's minute-to-minute speed (it
    # varies by +-10% here) hits all three alike; fresh models, one untimed warm-up block each
    contenders = {"reference": ReferenceRun(x_train, x_test),
                  "trainer": PackageRun(tutorial, x_train, x_test, "trainer@32"),
                  "arrays": PackageRun(tutorial, x_train, x_test, "arrays@32", arrays=True)}
    block = min(args.block, n) // 32 * 32
    wall = {k: [] for k in contenders}
    cpu = {k: [] for k in contenders}
    rng = np.random.default_rng(0)
    for i in range(args.rounds + 1):
        x = x_train[rng.permutation(n)[:block]]
        for name, run in contenders.items():
            clock = run.block(x)
            if i:
                wall[name].append(clock.wall)
                cpu[name].append(clock.cpu)
        if i:
            print(f"  round {i:2d}: " + ", ".join(
                f"{k} {block / wall[k][-1]:,.0f} img/s ({cpu[k][-1] / wall[k][-1]:.1f} CPUs)"
                for k in contenders), flush=True)
    wall = {k: np.array(v) for k, v in wall.items()}
    utilization = {k: np.array(cpu[k]) / wall[k] for k in contenders}
    capped = np.any([u < CAPPED_UTILIZATION for u in utilization.values()], axis=0)
    ratios = {k: wall["reference"] / wall[k] for k in ("trainer", "arrays")}
    paired = {k: geometric_mean_with_interval(r) for k, r in ratios.items()}
    two_cores = {k: geometric_mean_with_interval(r[~capped]) for k, r in ratios.items()}
    rate = {k: block * args.rounds / v.sum() for k, v in wall.items()}

    rows = [(f"package trainer, tutorial settings, batch 32 ({tutorial.steps_per_call} steps/call)",
             "trainer"), ("same, arrays batched by Keras's fit (1 step/call)", "arrays")]
    print(f"\nbatch 32, paired: {args.rounds} rounds of {block:,} images; the reference ran "
          f"{rate['reference']:,.0f} img/s in them. Ratio = reference time / contender time, "
          f"geometric mean [bootstrap 95% interval]; 'two cores' = the {int(np.sum(~capped))} "
          f"rounds in which no contender was capped to one CPU ({int(np.sum(capped))} were).")
    print_table(("contender", "img/s", "ratio, all rounds", "ratio, two cores",
                 "rounds >= 1", "median CPUs busy"),
                [(label, f"{rate[k]:,.0f}", f"{paired[k][0]:.3f} [{paired[k][1][0]:.3f}, "
                  f"{paired[k][1][1]:.3f}]", f"{two_cores[k][0]:.3f} [{two_cores[k][1][0]:.3f}, "
                  f"{two_cores[k][1][1]:.3f}]", f"{int(np.sum(ratios[k] >= 1))}/{args.rounds}",
                  f"{np.median(utilization[k]):.2f}") for label, k in rows])
    print(f"median CPUs busy, reference: {np.median(utilization['reference']):.2f}")
    results = {"block_seconds": {k: v.tolist() for k, v in wall.items()},
               "block_cpu_seconds": cpu, "block_images": block,
               "capped_rounds": np.flatnonzero(capped).tolist(),
               "paired_ratio": {k: v[0] for k, v in paired.items()},
               "paired_ratio_interval": {k: v[1] for k, v in paired.items()},
               "two_core_ratio": {k: v[0] for k, v in two_cores.items()},
               "two_core_ratio_interval": {k: v[1] for k, v in two_cores.items()},
               "images_per_s": {"reference_bs32_blocks": rate["reference"],
                                "trainer_bs32": rate["trainer"], "arrays_bs32": rate["arrays"]}}

    if args.epochs:
        results.update(time_to_target(args, x_train, x_test, n, tutorial, recommended))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
