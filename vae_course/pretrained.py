"""Pretrained models shipped with the package, each checked against its SHA-256 before loading.

``load(name)`` returns a ready :class:`vae_course.models.VAE`; ``info(name)`` its manifest
entry (preset, epochs, test ELBO, IS-NLL, wall time, library versions, checksum); ``asset(name,
key)`` the path of a shipped extra (``"gif"`` of per-epoch images, ``"log"`` CSV).
"""

from __future__ import annotations

import json
from pathlib import Path

from .data import sha256sum

DIRECTORY = Path(__file__).with_name("pretrained")
MANIFEST = DIRECTORY / "manifest.json"


class PretrainedError(ValueError):
    """A pretrained file is missing, altered or of the wrong kind."""


def manifest() -> dict:
    return json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}


def names() -> list[str]:
    return sorted(manifest())


def info(name: str) -> dict:
    entries = manifest()
    if name not in entries:
        raise PretrainedError(f"Unknown pretrained model {name!r}. "
                              f"Valid names: {', '.join(sorted(entries)) or '(none shipped)'}.")
    return entries[name]


def _checked(name: str, filename: str, sha256: str) -> Path:
    path = DIRECTORY / filename
    if not path.exists():
        raise PretrainedError(f"Pretrained file {path} for {name!r} is missing; reinstall "
                              f"vae-course to restore it.")
    actual = sha256sum(path)
    if actual != sha256:
        raise PretrainedError(f"Pretrained file {path} for {name!r} is altered or truncated: "
                              f"expected SHA-256 {sha256}, received {actual}. Reinstall vae-course.")
    return path


def asset(name: str, key: str) -> Path:
    """Path of a checked extra file of a pretrained model: ``"gif"`` or ``"log"``."""
    entry = info(name)
    assets = entry.get("assets", {})
    if key not in assets:
        raise PretrainedError(f"Pretrained model {name!r} has no asset {key!r}. "
                              f"Available: {', '.join(sorted(assets))}.")
    return _checked(name, assets[key]["file"], assets[key]["sha256"])


def load(name: str):
    """Load pretrained model ``name`` (safe mode: no code from the file is executed)."""
    import keras

    from . import flows, iaf, layers, models  # noqa: F401  (registers the custom classes)

    entry = info(name)
    path = _checked(name, entry["file"], entry["sha256"])
    return keras.saving.load_model(path, compile=False, safe_mode=True)


def export(run_dir, name: str, k: int = 1000, examples: int | None = None, note: str = ""):
    """Copy a finished run into the package as pretrained model ``name`` (maintainers only).

    Saves the model without optimizer state, evaluates the test ELBO (analytic KL, all test
    images) and the importance-sampled NLL with ``k`` samples (on the first ``examples`` test
    images, default all), and records them with the run's config, wall
    time, library versions, machine and SHA-256 sums in the manifest.
    """
    import csv
    import shutil
    import time

    import keras
    import numpy as np

    from . import data, metrics
    from .configs import TrainConfig

    run_dir = Path(run_dir)
    config = TrainConfig.from_dict(json.loads((run_dir / "config.json").read_text()))
    state = json.loads((run_dir / "state.json").read_text())
    from .train import load_checkpoint

    model = load_checkpoint(run_dir, config, compile=False)

    extra = {}
    if config.dataset == "cifar10":
        from .iaf import DIMS, Bernoulli256

        (_, _), (x, _) = data.load_cifar10()
        scored = model
        if config.model == "mlp":  # trained on [0, 1]: its cross-entropy is not a likelihood
            extra["test_cross_entropy_elbo"] = round(
                float(np.mean(metrics.elbo(model, x.astype("float32") / 255.0))), 2)
            scored = Bernoulli256(model)
    else:
        (_, _), (x_test, _) = data.load_mnist()
        x = data.binarize(x_test, config.binarization)
        scored = model
    elbo = float(np.mean(metrics.elbo(scored, x)))
    start = time.perf_counter()
    nll = float(-np.mean(metrics.log_likelihood(scored, x[:examples], k=k)))
    is_seconds = time.perf_counter() - start
    if config.dataset == "cifar10":
        extra.update(test_bpd=round(float(metrics.bits_per_dim(-elbo, DIMS)), 3),
                     is_bpd=round(float(metrics.bits_per_dim(nll, DIMS)), 3),
                     test_kl=round(_mean_kl(model, x, scale=config.model == "mlp"), 2))

    DIRECTORY.mkdir(exist_ok=True)
    files = {"model": f"{name}.keras", "gif": f"{name}.gif", "log": f"{name}.csv"}
    model.save(DIRECTORY / files["model"])
    shutil.copy(run_dir / "progress.gif", DIRECTORY / files["gif"])
    shutil.copy(run_dir / "log.csv", DIRECTORY / files["log"])
    with open(run_dir / "log.csv", newline="") as f:
        last = list(csv.DictReader(f))[-1]

    entry = {
        "kind": "vae",
        "file": files["model"],
        "sha256": sha256sum(DIRECTORY / files["model"]),
        "preset": _preset_name(config),
        "config": config.to_dict(),
        "epochs": state["epoch"],
        "train_seconds": round(state["wall_time"]),
        "final_train_elbo": float(last["elbo"]),
        "test_elbo": round(elbo, 2),
        "is_nll": round(nll, 2),
        "is_k": k,
        "is_test_images": len(x[:examples]),
        "is_seconds": round(is_seconds),
        **extra,
        **provenance(),
        "note": note,
        "assets": {key: {"file": files[key], "sha256": sha256sum(DIRECTORY / files[key])}
                   for key in ("gif", "log")},
    }
    add_entry(name, entry)
    return entry


def _mean_kl(model, x, scale=False, batch_size=500):
    """Mean KL term (nats) of ``model.elbo_terms`` over ``x`` (uint8 CIFAR images)."""
    import numpy as np
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
    import numpy as np
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

    entries = manifest()
    entries[name] = entry
    tmp = MANIFEST.with_name(f".manifest.json.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(entries, indent=2, sort_keys=True) + "\n")
    tmp.replace(MANIFEST)


def _preset_name(config):
    from .configs import PRESETS

    for preset, cfg in PRESETS.items():
        if cfg.replace(epochs=config.epochs) == config:
            return preset
    return "custom"
