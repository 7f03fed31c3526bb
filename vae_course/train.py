"""``train(config, out_dir)``: the one training loop, used by the CLI, the chapters and the
pretrained weights.

A run directory holds::

    config.json        the TrainConfig (a different config in the same directory is refused)
    checkpoint.keras   model + optimizer state after the last finished epoch (atomic writes)
    state.json         {"epoch": finished epochs, "wall_time": seconds of training so far}
    log.csv            per epoch: train/test elbo, reconstruction, kl, loss, time
    images/epoch_NNN.png   test reconstructions and samples from a fixed z, every epoch
    progress.gif       those frames as an animation, written at the end

Running again with the same directory resumes from the checkpoint.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import keras
import numpy as np

from . import data, flows, iaf, models  # noqa: F401  (flows, iaf: register FlowVAE for resume)
from .configs import TrainConfig

CHECKPOINT = "checkpoint.keras"


class RunConflictError(RuntimeError):
    """The output directory holds something other than this run."""


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint was kept."""


class CheckpointError(RuntimeError):
    """A run's checkpoint is missing, altered, truncated or of another model."""


def build_model(config: TrainConfig):
    if config.model == "cifar-conv":
        from .iaf import cifar_vae

        return cifar_vae(config.latent_dim, flow_steps=config.flow_steps, nr_mix=config.nr_mix,
                         seed=config.seed)
    if config.model == "mlp":
        from .mlp import mlp_vae

        return mlp_vae(config.latent_dim, hidden_units=config.hidden_units or 400,
                       hidden_layers=config.hidden_layers or 2, kl=config.kl, beta=config.beta,
                       seed=config.seed, image_shape=data.IMAGE_SHAPES[config.dataset])
    return models.conv_vae(config.latent_dim, kl=config.kl, beta=config.beta, seed=config.seed)


def load_data(config: TrainConfig):
    """``(train, x_test)``: ``train`` is an array or a PyDataset of (n, 28, 28, 1) float32 in {0,1}.

    CIFAR-10: uint8 (n, 32, 32, 3) for ``cifar-conv`` (the model scales them), float32 in
    [0, 1] for the Bernoulli ``mlp``.
    """
    if config.dataset == "cifar10":
        (x_train, _), (x_test, _) = data.load_cifar10()
        x_train, x_test = x_train[:config.train_examples], x_test[:config.test_examples]
        if config.model == "mlp":
            return x_train.astype("float32") / 255.0, x_test.astype("float32") / 255.0
        return x_train, x_test
    (x_train, _), (x_test, _) = data.load_mnist()
    x_train = x_train[:config.train_examples]
    x_test = x_test[:config.test_examples]
    x_test = data.binarize(x_test, config.binarization)
    if config.binarization == "static":
        return data.binarize_static(x_train), x_test
    return data.DynamicBinarization(x_train, batch_size=config.batch_size, seed=config.seed), x_test


# -- files --------------------------------------------------------------------------------
def _atomic_write_text(path: Path, text: str):
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _pending_checkpoint(out_dir: Path) -> Path:
    """Where the next checkpoint is written before it replaces the last one (the name keeps
    the .keras suffix Keras insists on)."""
    return out_dir / f".tmp-{CHECKPOINT}"


def tile(images, ncols):
    """(n, h, w, c) floats in [0, 1] -> one uint8 image with 1-pixel gaps: (rows*h, ncols*w)
    for c = 1, (rows*h, ncols*w, 3) for c = 3."""
    images = np.asarray(images)
    if images.shape[-1] == 1:
        images = images[..., 0]
    n, h, w = images.shape[:3]
    nrows = -(-n // ncols)
    canvas = np.full((nrows * (h + 1) + 1, ncols * (w + 1) + 1) + images.shape[3:], 0.5,
                     dtype=np.float32)
    for i, img in enumerate(images):
        r, c = divmod(i, ncols)
        canvas[1 + r * (h + 1):1 + r * (h + 1) + h, 1 + c * (w + 1):1 + c * (w + 1) + w] = img
    return (np.clip(canvas, 0, 1) * 255).round().astype(np.uint8)


def _config_diff(old: dict, new: dict):
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
        diff = _config_diff(old, config.to_dict())
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
    _atomic_write_text(cfg_path, json.dumps(config.to_dict(), indent=2) + "\n")
    return done


def finished_epochs(out_dir) -> int:
    """Epochs whose checkpoint a run directory holds (0 before the first one)."""
    state = Path(out_dir) / "state.json"
    return int(json.loads(state.read_text())["epoch"]) if state.exists() else 0


def verify_checkpoint(out_dir) -> Path:
    """The run's checkpoint, checked against the SHA-256 that ``state.json`` recorded with it.

    A missing, truncated or altered checkpoint raises :class:`CheckpointError` and nothing in
    the directory is changed: a run is never silently restarted over a reader's epochs.
    """
    out_dir = Path(out_dir)
    path = out_dir / CHECKPOINT
    state = json.loads((out_dir / "state.json").read_text())
    expected = state.get("checkpoint_sha256")
    pending = _pending_checkpoint(out_dir)
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


# -- callbacks ----------------------------------------------------------------------------
class RunRecorder(keras.callbacks.Callback):
    """After every epoch: an image of fixed reconstructions and samples, a CSV row, a
    checkpoint and the state file, in that order (a crash between them loses at most that
    epoch, which the resumed run repeats)."""

    FIELDS = ["epoch", "elbo", "reconstruction", "kl", "loss",
              "val_elbo", "val_reconstruction", "val_kl", "val_loss", "time"]

    def __init__(self, out_dir: Path, x_fixed, z_fixed, initial_epoch: int, wall_time: float):
        super().__init__()
        self.out_dir = out_dir
        self.x_fixed = x_fixed
        self.z_fixed = z_fixed
        self.wall_time = wall_time
        (out_dir / "images").mkdir(exist_ok=True)
        self.csv_path = out_dir / "log.csv"
        self.diverged_at = None
        self._truncate_log(initial_epoch)

    def _truncate_log(self, finished):
        """Drop rows of epochs the checkpoint does not hold (a crash after the CSV write)."""
        rows = []
        if self.csv_path.exists():
            with open(self.csv_path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["epoch"]) <= finished]
        self._write_rows(rows)

    def _write_rows(self, rows):
        tmp = self.csv_path.with_name(".log.csv.tmp")
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
        frame = epoch_frame(self.model, self.x_fixed, self.z_fixed)
        import imageio.v3 as iio

        iio.imwrite(self.out_dir / "images" / f"epoch_{n:03d}.png", frame)
        with open(self.csv_path, "a", newline="") as f:
            row = {k: f"{float(logs[k]):.4f}" for k in self.FIELDS if k in logs}
            csv.DictWriter(f, fieldnames=self.FIELDS).writerow(
                {**row, "epoch": n, "time": f"{self.wall_time:.1f}"})
        # Two steps, each atomic: the complete new checkpoint and its SHA-256 are recorded in
        # state.json before it replaces the old one. A crash in between leaves state.json
        # naming the pending file, which verify_checkpoint then moves into place.
        pending = _pending_checkpoint(self.out_dir)
        self.model.save(pending)
        state = {"epoch": n, "wall_time": round(self.wall_time, 2),
                 "checkpoint_sha256": data.sha256sum(pending)}
        _atomic_write_text(self.out_dir / "state.json", json.dumps(state) + "\n")
        os.replace(pending, self.out_dir / CHECKPOINT)


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


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The training order of epoch ``epoch``: a permutation of ``n`` that depends only on
    (seed, epoch), so a resumed run sees exactly the batches an uninterrupted one would."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def epoch_data(train_data, seed: int, epoch: int):
    """The training images of one epoch, in that epoch's order.

    Arrays are permuted by :func:`epoch_order`; :class:`vae_course.data.DynamicBinarization`
    gives that epoch's fresh binary draw. The order is fixed here rather than by
    ``fit(shuffle=True)``, whose generator a restarted process does not continue, or by a
    ``PyDataset``'s ``on_epoch_end``, which Keras's prefetching can run ahead of.
    """
    if isinstance(train_data, data.DynamicBinarization):
        train_data.set_epoch(epoch)
        out = np.empty(train_data.probs.shape, "float32")   # filled in place: no concatenate
        b = train_data.batch_size
        # Each batch has its own generator, so the draw is the same from any number of threads.
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            list(pool.map(lambda i: train_data.draw(i, out[i * b:(i + 1) * b]),
                          range(len(train_data))))
        return out
    return train_data[epoch_order(len(train_data), seed, epoch)]


def whole_batches(x, batch_size: int, dataset: bool = False):
    """One epoch's images ``x`` (in training order) cut to whole batches, as ``fit`` gets them.

    The last ``len(x) % batch_size`` images are left out (with fewer images than one batch,
    the one batch is all of them). Each epoch has its own order, so they are other images
    every epoch. Every step then has the same batch shape; ``dataset=True`` (TensorFlow only)
    returns a ``tf.data`` pipeline of those batches (prefetched), whose static batch dimension lets
    TensorFlow compile a tighter step: with ``steps_per_execution`` 16 it trains batch-32
    MNIST about 15% faster than the same arrays given to ``fit``, and about 10% faster than
    the TensorFlow tutorial's hand-written loop on two cores (benchmarks/train_throughput.py).
    """
    batch_size = min(batch_size, len(x))
    x = x[:len(x) - len(x) % batch_size]
    if not dataset:
        return x
    import tensorflow as tf

    # Sliced a batch at a time (not an image at a time, then re-batched): same batches, about
    # 100x fewer dataset elements.
    x = np.reshape(x, (-1, batch_size) + tuple(np.shape(x)[1:]))
    return tf.data.Dataset.from_tensor_slices(x).prefetch(tf.data.AUTOTUNE)


def epoch_frame(model, x_fixed, z_fixed):
    """One uint8 image: originals (row 1), their reconstructions (row 2), samples (rows 3-4)."""
    z_mean, _ = model.encode(x_fixed)
    recon = keras.ops.convert_to_numpy(model.decode(z_mean, apply_sigmoid=True))
    samples = keras.ops.convert_to_numpy(model.decode(z_fixed, apply_sigmoid=True))
    shown = x_fixed / 255.0 if x_fixed.dtype == np.uint8 else x_fixed
    grid = tile(np.concatenate([shown, recon, samples]), ncols=len(x_fixed))
    return grid.repeat(2, axis=0).repeat(2, axis=1)


def write_gif(out_dir: Path, fps: int = 4):
    import imageio.v2 as imageio

    frames = [imageio.imread(p) for p in sorted((out_dir / "images").glob("epoch_*.png"))]
    if frames:
        tmp = out_dir / ".progress.gif.tmp"
        imageio.mimsave(tmp, frames, format="GIF", duration=1000 / fps, loop=0)
        os.replace(tmp, out_dir / "progress.gif")


@contextlib.contextmanager
def _precision(mixed: bool):
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def enable_determinism():
    """Deterministic kernels for the current Keras backend (bit-for-bit repeatable CPU runs).

    TensorFlow: op determinism; torch: deterministic algorithms; JAX needs nothing on CPU
    (XLA's CPU kernels give the same bits run to run).
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    elif backend == "torch":
        import torch

        torch.use_deterministic_algorithms(True)


def mirrored_strategy():
    """``tf.distribute.MirroredStrategy`` over all GPUs or, with none, all logical CPU devices.

    TensorFlow-only (tf.distribute). Each step splits the global batch (``batch_size``) evenly
    across the devices and sums their gradients; the models' ``compute_loss`` divides by the
    number of replicas for that (:func:`vae_course.losses.scale_for_replicas`).
    """
    import tensorflow as tf

    if keras.backend.backend() != "tensorflow":
        raise ValueError(f"Expected the tensorflow backend for strategy 'mirrored' "
                         f"(tf.distribute). Received: KERAS_BACKEND={keras.backend.backend()!r}")
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    return tf.distribute.MirroredStrategy(devices=[d.name for d in devices])


@contextlib.contextmanager
def distribution_scope(strategy: str):
    """Build, compile and fit inside this scope: one device, or a MirroredStrategy."""
    if strategy == "default":
        yield None
        return
    mirrored = mirrored_strategy()
    with mirrored.scope():
        yield mirrored


def train(config: TrainConfig, out_dir, verbose: int | str = "auto", data_arrays=None):
    """Train (or resume) a VAE into ``out_dir``; return ``(model, history)``.

    ``history`` is the list of per-epoch rows of ``log.csv`` (all epochs, resumed ones too).
    ``data_arrays``: optional ``(train, x_test)`` to skip loading (as :func:`load_data` returns).
    """
    out_dir = Path(out_dir)
    done = prepare_run_dir(out_dir, config)
    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        enable_determinism()
    train_data, x_test = data_arrays if data_arrays is not None else load_data(config)
    jit = {"auto": "auto", "on": True, "off": False}[config.jit_compile]

    with _precision(config.mixed_precision), distribution_scope(config.strategy):
        if done:
            model = load_checkpoint(out_dir, config)
            model.steps_per_execution = config.steps_per_call   # may differ on resume
        else:
            model = build_model(config)
            model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), jit_compile=jit,
                          steps_per_execution=config.steps_per_call)
        state = json.loads((out_dir / "state.json").read_text()) if done else {}
        rng = np.random.default_rng(config.seed)
        x_fixed = x_test[:8]
        latent_shape = getattr(model, "latent_shape", (config.latent_dim,))
        z_fixed = rng.standard_normal((16,) + tuple(latent_shape)).astype("float32")
        recorder = RunRecorder(out_dir, x_fixed, z_fixed, done, state.get("wall_time", 0.0))
        callbacks = [keras.callbacks.TerminateOnNaN(), recorder,
                     keras.callbacks.LearningRateScheduler(
                         lambda epoch, lr: learning_rate_at(config, epoch))]
        fit_kwargs = dict(validation_data=(x_test,), validation_batch_size=500,
                          callbacks=callbacks, verbose=verbose)
        if isinstance(train_data, (np.ndarray, data.DynamicBinarization)):
            if isinstance(train_data, np.ndarray):
                train_data = model.check_inputs(train_data)   # once, not every epoch
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
        write_gif(out_dir)
        if recorder.diverged_at is not None:
            kept = finished_epochs(out_dir)
            raise TrainingDivergedError(
                f"The loss became NaN or infinite during epoch {recorder.diverged_at}; training "
                f"stopped. The last good checkpoint (after epoch {kept}) is kept in {out_dir}. "
                f"Check the inputs for NaN or infinite values, or lower the learning rate "
                f"(received learning_rate={config.learning_rate}).")
    with open(out_dir / "log.csv", newline="") as f:
        history = list(csv.DictReader(f))
    return model, history
