"""Run directories: the files a training run owns, and the checks that protect them.

A run directory holds::

    config.json        the TrainConfig (a different config in the same directory is refused)
    checkpoint.keras   model + optimizer state after the last finished epoch (atomic writes)
    state.json         {"epoch": finished epochs, "wall_time": seconds, "checkpoint_sha256": ...}
                       (with early stopping also "best_epoch", "best_sha256", "stopped_early")
    best.weights.h5    with early stopping: the weights of the best validation epoch so far
    log.csv            per epoch: train and held-out elbo, reconstruction, kl, loss, time; the
                       held-out (val_*) columns are the validation split when the config has
                       one, else the test set, for monitoring only (nothing is chosen on it);
                       a run with iwae_samples > 1 trains on the IWAE bound, and its loss
                       columns are minus that bound (elbo, reconstruction, kl from its draws)
    images/epoch_NNN.png   test reconstructions and samples from a fixed z, every epoch
    progress.gif       those frames as an animation, written at the end
    .lock              while a run is alive: its PID, under an exclusive flock

One run per folder: :func:`claim` takes the lock (the kernel's: a killed run leaves the folder
free) and checks the folder and the run in it, reading only; a refused run leaves every file as
it was. Only ``commit()`` writes. Temporary files carry the writer's process ID.
Nothing here trains; :func:`vae_course.train.train` uses these to start, resume and record.
"""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path

from . import data
from .configs import TrainConfig
from .locks import (LOCK, OutputPathError, RunBusyError,  # noqa: F401  (runs.RunBusyError)
                    RunConflictError, RunLock)

CHECKPOINT = "checkpoint.keras"
BEST = "best.weights.h5"
# What a run writes in a folder before its config.json: the lock and temporary files.
_TEMPORARY = re.compile(r"\.(config\.json|state\.json|log\.csv|progress\.gif)(\.\d+)?\.tmp"
                        r"|\.tmp-(\d+-)?(checkpoint\.keras|best\.weights\.h5)")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class RunFileError(ValueError):
    """A run's config.json, state.json or log.csv is unreadable or not what a run writes."""


class CheckpointError(RuntimeError):
    """A run's checkpoint is missing, altered, truncated or of another model."""


def temporary(path: Path) -> Path:
    """The temporary name ``path`` is written under before its rename (unique per process)."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def atomic_write_text(path: Path, text: str):
    """Write ``text`` to ``path`` through a temporary file and a rename (never half a file)."""
    tmp = temporary(path)
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def pending_best(out_dir: Path) -> Path:
    """Where this process writes new best weights before they replace the old ones."""
    return Path(out_dir) / f".tmp-{os.getpid()}-{BEST}"


def pending_checkpoint(out_dir: Path) -> Path:
    """Where this process writes the next checkpoint before it replaces the last one (with the
    .keras suffix Keras insists on); after a crash, :func:`verify_checkpoint` finds it by the
    SHA-256 that state.json recorded before the rename."""
    return Path(out_dir) / f".tmp-{os.getpid()}-{CHECKPOINT}"


# -- one run per folder (the lock: vae_course.locks) -----------------------------------------
def _make_dirs(out_dir: Path) -> list[Path]:
    """Create ``out_dir`` and its missing parents; return those created (newest last)."""
    missing, p = [], out_dir
    if "\0" in str(out_dir):
        raise OutputPathError(f"Expected --out to be a path. Received {str(out_dir)!r}.")
    while not p.exists() and not p.is_symlink():
        missing.append(p)
        p = p.parent
    if not p.is_dir():
        where = "is a file" if p == out_dir else f"lies under {p}, which is a file"
        raise OutputPathError(f"Expected --out (the run folder) to be a folder. Received "
                              f"{out_dir}, which {where}. Nothing was changed. Choose another "
                              f"--out path.")
    created = []
    try:
        for d in reversed(missing):
            d.mkdir()
            created.append(d)
        if not os.access(out_dir, os.W_OK | os.X_OK):
            raise PermissionError(f"{out_dir} is read-only for this user")
    except OSError as err:
        _remove_dirs(created)
        raise OutputPathError(f"Cannot write to the run folder --out {out_dir} ({err}). Nothing "
                              f"was changed. Choose a folder you can write to.") from err
    return created


def _remove_dirs(created):
    for d in reversed(created):
        try:
            d.rmdir()
        except OSError:   # no longer empty: someone else's now
            pass


class claim:
    """Lock ``out_dir`` for one run of ``config`` and check it, writing nothing::

        with claim(out_dir, config) as run:   # run.done: finished epochs; refusals raise
            ...                               # every other check (data, model)
            run.commit()                      # from here on the folder is written

    Leaving the block uncommitted (refused, interrupted, or only checked) restores the
    folder and removes the folders it made.
    """

    def __init__(self, out_dir, config: TrainConfig):
        if not isinstance(config, TrainConfig):
            raise TypeError(f"Expected config to be a vae_course.configs.TrainConfig. Received "
                            f"{type(config).__name__}.")
        self.out_dir, self.config, self.committed = Path(out_dir), config, False
        self.lock, self.created = RunLock(self.out_dir), []

    def __enter__(self):
        try:
            self.created = _make_dirs(self.out_dir)
            self.lock.acquire()
            self.done, self.checkpoint = check_run_dir(self.out_dir, self.config)
        except BaseException:
            self.__exit__()
            raise
        return self

    def commit(self):
        """Complete a checkpoint whose rename a crash interrupted, remove earlier crashes'
        temporary files, write config.json."""
        if self.checkpoint is not None and self.checkpoint.name != CHECKPOINT:
            os.replace(self.checkpoint, self.out_dir / CHECKPOINT)
        for p in self.out_dir.iterdir():
            if _TEMPORARY.fullmatch(p.name):
                p.unlink(missing_ok=True)
        atomic_write_text(self.out_dir / "config.json",
                          json.dumps(self.config.to_dict(), indent=2) + "\n")
        self.committed = True

    def __exit__(self, *exc):
        self.lock.release(restore=not self.committed)
        if not self.committed:
            _remove_dirs(self.created)


# -- the files of a run ---------------------------------------------------------------------
def config_diff(old: dict, new: dict):
    """What differs between two configs, ignoring what may change on resume (run length, its
    schedule and how steps are executed)."""
    keys = sorted((set(old) | set(new)) - {"epochs", "lr_cooldown", "description", "strategy",
                                           "steps_per_execution", "jit_compile"})
    return [f"{k}: {old.get(k)!r} in the directory, {new.get(k)!r} now"
            for k in keys if old.get(k) != new.get(k)]


def _fix(path: Path) -> str:
    return (f"Nothing was changed. Restore {path.name} from a backup, or train into a new "
            f"--out folder.")


def _read_json(path: Path, expected: str):
    try:
        value = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as err:
        raise RunFileError(f"{path} is not UTF-8 text ({err.reason} at byte {err.start}): "
                           f"expected {expected}. {_fix(path)}") from None
    except json.JSONDecodeError as err:
        raise RunFileError(f"{path} is not valid JSON ({err.msg}, line {err.lineno} column "
                           f"{err.colno}): expected {expected}. {_fix(path)}") from None
    except OSError as err:
        raise RunFileError(f"{path} could not be read ({err.strerror or err}): expected "
                           f"{expected}. {_fix(path)}") from None
    if not isinstance(value, dict):
        raise RunFileError(f"{path} holds a JSON {type(value).__name__}: expected {expected} "
                           f"(a JSON object). {_fix(path)}")
    return value


def read_config(out_dir) -> TrainConfig:
    """The :class:`TrainConfig` a run directory was trained with."""
    path = Path(out_dir) / "config.json"
    if not path.is_file():
        raise RunFileError(f"{out_dir} is not a vae_course run folder: it has no config.json. "
                           f"Expected a folder that `python -m vae_course train` wrote.")
    try:
        return TrainConfig.from_dict(_read_json(path, "the TrainConfig a run writes"))
    except RunFileError:
        raise
    except (TypeError, ValueError) as err:
        raise RunFileError(f"{path} is not a vae_course run configuration: {err} "
                           f"{_fix(path)}") from None


def read_state(out_dir) -> dict:
    """``state.json`` of a run directory ({} before the first finished epoch), checked: the
    epoch count, and for a finished epoch the checkpoint's SHA-256."""
    path = Path(out_dir) / "state.json"
    if not path.exists():
        return {}
    expected = '{"epoch": N, "wall_time": seconds, "checkpoint_sha256": 64 hex digits}'
    state = _read_json(path, expected)
    epoch, wall = state.get("epoch", 0), state.get("wall_time", 0.0)
    for key, value, ok in (("epoch", epoch, isinstance(epoch, int) and epoch >= 0),
                           ("wall_time", wall, isinstance(wall, (int, float)) and wall >= 0)):
        if not ok or isinstance(value, bool):
            raise RunFileError(f"{path}: expected {expected}. Received {key}={value!r}. "
                               f"{_fix(path)}")
    sha = state.get("checkpoint_sha256")
    if epoch and not (isinstance(sha, str) and _SHA256.fullmatch(sha)):
        raise CheckpointError(
            f"{path} records {epoch} finished epoch(s) but no valid checkpoint_sha256 (expected "
            f"64 hexadecimal digits, received {sha!r}), so {CHECKPOINT} cannot be checked. "
            f"{_fix(path)}")
    best = state.get("best_epoch")
    if best is not None and not (isinstance(best, int) and not isinstance(best, bool)
                                 and 1 <= best <= epoch):
        raise RunFileError(f"{path}: expected best_epoch an integer in [1, {epoch}] (a "
                           f"finished epoch). Received best_epoch={best!r}. {_fix(path)}")
    return state


def finished_epochs(out_dir) -> int:
    """Epochs whose checkpoint a run directory holds (0 before the first one)."""
    return int(read_state(out_dir).get("epoch", 0))


def read_log(out_dir, finished: int | None = None) -> list[dict]:
    """The rows of ``log.csv`` ([] without one); with ``finished``, only its first epochs."""
    path = Path(out_dir) / "log.csv"
    if not path.exists():
        return []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        epochs = [int(r["epoch"]) for r in rows]
    except (OSError, UnicodeDecodeError, csv.Error, KeyError, TypeError, ValueError) as err:
        raise RunFileError(f"{path} is not a run's log (expected CSV rows with a whole-number "
                           f"epoch column; {type(err).__name__}: {err}). Nothing was changed. "
                           f"Restore it, or delete it to resume without the earlier epochs' "
                           f"rows.") from None
    return [r for r, e in zip(rows, epochs) if finished is None or e <= finished]


def check_run_dir(out_dir: Path, config: TrainConfig):
    """Check that a run of ``config`` may start or resume in ``out_dir``, reading only:
    ``(finished epochs, path of the verified checkpoint or None)``."""
    if (out_dir / "config.json").exists():
        diff = config_diff(read_config(out_dir).to_dict(), config.to_dict())
        if diff:
            raise RunConflictError(
                f"{out_dir} holds a run with a different configuration ({'; '.join(diff)}). "
                f"Nothing was changed. Use another --out directory, or the same settings to resume.")
    else:
        foreign = sorted(p.name + ("/" if p.is_dir() else "") for p in out_dir.iterdir()
                         if p.name != LOCK and not _TEMPORARY.fullmatch(p.name))
        if foreign:
            shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5
                                              else "")
            raise RunConflictError(
                f"{out_dir} holds {shown}, which no vae_course run wrote. A run starts only in "
                f"a new or empty folder (hidden files count too), and resumes only in a folder "
                f"with its config.json. Nothing was changed. Choose a new or empty --out folder.")
    done = finished_epochs(out_dir)
    read_log(out_dir, done)
    return done, (verify_checkpoint(out_dir) if done else None)


def verify_checkpoint(out_dir) -> Path:
    """The run's checkpoint, checked against the SHA-256 that ``state.json`` recorded with it.
    Reads only. Returns ``checkpoint.keras``, or the pending file of a run that crashed after
    recording its sum and before renaming it (``claim.commit`` completes the rename). A
    missing checksum, or a missing, truncated or altered checkpoint, raises
    :class:`CheckpointError`: a run is never silently restarted over a reader's epochs."""
    out_dir = Path(out_dir)
    path = out_dir / CHECKPOINT
    state = read_state(out_dir)
    if not state.get("epoch"):
        raise CheckpointError(f"{out_dir} holds no finished epoch yet (no checkpoint recorded in "
                              f"state.json). Train it first, or name another run folder.")
    expected = state["checkpoint_sha256"]
    actual = data.sha256sum(path) if path.is_file() else None
    if actual == expected:
        return path
    for pending in sorted(out_dir.glob(f".tmp-*{CHECKPOINT}")):
        if pending.is_file() and data.sha256sum(pending) == expected:
            return pending   # a crash after state.json named it, before the rename
    if actual is None:
        raise CheckpointError(
            f"{path} is missing, but {out_dir / 'state.json'} records {state['epoch']} finished "
            f"epoch(s). Nothing was changed. Restore the checkpoint to resume, or train into a "
            f"new --out directory.")
    raise CheckpointError(
        f"{path} is altered or truncated: expected SHA-256 {expected} (recorded in "
        f"state.json after epoch {state['epoch']}), received {actual}. Nothing was changed. "
        f"Restore the file to resume, or train into a new --out directory.")


def load_checkpoint(out_dir, config: TrainConfig | None = None, compile: bool = True):
    """Load a run's verified checkpoint (safe mode); a checkpoint of another model is refused.
    ``compile=False`` leaves the optimizer state out (for evaluation and export). Reads only."""
    import keras

    from .factory import build_model, register_models

    register_models()
    path = verify_checkpoint(out_dir)
    try:
        model = keras.saving.load_model(path, compile=compile, safe_mode=True)
    except Exception as err:  # a zip/HDF5/config error from Keras, reworded
        raise CheckpointError(f"{path} could not be loaded as a vae_course model "
                              f"({type(err).__name__}: {err}). Nothing was changed. Restore "
                              f"the checkpoint, or train into a new --out folder.") from err
    if config is not None:
        # the encoder and decoder (built on creation), and the flow steps (built on first call)
        expected = build_model(config)

        def signature(m):
            nets = [tuple(w.shape) for net in (m.encoder, m.decoder) for w in net.weights]
            return nets + [("flow_steps", getattr(m, "flow_steps", 0))]

        got, want = signature(model) if hasattr(model, "encoder") else [], signature(expected)
        if type(model) is not type(expected) or got != want:
            raise CheckpointError(
                f"{path} holds a different architecture than config.json describes (expected "
                f"{type(expected).__name__} with {len(want)} weight tensors, received "
                f"{type(model).__name__} with {len(got)}). Nothing was changed.")
    return model


def load_chosen(out_dir, config: TrainConfig | None = None):
    """The model a run chose, uncompiled, for evaluation and export: the best validation
    epoch's weights when early stopping kept them (checked against state.json's SHA-256),
    else the last epoch's checkpoint. Reads only."""
    return load_best(load_checkpoint(out_dir, config, compile=False), out_dir)


def load_best(model, out_dir):
    """``model`` with the best validation epoch's weights when early stopping kept them
    (checked against state.json's SHA-256), else unchanged. The one way the package reads
    ``best.weights.h5``."""
    state = read_state(out_dir)
    if state.get("best_epoch"):
        path = Path(out_dir) / BEST
        if not path.is_file() or data.sha256sum(path) != state.get("best_sha256"):
            raise CheckpointError(
                f"{path} is missing or altered (state.json records the best epoch "
                f"{state['best_epoch']} with SHA-256 {state.get('best_sha256')}). Nothing was "
                f"changed. Restore it, or evaluate the last epoch's checkpoint.keras yourself.")
        model.load_weights(path)
    return model
