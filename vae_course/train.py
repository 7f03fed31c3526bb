"""``train(config, out_dir)``: the one training loop, used by the CLI, the chapters and the
pretrained weights.

It trains (or resumes) a model into a run directory (:mod:`vae_course.runs` says what the
directory holds): the model comes from :func:`vae_course.factory.build_model`, the epochs'
batches from :mod:`vae_course.pipeline`, precision and devices from
:mod:`vae_course.execution`. After every epoch :class:`RunRecorder` writes the epoch's image,
its row of ``log.csv``, the checkpoint and ``state.json``. Running again with the same
directory resumes from the checkpoint.
"""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path

import keras
import numpy as np

from . import data, images, runs
from .configs import TrainConfig
from .execution import distribution_scope, enable_determinism, precision
from .factory import build_model
from .pipeline import epoch_data, load_data, split_validation, whole_batches


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint was kept."""


class RunRecorder(keras.callbacks.Callback):
    """After every epoch: an image of fixed reconstructions and samples, a CSV row, a
    checkpoint and the state file, in that order (a crash between them loses at most that
    epoch, which the resumed run repeats)."""

    FIELDS = ["epoch", "elbo", "reconstruction", "kl", "loss",
              "val_elbo", "val_reconstruction", "val_kl", "val_loss", "time"]

    def __init__(self, out_dir: Path, x_fixed, z_fixed, initial_epoch: int, state: dict,
                 patience: int = 0):
        super().__init__()
        self.out_dir = out_dir
        self.x_fixed = x_fixed
        self.z_fixed = z_fixed
        self.wall_time = state.get("wall_time", 0.0)
        # Early stopping (patience > 0) on the validation ELBO; a resumed run goes on counting.
        self.patience = patience
        self.best = {k: state[k] for k in ("best_epoch", "best_sha256") if k in state}
        (out_dir / "images").mkdir(exist_ok=True)
        self.csv_path = out_dir / "log.csv"
        self.diverged_at = None
        self._truncate_log(initial_epoch)
        rows = {int(r["epoch"]): r for r in runs.read_log(out_dir, initial_epoch)}
        best_row = rows.get(self.best.get("best_epoch"))
        self.best_elbo = float(best_row["val_elbo"]) if best_row else -np.inf

    def _truncate_log(self, finished):
        """Drop rows of epochs the checkpoint does not hold (a crash after the CSV write)."""
        self._write_rows(runs.read_log(self.out_dir, finished))

    def _write_rows(self, rows):
        tmp = runs.temporary(self.csv_path)
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.FIELDS)
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, self.csv_path)

    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.perf_counter()
        reseed(self.model, epoch)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.wall_time += time.perf_counter() - self.t0
        n = epoch + 1
        if not all(np.isfinite(float(v)) for v in logs.values()):
            # TerminateOnNaN has stopped training; keep the previous epoch's checkpoint.
            self.diverged_at = n
            return
        frame = images.epoch_frame(self.model, self.x_fixed, self.z_fixed)
        import imageio.v3 as iio

        iio.imwrite(self.out_dir / "images" / f"epoch_{n:03d}.png", frame)
        with open(self.csv_path, "a", newline="") as f:
            row = {k: f"{float(logs[k]):.4f}" for k in self.FIELDS if k in logs}
            csv.DictWriter(f, fieldnames=self.FIELDS).writerow(
                {**row, "epoch": n, "time": f"{self.wall_time:.1f}"})
        # Two steps, each atomic: the complete new checkpoint and its SHA-256 are recorded in
        # state.json before it replaces the old one. A crash in between leaves state.json
        # naming the pending file, which verify_checkpoint then moves into place.
        pending = runs.pending_checkpoint(self.out_dir)
        self.model.save(pending)
        state = {"epoch": n, "wall_time": round(self.wall_time, 2),
                 "checkpoint_sha256": data.sha256sum(pending)}
        if self.patience:
            state.update(self._early_stopping(n, float(logs["val_elbo"])))
        runs.atomic_write_text(self.out_dir / "state.json", json.dumps(state) + "\n")
        os.replace(pending, self.out_dir / runs.CHECKPOINT)

    def _early_stopping(self, n, val_elbo):
        """Keep the best validation epoch's weights (written before state.json names them);
        stop once ``patience`` epochs in a row have not beaten it."""
        if val_elbo > self.best_elbo:
            self.best_elbo = val_elbo
            pending = runs.pending_best(self.out_dir)
            self.model.save_weights(pending)
            self.best = {"best_epoch": n, "best_sha256": data.sha256sum(pending)}
            os.replace(pending, self.out_dir / runs.BEST)
        stop = n - self.best["best_epoch"] >= self.patience
        if stop:
            self.model.stop_training = True
        return {**self.best, "stopped_early": stop}


def reseed(model, epoch: int):
    """Set every seed generator of ``model`` to a state that depends only on (its seed, epoch).

    Keras does not save the counters of seed generators with a model, so without this a
    resumed run would draw the posterior noise of epoch 1 again. With it, epoch ``e`` draws the
    same noise whether the run was interrupted or not.
    """
    for v in model.non_trainable_variables:
        if v.path.endswith("seed_generator_state"):
            state = keras.ops.convert_to_numpy(v)
            v.assign(np.array([state[0], (epoch << 20) % (1 << 32)], dtype=state.dtype))


def learning_rate_at(config: TrainConfig, epoch: int) -> float:
    """Adam's step size in epoch ``epoch`` (0-based): constant, then a tenth of it for the
    last ``config.lr_cooldown`` epochs (a cool-down that settles the weights)."""
    if epoch >= config.epochs - config.lr_cooldown:
        return config.learning_rate / 10
    return config.learning_rate


def train(config: TrainConfig, out_dir, verbose: int | str = "auto", data_arrays=None,
          check_only: bool = False, tensorboard: bool = False):
    """Train (or resume) a VAE into ``out_dir``; return ``(model, history)``.

    ``history`` is the list of per-epoch rows of ``log.csv`` (all epochs, resumed ones too).
    With ``config.validation_examples`` the last training examples are held out and the
    ``val_*`` columns score them; ``config.patience`` then stops once the validation ELBO has
    not improved for that many epochs, and the model returned (and the one ``evaluate`` and
    ``export`` load) has the best validation epoch's weights. Without a split the ``val_*``
    columns watch the test set, for monitoring only: nothing is chosen on it.
    ``data_arrays``: optional ``(train, x_test)`` to skip loading (as
    :func:`vae_course.pipeline.load_data` returns).

    One run per folder: another process training into ``out_dir`` is refused
    (:class:`vae_course.locks.RunBusyError`). Everything is checked before the first byte is
    written (the folder, the run in it and its checkpoint, the data, the model); a refused
    run leaves the folder as it was. ``check_only=True`` runs those checks, writes nothing
    and returns ``(model, None)``. ``tensorboard=True`` also writes Keras TensorBoard logs
    into ``out_dir/tensorboard`` (view them with ``tensorboard --logdir``; not part of the
    run's config, so it may change on resume).
    """
    if tensorboard:
        import importlib.util

        if importlib.util.find_spec("tensorboard") is None:
            raise ValueError("Expected the tensorboard package for --tensorboard (Keras writes "
                             "its logs with it). Received an environment without it. Install "
                             "it with `pip install tensorboard`, or train without --tensorboard.")
    with runs.claim(out_dir, config) as run:
        return _train(run, config, verbose, data_arrays, check_only, tensorboard)


def _train(run, config, verbose, data_arrays, check_only, tensorboard=False):
    out_dir, done = run.out_dir, run.done
    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        enable_determinism()
    train_data, x_test = data_arrays if data_arrays is not None else load_data(config)
    # The held-out images the val_* columns and early stopping watch: a validation split of the
    # training set when the config has one; else the test set, for monitoring only.
    train_data, x_val = split_validation(train_data, config.validation_examples)
    held_out = x_test if x_val is None else x_val
    jit = {"auto": "auto", "on": True, "off": False}[config.jit_compile]

    with precision(config.mixed_precision), distribution_scope(config.strategy):
        if done:
            model = runs.load_checkpoint(out_dir, config)
            model.steps_per_execution = config.steps_per_call   # may differ on resume
        else:
            model = build_model(config)
            model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), jit_compile=jit,
                          steps_per_execution=config.steps_per_call)
        if isinstance(train_data, (np.ndarray, tuple)):
            train_data = model.check_inputs(train_data)   # once, before anything is written
        state = runs.read_state(out_dir) if done else {}
        if state.get("stopped_early") and not check_only:   # early stopping ended this run
            return _finish(out_dir, config, model)
        if check_only:
            return model, None
        run.commit()   # every check passed: from here on the folder is written
        rng = np.random.default_rng(config.seed)
        x_fixed = data.take(x_test, slice(0, 8))
        z_fixed = model.prior_points(rng, columns=8)
        recorder = RunRecorder(out_dir, x_fixed, z_fixed, done, state, config.patience)
        callbacks = [keras.callbacks.TerminateOnNaN(), recorder,
                     keras.callbacks.LearningRateScheduler(
                         lambda epoch, lr: learning_rate_at(config, epoch))]
        if tensorboard:
            callbacks.append(keras.callbacks.TensorBoard(log_dir=str(out_dir / "tensorboard")))
        # x_test is images or, for a conditional model, the pair (images, labels): one input
        fit_kwargs = dict(validation_data=(held_out,), validation_batch_size=500,
                          callbacks=callbacks, verbose=verbose)
        if isinstance(train_data, (np.ndarray, tuple, data.DynamicBinarization)):
            # One fit() per epoch on that epoch's own order: resumable exactly (see epoch_data).
            as_dataset = keras.backend.backend() == "tensorflow" and config.strategy == "default"
            for epoch in range(done, config.epochs):
                x_epoch = whole_batches(epoch_data(train_data, config.seed, epoch),
                                        config.batch_size, dataset=as_dataset)
                batching = {} if as_dataset else dict(batch_size=config.batch_size)
                model.fit(x_epoch, shuffle=False, epochs=epoch + 1, initial_epoch=epoch,
                          **batching, **fit_kwargs)
                if model.stop_training or recorder.diverged_at is not None:
                    break
        elif done < config.epochs:   # any other dataset (e.g. a PyDataset) as it is
            model.fit(train_data, epochs=config.epochs, initial_epoch=done, **fit_kwargs)
        images.write_gif(out_dir)
        if recorder.diverged_at is not None:
            kept = runs.finished_epochs(out_dir)
            raise TrainingDivergedError(
                f"The loss became NaN or infinite during epoch {recorder.diverged_at}; training "
                f"stopped. The last good checkpoint (after epoch {kept}) is kept in {out_dir}. "
                f"Check the inputs for NaN or infinite values, or lower the learning rate "
                f"(received learning_rate={config.learning_rate}).")
    return _finish(out_dir, config, model)


def _finish(out_dir, config, model):
    """``(model, history)``: with early stopping the model gets the best epoch's weights."""
    if config.patience:
        runs.load_best(model, out_dir)
    with open(out_dir / "log.csv", newline="") as f:
        history = list(csv.DictReader(f))
    return model, history
