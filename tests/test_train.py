import csv
import json
import os
import subprocess
import sys

import pytest

from vae_course import configs
from vae_course.train import TrainingDivergedError, train

QUICK = configs.get_preset("quick").replace(train_examples=512, test_examples=128, epochs=2,
                                             batch_size=64)


def rows(run):
    with open(run / "log.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.backends
@pytest.mark.slow
def test_train_writes_a_complete_run_and_resumes(tmp_path, data_dir):
    run = tmp_path / "run"
    model, history = train(QUICK, run, verbose=0)
    assert [int(r["epoch"]) for r in history] == [1, 2]
    for name in ("config.json", "checkpoint.keras", "state.json", "log.csv", "progress.gif",
                 "images/epoch_001.png", "images/epoch_002.png"):
        assert (run / name).exists(), name
    assert json.loads((run / "state.json").read_text())["epoch"] == 2
    for r in history:
        assert float(r["val_elbo"]) < 0 and float(r["kl"]) >= 0
    iterations = int(model.optimizer.iterations)

    # Same command with more epochs: continues from epoch 2, keeps the optimizer state.
    model, history = train(QUICK.replace(epochs=3), run, verbose=0)
    assert [int(r["epoch"]) for r in history] == [1, 2, 3]
    assert int(model.optimizer.iterations) == iterations * 3 // 2

    # Already finished: nothing retrains.
    _, again = train(QUICK.replace(epochs=3), run, verbose=0)
    assert again == history


@pytest.mark.backends
def test_bad_config_values_are_refused():
    with pytest.raises(ValueError, match="latent_dim"):
        QUICK.replace(latent_dim=0)
    with pytest.raises(ValueError, match="batch_size"):
        QUICK.replace(batch_size=-1)
    with pytest.raises(ValueError, match="Valid presets: tutorial, mnist-conv, quick"):
        configs.get_preset("huge")
    with pytest.raises(ValueError, match="strategy 'default' or 'mirrored'.*'tpu'"):
        QUICK.replace(strategy="tpu")
    with pytest.raises(ValueError, match=r"steps_per_execution an integer in \[1, 100000\]"):
        QUICK.replace(steps_per_execution=0)


@pytest.mark.backends
@pytest.mark.slow
def test_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path, binary_test_images):
    import keras
    import numpy as np

    x = binary_test_images[0][:256]
    run = tmp_path / "run"
    config = QUICK.replace(epochs=1, train_examples=256, test_examples=64)
    train(config, run, verbose=0, data_arrays=(x, x[:64]))
    good = (run / "checkpoint.keras").read_bytes()

    class Poisoned(keras.utils.PyDataset):
        """Batches that turn NaN halfway through (arrays would be refused up front)."""

        def __len__(self):
            return 4

        def __getitem__(self, i):
            batch = x[i * 64:(i + 1) * 64].copy()
            if i >= 2:
                batch[:] = np.nan
            return (batch,)

    poisoned = Poisoned()
    with pytest.raises(TrainingDivergedError, match="epoch 2.*after epoch 1"):
        train(config.replace(epochs=3), run, verbose=0, data_arrays=(poisoned, x[:64]))
    assert (run / "checkpoint.keras").read_bytes() == good
    assert json.loads((run / "state.json").read_text())["epoch"] == 1
    assert [int(r["epoch"]) for r in rows(run)] == [1]


@pytest.mark.slow
def test_ctrl_c_exits_cleanly_and_the_run_resumes(tmp_path, data_dir):
    import signal
    import time

    out = tmp_path / "run"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    cmd = [sys.executable, "-m", "vae_course", "train", "quick", "--epochs", "40",
           "--out", str(out), "--quiet"]
    # A terminal's Ctrl-C: SIGINT at its default. A test run started in the background by a
    # non-interactive shell inherits SIGINT *ignored*, and Python then never raises
    # KeyboardInterrupt (seen here: the run finished all 40 epochs and exited 0).
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 600
    while not (out / "state.json").exists() and time.time() < deadline:
        time.sleep(0.5)
    assert (out / "state.json").exists(), proc.communicate(timeout=60)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err[-2000:]
    assert "run the same command again to resume" in err
    done = json.loads((out / "state.json").read_text())["epoch"]
    assert 1 <= done < 40
    assert [int(r["epoch"]) for r in rows(out)] == list(range(1, done + 1))
    # The same command, with fewer epochs to finish quickly, resumes from the checkpoint.
    config = QUICK.replace(**{**json.loads((out / "config.json").read_text()),
                              "epochs": done + 1, "description": ""})
    model, history = train(config, out, verbose=0)
    assert [int(r["epoch"]) for r in history] == list(range(1, done + 2))


@pytest.mark.slow
def test_deterministic_runs_are_bit_for_bit_repeatable(tmp_path, data_dir):
    import keras
    import numpy as np

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    for name in ("a", "b"):
        cmd = [sys.executable, "-m", "vae_course", "train", "quick", "--epochs", "1",
               "--deterministic", "--seed", "5", "--out", str(tmp_path / name), "--quiet"]
        result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        assert result.returncode == 0, result.stderr[-2000:]
    a, b = (keras.saving.load_model(tmp_path / n / "checkpoint.keras") for n in ("a", "b"))
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert rows(tmp_path / "a")[0]["val_elbo"] == rows(tmp_path / "b")[0]["val_elbo"]


def _cli_train(out, *extra, epochs=3):
    return [sys.executable, "-m", "vae_course", "train", "quick", "--epochs", str(epochs),
            "--deterministic", "--seed", "7", "--out", str(out), "--quiet", *extra]


@pytest.mark.slow
def test_a_run_killed_mid_epoch_resumes_to_the_same_weights(tmp_path, data_dir):
    """SIGKILL during epoch 2, then the same command: identical to an uninterrupted run."""
    import signal
    import time

    import keras
    import numpy as np

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    straight = tmp_path / "straight"
    result = subprocess.run(_cli_train(straight), capture_output=True, text=True, env=env,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]

    killed = tmp_path / "killed"
    proc = subprocess.Popen(_cli_train(killed), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 600
    while not (killed / "state.json").exists() and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)   # no handler runs: as if the machine lost power
    proc.wait(timeout=60)
    done = json.loads((killed / "state.json").read_text())["epoch"]
    assert 1 <= done < 3   # killed after epoch 1's checkpoint, before the run finished
    result = subprocess.run(_cli_train(killed), capture_output=True, text=True, env=env,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]

    a, b = (keras.saving.load_model(d / "checkpoint.keras") for d in (straight, killed))
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    keep = ("epoch", "elbo", "kl", "val_elbo", "val_kl")
    assert ([{k: r[k] for k in keep} for r in rows(straight)]
            == [{k: r[k] for k in keep} for r in rows(killed)])


@pytest.mark.slow
def test_the_cool_down_trains_the_last_epochs_at_a_tenth_of_the_rate(tmp_path, data_dir):
    from vae_course.train import learning_rate_at

    config = QUICK.replace(epochs=3, lr_cooldown=1, learning_rate=1e-3)
    assert [learning_rate_at(config, e) for e in range(3)] == [1e-3, 1e-3, 1e-4]
    run = tmp_path / "run"
    model, _ = train(config.replace(epochs=2, lr_cooldown=0), run, verbose=0)
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-3)
    model, history = train(config, run, verbose=0)   # a longer run with a cool-down resumes
    assert len(history) == 3
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-4)
    with pytest.raises(ValueError, match="lr_cooldown"):
        config.replace(lr_cooldown=4)


@pytest.mark.slow
def test_an_iaf_run_resumes(tmp_path, data_dir):
    """FlowVAE's flow layers build on first call: a resumed IAF run is not a 'different model'."""
    from vae_course.runs import load_checkpoint

    config = configs.get_preset("cifar-quick").replace(epochs=1, train_examples=128,
                                                      test_examples=64)
    run = tmp_path / "run"
    train(config, run, verbose=0)
    model = load_checkpoint(run, config)
    assert model.flow_steps == 2
    _, history = train(config.replace(epochs=2), run, verbose=0)
    assert [int(r["epoch"]) for r in history] == [1, 2]
    with pytest.raises(Exception, match="different architecture"):
        load_checkpoint(run, config.replace(flow_steps=1))


@pytest.mark.backends
def test_whole_batches_trims_each_epoch_to_full_batches():
    import numpy as np

    from vae_course.pipeline import epoch_order, whole_batches

    x = np.arange(100, dtype="float32").reshape(100, 1)
    assert whole_batches(x, 32).shape == (96, 1)
    assert whole_batches(x, 25).shape == (100, 1)
    assert whole_batches(x[:10], 32).shape == (10, 1)   # fewer than a batch: one batch of all
    # the left-out images change with the epoch's order
    left_out = [set(epoch_order(100, 0, e)[96:]) for e in range(3)]
    assert left_out[0] != left_out[1] and left_out[1] != left_out[2]


def test_whole_batches_gives_tensorflow_a_static_batch_dimension():
    import numpy as np
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.data")
    from vae_course.pipeline import whole_batches

    batches = whole_batches(np.zeros((100, 28, 28, 1), "float32"), 32, dataset=True)
    assert tuple(batches.element_spec.shape) == (32, 28, 28, 1)
    assert sum(int(b.shape[0]) for b in batches) == 96
    # the batches are the array's, in order (uint8 too: the IAF trains on raw CIFAR bytes)
    x = np.arange(100 * 3, dtype="uint8").reshape(100, 3)
    got = np.concatenate([b.numpy() for b in whole_batches(x, 32, dataset=True)])
    np.testing.assert_array_equal(got, x[:96])


def test_epoch_data_draws_dynamic_binarization_the_same_on_any_number_of_threads(mnist):
    import numpy as np

    from vae_course import data
    from vae_course.pipeline import epoch_data

    (x_train, _), _ = mnist
    seq = data.DynamicBinarization(x_train[:1050], batch_size=100, seed=7)   # a short last batch
    for epoch in (0, 3):
        got = epoch_data(seq, 7, epoch)   # batches drawn on a thread pool
        seq.set_epoch(epoch)
        one_by_one = np.concatenate([seq[i][0] for i in range(len(seq))])
        assert got.dtype == np.float32 and got.shape == (1050, 28, 28, 1)
        np.testing.assert_array_equal(got, one_by_one)


@pytest.mark.backends
def test_steps_per_execution_defaults_to_16_and_to_1_when_mirrored_or_under_torch():
    import keras

    default = 1 if keras.backend.backend() == "torch" else 16
    assert QUICK.steps_per_execution is None and QUICK.steps_per_call == default
    assert QUICK.replace(steps_per_execution=4).steps_per_call == 4
    assert QUICK.replace(strategy="mirrored").steps_per_call == 1


# -- validation split and early stopping: nothing is chosen on test data ---------------------
@pytest.mark.backends
def test_split_validation_holds_out_the_last_training_examples():
    import numpy as np

    from vae_course import data
    from vae_course.pipeline import split_validation

    x = np.arange(10, dtype="float32")[:, None]
    y = np.arange(10)
    assert split_validation(x, 0) == (x, None)
    kept, held = split_validation(x, 3)
    assert kept.ravel().tolist() == list(range(7)) and held.ravel().tolist() == [7, 8, 9]
    (kx, ky), (hx, hy) = split_validation((x, y), 4)   # a pair splits as one
    assert ky.tolist() == [0, 1, 2, 3, 4, 5] and hy.tolist() == [6, 7, 8, 9]
    assert hx.ravel().tolist() == [6, 7, 8, 9]
    for n in (10, 11, -1):
        with pytest.raises(ValueError, match=r"validation_examples in \[0, 10\).*Lower it"):
            split_validation(x, n)
    # dynamic binarization: the held-out images are one fixed draw, the rest still redraws
    grey = np.full((10, 28, 28), 128, np.uint8)
    dyn = data.DynamicBinarization(grey, batch_size=4, seed=3)
    train_part, val = split_validation(dyn, 4)
    assert isinstance(train_part, data.DynamicBinarization) and len(train_part.probs) == 6
    assert val.shape == (4, 28, 28, 1) and set(np.unique(val)) == {0.0, 1.0}
    assert np.array_equal(val, split_validation(dyn, 4)[1])


@pytest.mark.backends
def test_early_stopping_needs_a_validation_split():
    with pytest.raises(ValueError, match="validation split.*never used to choose"):
        QUICK.replace(patience=2)
    assert QUICK.replace(patience=2, validation_examples=100).patience == 2
    with pytest.raises(ValueError, match="validation_examples an integer"):
        QUICK.replace(validation_examples=-5)


@pytest.mark.backends
@pytest.mark.slow
def test_early_stopping_watches_the_validation_split_and_keeps_the_best_epoch(tmp_path):
    """Train on blank images, validate on white ones: every epoch fits the training images
    better and the validation images worse, so the best validation epoch is the first and
    training stops ``patience`` epochs later. The test images are blank too, so a trainer that
    watched them would keep improving and never stop."""
    import numpy as np

    from vae_course import runs

    blank, white = np.zeros((256, 28, 28, 1), "float32"), np.ones((64, 28, 28, 1), "float32")
    config = QUICK.replace(model="mlp", epochs=8, patience=2, validation_examples=64,
                           train_examples=None, test_examples=None, learning_rate=1e-2)
    run = tmp_path / "run"
    model, history = train(config, run, verbose=0,
                           data_arrays=(np.concatenate([blank, white]), blank[:64]))
    val = [float(r["val_elbo"]) for r in history]
    assert len(history) == 3 and val[0] == max(val), val
    state = json.loads((run / "state.json").read_text())
    assert (state["best_epoch"], state["stopped_early"]) == (1, True)
    chosen = runs.load_chosen(run, config)   # what evaluate and export score
    for a, b in zip(model.weights, chosen.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    last = runs.load_checkpoint(run, config, compile=False)
    assert not all(np.array_equal(a.numpy(), b.numpy())
                   for a, b in zip(chosen.weights, last.weights))
    # Run again: early stopping ended it, so nothing trains and nothing is written.
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*")}
    _, again = train(config, run, verbose=0,
                     data_arrays=(np.concatenate([blank, white]), blank[:64]))
    assert again == history
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*")} == before
    # The trainer reads best.weights.h5 the checked way too: an altered file is refused.
    best = run / runs.BEST
    raw = best.read_bytes()
    best.write_bytes(raw[:-1] + bytes([raw[-1] ^ 1]))
    with pytest.raises(runs.CheckpointError, match="missing or altered"):
        train(config, run, verbose=0, data_arrays=(np.concatenate([blank, white]), blank[:64]))
