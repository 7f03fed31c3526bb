"""Is the IAF posterior's gain on CIFAR-10 larger than the spread between seeds?

Trains the diagonal-Gaussian VAE (preset ``cifar-conv``) and the IAF VAE (``cifar-iaf``) with
several seeds at one shortened budget, then scores each on the same test images and prints
each model's mean and standard deviation across seeds and the per-seed (paired) difference.
The budget is the presets' settings on the first ``--train-examples`` training images for
``--epochs`` epochs, the last at a tenth of the rate (as the shipped 17-epoch models), so it
says how the two compare at that budget, not at the shipped one.

    python benchmarks/iaf_seeds.py --out runs/iaf-seeds     # resumable: run again to go on

Each run is an ordinary run folder (``vae-course evaluate`` works on it); the table is also
written to ``<out>/results.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="runs/iaf-seeds")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--train-examples", type=int, default=10_000)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--test-examples", type=int, default=2_000)
    args = p.parse_args(argv)

    from vae_course import cifar, configs, data, losses, metrics
    from vae_course.train import train

    (_, _), (x_test, _) = data.load_cifar10()
    x_test = x_test[:args.test_examples]
    out = Path(args.out)
    results = {}
    for seed in args.seeds:
        for preset in ("cifar-conv", "cifar-iaf"):
            config = configs.get_preset(preset).replace(
                seed=seed, epochs=args.epochs, lr_cooldown=1,
                train_examples=args.train_examples)
            start = time.perf_counter()
            model, history = train(config, out / f"{preset}-seed{seed}", verbose=0)
            elbo = metrics.elbo(model, x_test, seed=0)
            bpd = float(losses.bits_per_dim(-np.mean(elbo), cifar.DIMS))
            results[f"{preset}/{seed}"] = {"preset": preset, "seed": seed, "test_bpd": bpd,
                                           "seconds": round(time.perf_counter() - start)}
            print(f"{preset:10s} seed {seed}: {bpd:.3f} bits/dim "
                  f"({results[f'{preset}/{seed}']['seconds']} s)", flush=True)
    conv = np.array([results[f"cifar-conv/{s}"]["test_bpd"] for s in args.seeds])
    flow = np.array([results[f"cifar-iaf/{s}"]["test_bpd"] for s in args.seeds])
    diff = conv - flow
    summary = {
        "budget": {"train_examples": args.train_examples, "epochs": args.epochs,
                   "lr_cooldown": 1, "test_examples": args.test_examples},
        "seeds": args.seeds,
        "diagonal_mean": conv.mean(), "diagonal_sd": conv.std(ddof=1),
        "iaf_mean": flow.mean(), "iaf_sd": flow.std(ddof=1),
        "paired_gain_mean": diff.mean(), "paired_gain_sd": diff.std(ddof=1),
        "iaf_better_in": int(np.sum(diff > 0)), "runs": results}
    print(f"diagonal {conv.mean():.3f} ± {conv.std(ddof=1):.3f} bits/dim, "
          f"IAF {flow.mean():.3f} ± {flow.std(ddof=1):.3f} (mean ± sd over {len(args.seeds)} "
          f"seeds); IAF better by {diff.mean():.3f} ± {diff.std(ddof=1):.3f} "
          f"(paired, same seed), in {int(np.sum(diff > 0))} of {len(args.seeds)} seeds")
    (out / "results.json").write_text(json.dumps(summary, indent=1, default=float) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
