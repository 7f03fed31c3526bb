"""Does the input pipeline keep up? Images/s it delivers alone, against what the model trains.

The trainer (``vae_course.train``) feeds ``fit`` one epoch at a time: each epoch's order
(and, for dynamic binarization, its fresh binary draw) is made by ``pipeline.epoch_data`` in
NumPy, then ``pipeline.whole_batches`` turns it into a ``tf.data`` pipeline of whole batches
with prefetching. This benchmark times exactly those two steps with no model behind them,
and, in the same run, the training rate of the model that consumes them (timed ``fit`` calls
after a warm-up one). Each rate is the fastest of ``--repeats`` timings: this machine's host
sometimes caps it at one CPU for a few seconds, which only ever slows a timing down. A GPU
trains faster than these 2 CPU cores; the ratio says how much faster it may be before the
input becomes the bottleneck.

TensorFlow backend.
Usage: ``python benchmarks/input_pipeline.py [--quick] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from _table import print_table  # noqa: E402
from vae_course import configs, factory, pipeline  # noqa: E402


def pipeline_rate(train_data, batch_size, epochs=3, seed=0):
    """Images/s of the trainer's input (epoch_data, whole_batches) read to the end, no model:
    the fastest of ``epochs`` epochs, each made and read in full.

    The batches are read inside TensorFlow (``Dataset.reduce``), as ``fit``'s compiled step
    reads them, not one by one in Python."""
    import tensorflow as tf

    rates = []
    for epoch in range(epochs):
        start = time.perf_counter()
        x = pipeline.whole_batches(pipeline.epoch_data(train_data, seed, epoch), batch_size, dataset=True)
        n = int(x.reduce(tf.constant(0), lambda total, batch: total + tf.shape(batch)[0]))
        rates.append(n / (time.perf_counter() - start))
    return max(rates)


def model_rate(config, train_data, images, repeats=3):
    """Images/s the model trains: the fastest of ``repeats`` fit calls on ``images`` examples,
    after a warm-up call."""
    keras.utils.set_random_seed(config.seed)
    model = factory.build_model(config)
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), jit_compile=False,
                  steps_per_execution=config.steps_per_call)
    x = pipeline.epoch_data(train_data, config.seed, 0)[:images]
    model.fit(pipeline.whole_batches(x[: 4 * config.batch_size], config.batch_size, dataset=True),
              epochs=1, verbose=0)
    x = pipeline.whole_batches(x, config.batch_size, dataset=True)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.fit(x, epochs=1, shuffle=False, verbose=0)
        seconds.append(time.perf_counter() - start)
    return images // config.batch_size * config.batch_size / min(seconds)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="a smoke run on small slices")
    p.add_argument("--repeats", type=int, default=3, help="timings per rate; the fastest counts")
    args = p.parse_args(argv)
    cases = [("mnist-conv", "static"), ("mnist-mlp", "dynamic"), ("cifar-iaf", "uint8")]
    rows = []
    for name, kind in cases:
        config = configs.get_preset(name)
        if args.quick:
            config = config.replace(train_examples=1024, test_examples=256)
        train_data, _ = pipeline.load_data(config)
        images = 1024 if args.quick else (8192 if config.dataset == "mnist" else 1024)
        repeats = 1 if args.quick else args.repeats
        fed = pipeline_rate(train_data, config.batch_size, epochs=repeats)
        used = model_rate(config, train_data, images, repeats)
        rows.append((f"{name} ({kind}, batch {config.batch_size})", fed, used))
        print(f"  {rows[-1][0]}: pipeline {fed:,.0f} img/s, model {used:,.0f} img/s", flush=True)
    header = ("input", "pipeline alone (img/s)", "model trains (img/s)", "ratio")
    print_table(header, [(r[0], f"{r[1]:,.0f}", f"{r[2]:,.0f}", f"{r[1] / r[2]:.0f}x")
                         for r in rows])
    return 0


if __name__ == "__main__":
    sys.exit(main())
