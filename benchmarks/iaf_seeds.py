"""Is the IAF posterior's gain on CIFAR-10 larger than the spread between seeds, and where
does it come from?

1. **Seeds.** Trains the diagonal-Gaussian VAE (preset ``cifar-conv``) and the IAF VAE
   (``cifar-iaf``) with several seeds at one shortened budget: the presets' settings on the
   first ``--train-examples`` training images for ``--epochs`` epochs, the last at a tenth of
   the rate (as the shipped 17-epoch models). It says how the two compare at that budget,
   not at the shipped one.
2. **Decoder x posterior.** For each seed, freezes each trained decoder and fits a *new*
   encoder of each posterior family to it from scratch, with the same budget as the joint
   training: the diagonal encoder on the diagonal model's decoder (the control), the IAF
   encoder on it, and both on the IAF model's decoder. A row of the 2x2 table is one decoder,
   a column one posterior family; every cell's encoder had the same data, epochs and rate,
   so a difference along a row is what the posterior family buys on a fixed decoder and a
   difference down a column is what training with the flow did to the decoder.

Every model is scored on the same test images: the ELBO (``--test-examples`` images, one
draw each) and the importance-sampled bound with ``--k`` draws (the first ``--is-examples``
images). Paired differences are per seed, on the same images.

    python benchmarks/iaf_seeds.py --out runs/iaf-seeds     # resumable: run again to go on

Each joint run is an ordinary run folder (``vae-course evaluate`` works on it); each refit
encoder's weights are saved beside them. The tables are written to ``<out>/results.json``
after every model, so a stopped study keeps what it measured.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

PRESETS = ("cifar-conv", "cifar-iaf")
NAMES = {"cifar-conv": "diagonal", "cifar-iaf": "iaf"}


def t_quantile(p, df):
    """The p-quantile (p >= 0.5) of Student's t with ``df`` degrees of freedom, by integrating
    its density numerically (NumPy only; within 1e-4 of the tables for df >= 1)."""
    x = np.linspace(0.0, 400.0, 4_000_001)
    density = (1.0 + x * x / df) ** (-(df + 1) / 2)
    area = np.concatenate([[0.0], np.cumsum((density[1:] + density[:-1]) / 2 * np.diff(x))])
    tail = df ** ((df + 1) / 2) * 400.0 ** -df / df   # the density's x^-(df+1) beyond 400
    return float(np.interp(p, 0.5 + 0.5 * area / (area[-1] + tail), x))


def summarize(values):
    """Mean, standard deviation over seeds, and a 95% t-interval of the mean."""
    values = np.asarray(values, dtype=float)
    n, mean = len(values), float(values.mean())
    if n < 2:
        return {"mean": mean, "sd": float("nan"), "n": n, "ci95": [float("nan")] * 2}
    sd = float(values.std(ddof=1))
    half = t_quantile(0.975, n - 1) * sd / np.sqrt(n)
    return {"mean": mean, "sd": sd, "n": n, "ci95": [mean - half, mean + half]}


def refit_encoder(decoder_model, preset, seed, args, x_train, path):
    """A fresh encoder (and flow) of ``preset``'s family fitted to ``decoder_model``'s frozen
    decoder with the joint training's budget; its weights are saved to ``path``."""
    import keras

    from vae_course import configs
    from vae_course.factory import build_model

    config = configs.get_preset(preset).replace(seed=seed)
    keras.utils.set_random_seed(10_000 + seed)
    model = build_model(config)
    model(model.example_input(2))
    model.decoder.set_weights(decoder_model.decoder.get_weights())
    model.decoder.trainable = False
    if path.is_file():
        model.load_weights(path)
        return model
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate),
                  steps_per_execution=16)
    for epoch in range(args.epochs):
        cool = epoch >= args.epochs - 1
        model.optimizer.learning_rate.assign(config.learning_rate / (10 if cool else 1))
        model.fit(x_train, batch_size=config.batch_size, epochs=1, shuffle=True, verbose=0)
    model.save_weights(path)
    return model


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="runs/iaf-seeds")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--train-examples", type=int, default=10_000)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--test-examples", type=int, default=2_000)
    p.add_argument("--k", type=int, default=100, help="importance samples of the IS bound")
    p.add_argument("--is-examples", type=int, default=500)
    p.add_argument("--no-refit", action="store_true", help="the seed table only")
    args = p.parse_args(argv)

    from vae_course import cifar, configs, data, losses, metrics, publish
    from vae_course.train import train

    (x_train, _), (x_test, _) = data.load_cifar10()
    x_train, x_test = x_train[:args.train_examples], x_test[:args.test_examples]
    out = Path(args.out)
    (out / "refit").mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    scores = results.setdefault("scores", {})

    def bpd(nll):
        return float(losses.bits_per_dim(nll, cifar.DIMS))

    def score(key, model, seconds):
        if key not in scores:
            elbo = metrics.elbo(model, x_test, seed=0)
            bound = metrics.log_likelihood(model, x_test[:args.is_examples], k=args.k, seed=0)
            scores[key] = {"elbo_bpd": bpd(-np.mean(elbo)), "is_bpd": bpd(-np.mean(bound)),
                           "elbo_bpd_is_images": bpd(-np.mean(elbo[:args.is_examples])),
                           "seconds": seconds}
            write()
        s = scores[key]
        print(f"{key:34s} ELBO {s['elbo_bpd']:.3f}  IS(k={args.k}) {s['is_bpd']:.3f} bits/dim"
              f"  ({s['seconds']} s)", flush=True)

    def write():
        results["budget"] = {"train_examples": args.train_examples, "epochs": args.epochs,
                             "lr_cooldown": 1, "test_examples": args.test_examples,
                             "k": args.k, "is_examples": args.is_examples}
        results["seeds"] = args.seeds
        results["command"] = " ".join(["python", "benchmarks/iaf_seeds.py", *sys.argv[1:]])
        results.update(publish.provenance())
        path.write_text(json.dumps(results, indent=1) + "\n")

    trained = {}
    for seed in args.seeds:
        for preset in PRESETS:
            config = configs.get_preset(preset).replace(
                seed=seed, epochs=args.epochs, lr_cooldown=1,
                train_examples=args.train_examples, test_examples=args.test_examples)
            start = time.perf_counter()
            model, _ = train(config, out / f"{preset}-seed{seed}", verbose=0)
            trained[preset, seed] = model
            score(f"joint/{NAMES[preset]}/{seed}", model, round(time.perf_counter() - start))
    table(results, args.seeds, "joint")
    if args.no_refit:
        return 0
    for seed in args.seeds:
        for decoder_preset in PRESETS:
            for preset in PRESETS:
                key = f"refit/{NAMES[decoder_preset]}-decoder/{NAMES[preset]}/{seed}"
                start = time.perf_counter()
                model = refit_encoder(trained[decoder_preset, seed], preset, seed, args, x_train,
                                      out / "refit" / (key.replace("/", "_") + ".weights.h5"))
                score(key, model, round(time.perf_counter() - start))
        table(results, [s for s in args.seeds if all(
            f"refit/{d}-decoder/{q}/{s}" in scores for d in NAMES.values()
            for q in NAMES.values())], "refit")
    write()
    return 0


def table(results, seeds, kind):
    """Means and spreads over seeds, and the paired differences, into ``results[kind]``."""
    if not seeds:
        return
    scores = results["scores"]
    cells = ([("diagonal", "joint/diagonal"), ("iaf", "joint/iaf")] if kind == "joint" else
             [(f"{d}-decoder/{q}", f"refit/{d}-decoder/{q}")
              for d in ("diagonal", "iaf") for q in ("diagonal", "iaf")])
    summary = {"seeds": seeds}
    for metric in ("elbo_bpd", "is_bpd"):
        values = {name: [scores[f"{key}/{s}"][metric] for s in seeds] for name, key in cells}
        summary[metric] = {name: summarize(v) for name, v in values.items()}
        if kind == "joint":
            gain = np.subtract(values["diagonal"], values["iaf"])
            summary[metric]["iaf_gain"] = {**summarize(gain), "per_seed": gain.tolist(),
                                           "iaf_better_in": int(np.sum(gain > 0))}
        else:
            # along a row: the posterior family on a fixed decoder; down a column: the decoder
            for d in ("diagonal", "iaf"):
                gain = np.subtract(values[f"{d}-decoder/diagonal"], values[f"{d}-decoder/iaf"])
                summary[metric][f"posterior_gain_on_{d}_decoder"] = {
                    **summarize(gain), "per_seed": gain.tolist()}
            for q in ("diagonal", "iaf"):
                gain = np.subtract(values[f"diagonal-decoder/{q}"], values[f"iaf-decoder/{q}"])
                summary[metric][f"decoder_gain_with_{q}_posterior"] = {
                    **summarize(gain), "per_seed": gain.tolist()}
        for name, s in summary[metric].items():
            print(f"  {kind} {metric} {name:32s} {s['mean']:+.3f} ± {s['sd']:.3f}", flush=True)
    results[kind] = summary


if __name__ == "__main__":
    sys.exit(main())
