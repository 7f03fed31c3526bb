"""conv-VAE training throughput (images/s) under the TensorFlow, JAX and torch Keras backends.

Same model (``models.conv_vae(latent_dim=2)``, Adam 1e-3), same data (the first 10,000
statically binarized MNIST training images), batch 64, fed as ``vae_course.train`` feeds
each backend (whole batches from ``pipeline.whole_batches``: a ``tf.data`` pipeline under
TensorFlow, arrays otherwise; ``TrainConfig.steps_per_call`` steps per compiled call): one
warm-up epoch (compilation), then one timed epoch. A Keras backend is fixed per process, so
each backend runs in its own subprocess: ``--rounds`` rounds of one process per backend in
turn. "CPUs busy" is the process's CPU time over wall time: about 1.0 means the host capped
the machine to one CPU during that epoch (it does so from time to time here); each backend's
row is its fastest epoch among the rounds that had two cores (among all, if none did).
Usage: ``python benchmarks/backend_throughput.py [--backends tensorflow,jax,torch]
[--examples 10000] [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from _table import CAPPED_UTILIZATION, Stopwatch, print_table


def measure(examples, batch_size):
    import keras
    import numpy as np

    from vae_course import configs, data, models, pipeline

    (x_train, _), _ = data.load_mnist()
    tf_data = keras.backend.backend() == "tensorflow"
    x = pipeline.whole_batches(data.binarize_static(x_train[:examples]), batch_size, dataset=tf_data)
    batching = {} if tf_data else dict(batch_size=batch_size)
    images = examples // batch_size * batch_size
    keras.utils.set_random_seed(0)
    model = models.conv_vae(latent_dim=2, seed=0)
    steps = configs.TrainConfig(batch_size=batch_size).steps_per_call
    model.compile(optimizer=keras.optimizers.Adam(1e-3), steps_per_execution=steps)
    model.fit(x, epochs=1, shuffle=False, verbose=0, **batching)   # warm-up: compile
    with Stopwatch() as clock:
        history = model.fit(x, epochs=1, shuffle=False, verbose=0, **batching).history
    return {"backend": keras.backend.backend(), "seconds": clock.wall, "steps_per_call": steps,
            "images_per_s": images / clock.wall, "cpus_busy": clock.cpu / clock.wall,
            "elbo": float(np.mean(history["elbo"]))}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    parser.add_argument("--examples", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.examples, args.batch_size)))
        return
    backends = args.backends.split(",")
    runs = {b: [] for b in backends}
    for i in range(args.rounds):
        for backend in backends:
            env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
            out = subprocess.run([sys.executable, __file__, "--child", "--examples",
                                  str(args.examples), "--batch-size", str(args.batch_size)],
                                 capture_output=True, text=True, env=env, check=True)
            runs[backend].append(json.loads(out.stdout.strip().splitlines()[-1]))
            r = runs[backend][-1]
            print(f"round {i + 1}  {r['backend']:>10}  {r['seconds']:6.1f} s/epoch  "
                  f"{r['images_per_s']:7.0f} images/s  ({r['steps_per_call']} steps/call, "
                  f"{r['cpus_busy']:.1f} CPUs busy)  train ELBO {r['elbo']:8.2f}", flush=True)
    rows = []
    for backend in backends:
        two_cores = [r for r in runs[backend] if r["cpus_busy"] >= CAPPED_UTILIZATION]
        best = max(two_cores or runs[backend], key=lambda r: r["images_per_s"])
        rows.append({**best, "rounds_with_two_cores": len(two_cores), "rounds": args.rounds})
    base = rows[0]["images_per_s"]
    print_table(("backend", "images/s", f"relative to {rows[0]['backend']}", "steps/call",
                 "rounds with two cores"),
                [(r["backend"], f"{r['images_per_s']:,.0f}", f"{r['images_per_s'] / base:.2f}",
                  r["steps_per_call"], f"{r['rounds_with_two_cores']}/{r['rounds']}")
                 for r in rows])
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
