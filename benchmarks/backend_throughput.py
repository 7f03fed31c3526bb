"""conv-VAE training throughput (images/s) under the TensorFlow, JAX and torch Keras backends.

Same model (``models.conv_vae(latent_dim=2)``, Adam 1e-3), same data (the first 10,000
statically binarized MNIST training images), batch 64: one warm-up epoch (compilation),
then one timed epoch. A Keras backend is fixed per process, so each backend runs in its
own subprocess, one after another. Usage: ``python benchmarks/backend_throughput.py
[--backends tensorflow,jax,torch] [--examples 10000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def measure(examples, batch_size):
    import keras
    import numpy as np

    from vae_course import data, models

    (x_train, _), _ = data.load_mnist()
    x = data.binarize_static(x_train[:examples])
    keras.utils.set_random_seed(0)
    model = models.conv_vae(latent_dim=2, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(x, batch_size=batch_size, epochs=1, verbose=0)          # warm-up: compile
    start = time.perf_counter()
    history = model.fit(x, batch_size=batch_size, epochs=1, verbose=0).history
    seconds = time.perf_counter() - start
    return {"backend": keras.backend.backend(), "seconds": seconds,
            "images_per_s": len(x) / seconds, "elbo": float(np.mean(history["elbo"]))}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    parser.add_argument("--examples", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.examples, args.batch_size)))
        return
    rows = []
    for backend in args.backends.split(","):
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
        out = subprocess.run([sys.executable, __file__, "--child", "--examples",
                              str(args.examples), "--batch-size", str(args.batch_size)],
                             capture_output=True, text=True, env=env, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        r = rows[-1]
        print(f"{r['backend']:>10}  {r['seconds']:6.1f} s/epoch  {r['images_per_s']:7.0f} images/s"
              f"  train ELBO {r['elbo']:8.2f}", flush=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
