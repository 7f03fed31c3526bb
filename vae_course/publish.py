"""Shipping trained models with the package (maintainers; readers use :mod:`vae_course.pretrained`).

``export(run_dir, name)`` scores a finished VAE run and copies it into the package with its
manifest entry; ``train_autoencoder`` / ``continue_autoencoder`` train the shipped
autoencoders and ``export_autoencoder`` records them. Every entry says how the model was made:
its config or command, epochs, wall time, scores, library versions, machine and SHA-256.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from . import autoencoders, cifar, data, losses, metrics, pretrained, runs
from .data import sha256sum


def export(run_dir, name: str, k: int = 1000, examples: int | None = None, note: str = ""):
    """Copy a finished run into the package as pretrained model ``name`` (maintainers only).

    Saves the weights only (the architecture is rebuilt from the config on loading), evaluates
    the test ELBO (analytic KL, all test images) and the importance-sampled NLL with ``k``
    samples (on the first ``examples`` test images, default all), and records them with the
    run's config, wall time, library versions, machine and SHA-256 sums in the manifest.
    """
    import csv
    import time

    run_dir = Path(run_dir)
    config = runs.read_config(run_dir)
    state = runs.read_state(run_dir)
    model = runs.load_chosen(run_dir, config)

    extra = {}
    scored, x, _ = metrics.test_set(model, config)
    if config.dataset == "cifar10" and config.model == "mlp":
        # trained on [0, 1]: its cross-entropy is not a likelihood; recorded beside it
        extra["test_cross_entropy_elbo"] = round(
            float(np.mean(metrics.elbo(model, x.astype("float32") / 255.0))), 2)
    elbo = float(np.mean(metrics.elbo(scored, x)))
    start = time.perf_counter()
    scored_x = data.take(x, slice(0, examples))   # images, or (images, labels)
    nll = float(-np.mean(metrics.log_likelihood(scored, scored_x, k=k)))
    is_seconds = time.perf_counter() - start
    if config.dataset == "cifar10":
        dims = data.dims("cifar10")
        extra.update(test_bpd=round(float(losses.bits_per_dim(-elbo, dims)), 3),
                     is_bpd=round(float(losses.bits_per_dim(nll, dims)), 3),
                     test_kl=round(_mean_kl(model, x, scale=config.model == "mlp"), 2))

    pretrained.DIRECTORY.mkdir(exist_ok=True)
    # weights only: the architecture comes from code and the config (pretrained.build), so
    # every Keras the package accepts reads the file (a whole-model .keras does not)
    files = {"model": f"{name}.weights.h5", "gif": f"{name}.gif", "log": f"{name}.csv"}
    model.save_weights(pretrained.DIRECTORY / files["model"])
    shutil.copy(run_dir / "progress.gif", pretrained.DIRECTORY / files["gif"])
    shutil.copy(run_dir / "log.csv", pretrained.DIRECTORY / files["log"])
    with open(run_dir / "log.csv", newline="") as f:
        last = list(csv.DictReader(f))[-1]

    entry = {
        "kind": "vae",
        "file": files["model"],
        "sha256": sha256sum(pretrained.DIRECTORY / files["model"]),
        "preset": _preset_name(config),
        "config": config.to_dict(),
        "epochs": state["epoch"],
        "train_seconds": round(state["wall_time"]),
        "final_train_elbo": float(last["elbo"]),
        "test_elbo": round(elbo, 2),
        "is_nll": round(nll, 2),
        "is_k": k,
        "is_test_images": data.count(scored_x),
        "is_seconds": round(is_seconds),
        **extra,
        **provenance(),
        "note": note,
        "assets": {key: {"file": files[key], "sha256": sha256sum(pretrained.DIRECTORY / files[key])}
                   for key in ("gif", "log")},
    }
    add_entry(name, entry)
    return entry


def _mean_kl(model, x, scale=False, batch_size=500):
    """Mean KL term (nats) of ``model.elbo_terms`` over ``x`` (uint8 CIFAR images)."""
    from keras import ops

    total = 0.0
    for start in range(0, len(x), batch_size):
        xb = x[start:start + batch_size]
        xb = xb.astype("float32") / 255.0 if scale else xb
        _, kl = model.elbo_terms(xb, model(xb))
        total += float(np.sum(ops.convert_to_numpy(kl)))
    return total / len(x)


def provenance() -> dict:
    """The ``machine`` and ``versions`` entries that record where a model was made."""
    import os
    import platform

    import keras
    import tensorflow as tf

    from . import __version__

    gpu = "GPU" if tf.config.list_physical_devices("GPU") else "no GPU"
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {gpu}",
        "versions": {"vae_course": __version__, "keras": keras.__version__,
                     "tensorflow": tf.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},
    }


def add_entry(name: str, entry: dict):
    """Add or replace manifest entry ``name`` atomically, keeping every other entry."""
    import os

    entries = pretrained.manifest()
    entries[name] = entry
    tmp = pretrained.MANIFEST.with_name(f".manifest.json.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(entries, indent=2, sort_keys=True) + "\n")
    tmp.replace(pretrained.MANIFEST)


def attach_asset(name: str, key: str, source) -> dict:
    """Ship the file ``source`` beside pretrained model ``name`` as its asset ``key`` (e.g. a
    study's results), checksummed in the manifest like the weights; readers get it with
    ``pretrained.asset(name, key)``. Replaces an earlier asset of that key."""
    source = Path(source)
    if key in ("gif", "log") or not key.isidentifier():
        raise ValueError(f"Expected an asset key other than 'gif' and 'log', made of letters, "
                         f"digits and underscores. Received: {key!r}")
    entry = dict(pretrained.info(name))
    filename = f"{name}-{key}{source.suffix}"
    shutil.copy(source, pretrained.DIRECTORY / filename)
    entry["assets"] = {**entry.get("assets", {}),
                       key: {"file": filename,
                             "sha256": sha256sum(pretrained.DIRECTORY / filename)}}
    add_entry(name, entry)
    return entry


def _preset_name(config):
    from .configs import PRESETS

    for preset, cfg in PRESETS.items():
        if cfg.replace(epochs=config.epochs) == config:
            return preset
    return "custom"


def export_autoencoder(model, name, config, epochs, train_seconds, note, x_test=None):
    """Save ``model`` as pretrained ``name`` and add its entry to the manifest atomically.

    Measures ``test_mse_per_image`` (mean summed squared error per MNIST test image) and
    records it with ``config`` (how the model was built and trained), ``epochs``,
    ``train_seconds``, library versions and the file's SHA-256. Existing entries of other
    names are kept as they are.
    """
    if x_test is None:
        (_, _), (x_test, _) = data.load_mnist()
    error = float(np.mean(autoencoders.reconstruction_error(model, x_test)))
    directory = Path(pretrained.DIRECTORY)
    directory.mkdir(exist_ok=True)
    filename = f"{name}.weights.h5"   # weights only, as in export
    model.save_weights(directory / filename)
    entry = {
        "kind": "autoencoder",
        "file": filename,
        "sha256": data.sha256sum(directory / filename),
        "config": dict(config),
        "epochs": int(epochs),
        "train_seconds": round(float(train_seconds)),
        "test_mse_per_image": round(error, 4),
        "test_images": len(x_test),
        **provenance(),
        "note": note,
    }
    add_entry(name, entry)
    return entry


def train_autoencoder(code_size, epochs=30, batch_size=128, optimizer="rmsprop",
                     learning_rate=1e-3, patience=3, validation=5000, seed=0, time_limit=None,
                     export=True):
    """Train the shipped conv autoencoder of ``code_size`` on MNIST and (optionally) export it.

    Uses the first ``60000 - validation`` training images for fitting and the last
    ``validation`` for checkpointing and early stopping; the test set is only used to
    measure the exported model.
    ``python -c "from vae_course import publish; publish.train_autoencoder(30)"``.
    """
    (x_train, _), (x_test, _) = data.load_mnist()
    x = autoencoders.images(x_train)
    model = autoencoders.conv_autoencoder(code_size, seed=seed)
    history = autoencoders.train_autoencoder(model, x[:-validation], x[-validation:], epochs=epochs,
                                batch_size=batch_size, optimizer=optimizer,
                                learning_rate=learning_rate, patience=patience, seed=seed,
                                time_limit=time_limit)
    config = {"model": "conv_autoencoder", "code_size": int(code_size), "upsampling": "nearest",
              "loss": "mse", "optimizer": optimizer, "learning_rate": learning_rate,
              "batch_size": batch_size, "max_epochs": epochs, "patience": patience,
              "time_limit_seconds": time_limit,
              "train_images": len(x) - validation, "validation_images": validation,
              "pixels": "uint8 / 255, in [0, 1], not binarized", "seed": seed,
              "best_epoch": history["best_epoch"],
              "best_val_mse": float(min(history["val_loss"]))}
    if not export:
        return model, history
    note = (f"vae_course.publish.train_autoencoder({code_size}, epochs={epochs}, "
            f"batch_size={batch_size}, optimizer={optimizer!r}, learning_rate={learning_rate}, "
            f"patience={patience}, validation={validation}, seed={seed}, "
            f"time_limit={time_limit})")
    entry = export_autoencoder(model, autoencoders.pretrained_name(code_size), config,
                              epochs=len(history["loss"]), train_seconds=history["seconds"],
                              note=note, x_test=x_test)
    return model, history, entry


def continue_autoencoder(code_size, epochs=10, time_limit=None, export=True):
    """Train the shipped autoencoder of ``code_size`` further, with its recorded recipe.

    The optimizer starts afresh (RMSprop keeps only running averages, rebuilt within a few
    hundred steps). The manifest entry's ``epochs`` and ``train_seconds`` become the totals,
    and its ``note`` gains this call.
    """
    name = autoencoders.pretrained_name(code_size)
    old = pretrained.info(name)
    cfg = old["config"]
    model = pretrained.load(name)
    (x_train, _), (x_test, _) = data.load_mnist()
    x = autoencoders.images(x_train)
    v = cfg["validation_images"]
    history = autoencoders.train_autoencoder(model, x[:-v], x[-v:], epochs=epochs, batch_size=cfg["batch_size"],
                                optimizer=cfg["optimizer"], learning_rate=cfg["learning_rate"],
                                patience=cfg["patience"], seed=cfg["seed"] + old["epochs"],
                                time_limit=time_limit)
    if not export:
        return model, history
    config = {**cfg, "best_val_mse": float(min(history["val_loss"])),
              "continued": cfg.get("continued", []) + [
                  {"after_epochs": old["epochs"], "epochs": len(history["loss"]),
                   "best_epoch": history["best_epoch"], "time_limit_seconds": time_limit}]}
    note = (old["note"] + f"; then vae_course.publish.continue_autoencoder({code_size}, "
            f"epochs={epochs}, time_limit={time_limit})")
    entry = export_autoencoder(model, name, config, epochs=old["epochs"] + len(history["loss"]),
                              train_seconds=old["train_seconds"] + history["seconds"], note=note,
                              x_test=x_test)
    return model, history, entry
