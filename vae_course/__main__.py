"""Command line: ``python -m vae_course train <preset> [--epochs N] [--latent-dim D] [--out DIR]``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# TensorFlow's C++ INFO and WARNING logs stay out of the command line's output (set before
# anything imports TensorFlow; an explicit setting wins).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


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
    t.add_argument("--iwae-samples", type=int,
                   help="train on the importance-weighted bound with K draws per image "
                        "(default 1: the ELBO)")
    t.add_argument("--seed", type=int)
    t.add_argument("--validation-examples", type=int,
                   help="hold out the last N training images for validation (the val_* "
                        "columns; default 0: the test set is watched, for monitoring only)")
    t.add_argument("--patience", type=int,
                   help="early stopping: stop after N epochs without a better validation ELBO "
                        "and keep the best epoch (needs --validation-examples)")
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
    t.add_argument("--tensorboard", action="store_true",
                   help="also write Keras TensorBoard logs into <out>/tensorboard")
    # Run every check (arguments, the folder, the run in it, its checkpoint, the data, the
    # model) and stop where the first byte would be written (the tests' dry run).
    t.add_argument("--check-only", action="store_true", help=argparse.SUPPRESS)

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
    from ._console import quiet_tensorflow_import

    quiet_tensorflow_import()   # its start-up lines, which TF_CPP_MIN_LOG_LEVEL does not reach
    from .data import DataUnavailableError
    from .pretrained import PretrainedError
    from .runs import CheckpointError, OutputPathError, RunConflictError, RunFileError

    # The package's refusals: each message names the argument or file, what was expected and
    # received, and what to do. (ValueError covers the config and argument checks, and
    # ChecksumError, PretrainedError and RunFileError, which derive from it.)
    refusals = (ValueError, DataUnavailableError, PretrainedError, RunConflictError,
                CheckpointError, RunFileError, OutputPathError)
    if args.command == "train":
        from .train import TrainingDivergedError

        refusals += (TrainingDivergedError,)
    try:
        return _run(args)
    except refusals as err:
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
                     if k not in ("command", "preset", "out", "quiet", "check_only",
                                  "tensorboard")
                     and v is not None}
        config = configs.get_preset(args.preset).replace(**overrides)
        out = args.out or f"runs/{args.preset}"
        try:
            train(config, out, verbose=2 if args.quiet else "auto", check_only=args.check_only,
                  tensorboard=args.tensorboard)
        except KeyboardInterrupt:
            from .runs import finished_epochs

            try:
                done = f"the checkpoint after epoch {finished_epochs(out)}"
            except Exception:   # noqa: BLE001  (the message below matters more)
                done = "its last checkpoint"
            print(f"\ninterrupted: {out} holds {done}; run the same command again to resume "
                  f"from there.", file=sys.stderr)
            return 130
        if args.check_only:
            print(f"checked: {out} and every argument; nothing was written")
        else:
            print(f"run directory: {out}")
        return 0
    if args.command == "evaluate":
        return _evaluate(args)
    if args.command == "export-pretrained":
        import json

        from . import publish

        _check_scoring(args)

        entry = publish.export(args.run_dir, args.name, k=args.k, examples=args.examples,
                                 note=args.note)
        print(json.dumps(entry, indent=2))
        return 0
    return 2


def _check_scoring(args):
    if not 1 <= args.k <= 1_000_000:
        raise ValueError(f"Expected --k, the importance samples per image, in [1, 1000000]. "
                         f"Received: --k {args.k}")
    if args.examples is not None and args.examples < 1:
        raise ValueError(f"Expected --examples >= 1 (the first N test images), or no "
                         f"--examples for all. Received: --examples {args.examples}")


def _evaluate(args):
    from . import metrics, pretrained, runs
    from .configs import TrainConfig

    _check_scoring(args)
    source = Path(args.source)
    if "\0" not in args.source and source.exists() and not source.is_dir():
        raise ValueError(f"Expected a run folder or a pretrained model name. Received "
                         f"{args.source}, which is a file.")
    if "\0" not in args.source and source.is_dir():
        config = runs.read_config(args.source)   # refuses a folder without config.json
        model = runs.load_chosen(args.source, config)
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
    from ._console import evaluate_with_progress

    # metrics.evaluate, with a progress bar and the time left on stderr
    r = evaluate_with_progress(model, config, k=args.k, examples=args.examples)
    print(f"test images: {r['images']} ({r['what']})")
    print(f"test ELBO: {r['test_elbo']:.2f} nats")
    print(f"importance-sampled NLL (K={r['k']}): {r['is_nll']:.2f} nats")
    if "test_bpd" in r:
        print(f"bits/dim: ELBO {r['test_bpd']:.3f}, importance-sampled {r['is_bpd']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
