"""Run directories: the files a training run owns, and the checks that protect them.

A run directory holds::

    config.json        the TrainConfig (a different config in the same directory is refused)
    checkpoint.keras   model + optimizer state after the last finished epoch (atomic writes)
    state.json         {"epoch": finished epochs, "wall_time": seconds, "checkpoint_sha256": ...}
    log.csv            per epoch: train/validation elbo, reconstruction, kl, loss, time
    images/epoch_NNN.png   test reconstructions and samples from a fixed z, every epoch
    progress.gif       those frames as an animation, written at the end

Nothing here trains; :func:`vae_course.train.train` uses these to start, resume and record.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from . import data
from .configs import TrainConfig

CHECKPOINT = "checkpoint.keras"


class RunConflictError(RuntimeError):
    """The output directory holds something other than this run."""


class CheckpointError(RuntimeError):
    """A run's checkpoint is missing, altered, truncated or of another model."""


def atomic_write_text(path: Path, text: str):
    """Write ``text`` to ``path`` through a temporary file and a rename (never half a file)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def pending_checkpoint(out_dir: Path) -> Path:
    """Where the next checkpoint is written before it replaces the last one (the name keeps
    the .keras suffix Keras insists on)."""
    return out_dir / f".tmp-{CHECKPOINT}"


def config_diff(old: dict, new: dict):
    """What differs between two configs, ignoring what may change on resume."""
    # Run length, its schedule and how steps are executed may change on resume; everything
    # else must match.
    keys = sorted((set(old) | set(new)) - {"epochs", "lr_cooldown", "description", "strategy",
                                           "steps_per_execution", "jit_compile"})
    return [f"{k}: {old.get(k)!r} in the directory, {new.get(k)!r} now"
            for k in keys if old.get(k) != new.get(k)]


def prepare_run_dir(out_dir: Path, config: TrainConfig) -> int:
    """Create or check ``out_dir``; return the number of epochs already finished there."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg_path = out_dir / "config.json"
    if cfg_path.exists():
        old = json.loads(cfg_path.read_text())
        diff = config_diff(old, config.to_dict())
        if diff:
            raise RunConflictError(
                f"{out_dir} holds a run with a different configuration ({'; '.join(diff)}). "
                f"Nothing was changed. Use another --out directory, or the same settings to resume.")
    elif any(p for p in out_dir.iterdir() if not p.name.startswith(".")):
        raise RunConflictError(
            f"{out_dir} is not empty and is not a vae_course run directory (no config.json). "
            f"Nothing was changed. Choose an empty or new --out directory.")
    done = finished_epochs(out_dir)
    if done:
        verify_checkpoint(out_dir)
    atomic_write_text(cfg_path, json.dumps(config.to_dict(), indent=2) + "\n")
    return done


def read_config(out_dir) -> TrainConfig:
    """The :class:`TrainConfig` a run directory was trained with."""
    return TrainConfig.from_dict(json.loads((Path(out_dir) / "config.json").read_text()))


def read_state(out_dir) -> dict:
    """``state.json`` of a run directory ({} before the first finished epoch)."""
    state = Path(out_dir) / "state.json"
    return json.loads(state.read_text()) if state.exists() else {}


def finished_epochs(out_dir) -> int:
    """Epochs whose checkpoint a run directory holds (0 before the first one)."""
    return int(read_state(out_dir).get("epoch", 0))


def verify_checkpoint(out_dir) -> Path:
    """The run's checkpoint, checked against the SHA-256 that ``state.json`` recorded with it.

    A missing, truncated or altered checkpoint raises :class:`CheckpointError` and nothing in
    the directory is changed: a run is never silently restarted over a reader's epochs.
    """
    out_dir = Path(out_dir)
    path = out_dir / CHECKPOINT
    state = json.loads((out_dir / "state.json").read_text())
    expected = state.get("checkpoint_sha256")
    pending = pending_checkpoint(out_dir)
    if expected and pending.exists() and data.sha256sum(pending) == expected:
        os.replace(pending, path)   # a crash after state.json named it, before the rename
    if not path.exists():
        raise CheckpointError(
            f"{path} is missing, but {out_dir / 'state.json'} records {state['epoch']} finished "
            f"epoch(s). Nothing was changed. Restore the checkpoint to resume, or train into a "
            f"new --out directory.")
    actual = data.sha256sum(path)
    if expected and actual != expected:
        raise CheckpointError(
            f"{path} is altered or truncated: expected SHA-256 {expected} (recorded in "
            f"state.json after epoch {state['epoch']}), received {actual}. Nothing was changed. "
            f"Restore the file to resume, or train into a new --out directory.")
    return path


def load_checkpoint(out_dir, config: TrainConfig | None = None, compile: bool = True):
    """Load a run's verified checkpoint (safe mode); a checkpoint of another model is refused.

    ``compile=False`` leaves the optimizer state out (for evaluation and export).
    """
    import keras

    from .factory import build_model, register_models

    register_models()
    path = verify_checkpoint(out_dir)
    try:
        model = keras.saving.load_model(path, compile=compile, safe_mode=True)
    except Exception as err:  # a zip/HDF5/config error from Keras, reworded
        raise CheckpointError(f"{path} could not be loaded as a vae_course model "
                              f"({type(err).__name__}: {err}). Nothing was changed.") from err
    if config is not None:
        # The architecture is the encoder and decoder (built on creation) and the number of
        # flow steps (whose layers build on first call).
        expected = build_model(config)

        def signature(m):
            nets = [tuple(w.shape) for net in (m.encoder, m.decoder) for w in net.weights]
            return nets + [("flow_steps", getattr(m, "flow_steps", 0))]

        got, want = signature(model), signature(expected)
        if type(model) is not type(expected) or got != want:
            raise CheckpointError(
                f"{path} holds a different architecture than config.json describes (expected "
                f"{type(expected).__name__} with {len(want)} weight tensors, received "
                f"{type(model).__name__} with {len(got)}). Nothing was changed.")
    return model
