"""Command line: ``python -m vae_course train <preset> [--epochs N] [--latent-dim D] [--out DIR]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _parser():
    from .configs import PRESETS

    p = argparse.ArgumentParser(prog="python -m vae_course", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train (or resume) a VAE into a run directory")
    t.add_argument("preset", help=f"one of: {', '.join(PRESETS)}")
    t.add_argument("--out", default=None, help="run directory (default: runs/<preset>)")
    t.add_argument("--epochs", type=int)
    t.add_argument("--latent-dim", type=int)
    t.add_argument("--batch-size", type=int)
    t.add_argument("--learning-rate", type=float)
    t.add_argument("--lr-cooldown", type=int,
                   help="train the last N epochs at a tenth of the learning rate")
    t.add_argument("--kl", choices=["analytic", "monte_carlo"])
    t.add_argument("--binarization", choices=["static", "dynamic"])
    t.add_argument("--seed", type=int)
    t.add_argument("--jit", dest="jit_compile", choices=["auto", "on", "off"],
                   help="XLA compilation; 'auto' uses it on GPUs only")
    t.add_argument("--mixed-precision", action="store_true", default=None,
                   help="mixed_float16 compute (for GPUs); losses stay float32")
    t.add_argument("--deterministic", action="store_true", default=None)
    t.add_argument("--strategy", choices=["default", "mirrored"],
                   help="'mirrored': tf.distribute.MirroredStrategy over all GPUs, the global "
                        "batch split across them")
    t.add_argument("--steps-per-execution", type=int,
                   help="training steps per compiled call (default 16; 1 with --strategy "
                        "mirrored and under the torch backend)")
    t.add_argument("--quiet", action="store_true")

    e = sub.add_parser("evaluate", help="test ELBO and importance-sampled NLL of a run or a "
                                        "pretrained model")
    e.add_argument("source", help="a run directory or a pretrained model name")
    e.add_argument("--k", type=int, default=1000, help="importance samples (default 1000)")
    e.add_argument("--examples", type=int, default=None, help="first N test images (default all)")

    x = sub.add_parser("export-pretrained", help="(maintainers) ship a finished run as a "
                                                 "pretrained model in the package")
    x.add_argument("run_dir")
    x.add_argument("name")
    x.add_argument("--k", type=int, default=1000)
    x.add_argument("--examples", type=int, default=None,
                   help="importance-sample the first N test images (default all)")
    x.add_argument("--note", default="")

    sub.add_parser("presets", help="list the training presets")
    sub.add_parser("pretrained", help="list the pretrained models")
    return p


def main(argv=None):
    args = _parser().parse_args(argv)
    from .data import DataUnavailableError
    from .pretrained import PretrainedError
    from .runs import CheckpointError, RunConflictError
    from .train import TrainingDivergedError

    try:
        return _run(args)
    except (ValueError, DataUnavailableError, PretrainedError, RunConflictError, CheckpointError,
            TrainingDivergedError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _run(args):
    from . import configs

    if args.command == "presets":
        for name, cfg in configs.PRESETS.items():
            print(f"{name:12s} {cfg.description}")
        return 0
    if args.command == "pretrained":
        from . import pretrained

        for name in pretrained.names():
            entry = pretrained.info(name)
            if entry.get("kind") == "autoencoder":
                score = f"test squared error {entry['test_mse_per_image']:.2f} per image"
            else:
                score = f"test ELBO {entry['test_elbo']:.2f}  IS-NLL {entry['is_nll']:.2f}"
                if "test_bpd" in entry:
                    score += f"  ({entry['test_bpd']:.3f} / {entry['is_bpd']:.3f} bits/dim)"
            print(f"{name:28s} {entry.get('kind', 'vae'):12s} {score}")
        return 0
    if args.command == "train":
        from .train import train

        overrides = {k: v for k, v in vars(args).items()
                     if k not in ("command", "preset", "out", "quiet") and v is not None}
        config = configs.get_preset(args.preset).replace(**overrides)
        out = args.out or f"runs/{args.preset}"
        try:
            train(config, out, verbose=2 if args.quiet else "auto")
        except KeyboardInterrupt:
            from .runs import finished_epochs

            done = finished_epochs(out)
            print(f"\ninterrupted: {out} holds the checkpoint after epoch {done}; run the same "
                  f"command again to resume from there.", file=sys.stderr)
            return 130
        print(f"run directory: {out}")
        return 0
    if args.command == "evaluate":
        return _evaluate(args)
    if args.command == "export-pretrained":
        import json

        from . import publish

        entry = publish.export(args.run_dir, args.name, k=args.k, examples=args.examples,
                                 note=args.note)
        print(json.dumps(entry, indent=2))
        return 0
    return 2


def _evaluate(args):
    from . import metrics, pretrained, runs
    from .configs import TrainConfig

    if args.k < 1:
        raise ValueError(f"Expected --k >= 1 importance samples. Received: --k {args.k}")
    if args.examples is not None and args.examples < 1:
        raise ValueError(f"Expected --examples >= 1 (the first N test images). "
                         f"Received: --examples {args.examples}")
    if (Path(args.source) / "config.json").exists():
        config = runs.read_config(args.source)
        model = runs.load_checkpoint(args.source, config, compile=False)
    else:
        entry = pretrained.info(args.source)
        if entry.get("kind") != "vae":
            raise ValueError(
                f"{args.source!r} is an autoencoder: it has no likelihood, so there is no ELBO "
                f"to evaluate. Its test reconstruction error is in the manifest "
                f"(python -m vae_course pretrained); recompute it with "
                f"vae_course.autoencoders.reconstruction_error(pretrained.load({args.source!r}), x).")
        model = pretrained.load(args.source)
        config = TrainConfig.from_dict(entry["config"])
    r = metrics.evaluate(model, config, k=args.k, examples=args.examples)
    print(f"test images: {r['images']} ({r['what']})")
    print(f"test ELBO: {r['test_elbo']:.2f} nats")
    print(f"importance-sampled NLL (K={r['k']}): {r['is_nll']:.2f} nats")
    if "test_bpd" in r:
        print(f"bits/dim: ELBO {r['test_bpd']:.3f}, importance-sampled {r['is_bpd']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
