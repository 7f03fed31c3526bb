"""The command line (and the Python functions behind it): an ordinary mistake gets one line,
``error: <what was expected, what was received, what to do>``, and exit status 2, never a
traceback; a refused command changes no file."""

import hashlib
import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from vae_course import configs, data, metrics, widgets
from vae_course.__main__ import main

QUICK1 = configs.get_preset("quick").replace(epochs=1)
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def snapshot(folder):
    if not folder.exists():
        return None
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest()
                                         if p.is_file() else "folder")
            for p in sorted(folder.rglob("*"))}


def cli(argv, capsys):
    """``python -m vae_course ARGV`` in this process: (exit status, stdout, stderr)."""
    try:
        status = main([str(a) for a in argv])
    except SystemExit as exit_:   # argparse's own usage errors
        status = exit_.code
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_line_error(status, err, *fragments):
    assert status == 2, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err[-3000:]
    for fragment in fragments:
        assert fragment in err, (fragment, err)


@pytest.mark.slow
def test_cli_trains_and_reports(tmp_path, data_dir):
    out = tmp_path / "cli-run"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    cmd = [sys.executable, "-m", "vae_course", "train", "quick", "--epochs", "1",
           "--latent-dim", "3", "--steps-per-execution", "4", "--out", str(out), "--quiet"]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    saved = json.loads((out / "config.json").read_text())
    assert saved["latent_dim"] == 3 and saved["steps_per_execution"] == 4
    ev = subprocess.run([sys.executable, "-m", "vae_course", "evaluate", str(out), "--k", "10",
                         "--examples", "50"], capture_output=True, text=True, env=env, timeout=600)
    assert ev.returncode == 0, ev.stderr[-2000:]
    assert "importance-sampled NLL (K=10)" in ev.stdout
    bad = subprocess.run([sys.executable, "-m", "vae_course", "train", "nope"],
                         capture_output=True, text=True, env=env, timeout=600)
    assert bad.returncode == 2 and "Valid presets" in bad.stderr
    assert "Traceback" not in bad.stderr


# -- --out ------------------------------------------------------------------------------------
def test_out_naming_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    before = snapshot(tmp_path)
    status, _, err = cli(["train", "quick", "--out", tmp_path / "notes.txt"], capsys)
    assert_one_line_error(status, err, "--out", "notes.txt", "is a file")
    status, _, err = cli(["train", "quick", "--out", tmp_path / "notes.txt" / "run"], capsys)
    assert_one_line_error(status, err, "--out", "notes.txt", "is a file")
    assert snapshot(tmp_path) == before


@pytest.mark.skipif(IS_ROOT, reason="running as root: chmod does not stop root from writing "
                                    "(test_permissions_as_root_without_its_override covers it)")
def test_out_in_a_read_only_folder_is_refused(tmp_path, capsys):
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        for out in (folder, folder / "run"):
            status, _, err = cli(["train", "quick", "--out", out], capsys)
            assert_one_line_error(status, err, "--out", "read-only", "write")
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


DROP_ROOTS_POWERS = ["setpriv", "--bounding-set=-dac_override,-dac_read_search",
                     "--inh-caps=-dac_override,-dac_read_search"]


@pytest.mark.slow
@pytest.mark.skipif(not IS_ROOT or shutil.which("setpriv") is None,
                    reason="needs root and setpriv (util-linux) to drop root's file-permission "
                           "override; the in-process tests above cover other users")
def test_permissions_as_root_without_its_override(tmp_path, data_dir):
    """Root that cannot override file permissions (setpriv drops CAP_DAC_OVERRIDE): a
    read-only --out and an unreadable data file, through the real command line."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    (tmp_path / "data").mkdir()
    shutil.copy(f"{data_dir}/mnist.npz", tmp_path / "data" / "mnist.npz")
    (tmp_path / "data" / "mnist.npz").chmod(0)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    cmd = [*DROP_ROOTS_POWERS, sys.executable, "-m", "vae_course"]
    for argv, fragments, data_env in [
            (["train", "quick", "--out", str(folder / "run")], ["--out", "Permission denied"],
             data_dir),
            (["train", "quick", "--out", str(folder)], ["--out", "read-only"], data_dir),
            (["evaluate", "mnist-conv-latent2", "--k", "1", "--examples", "2"],
             ["mnist.npz", "could not be read"], str(tmp_path / "data"))]:
        result = subprocess.run(cmd + argv, capture_output=True, text=True, timeout=600,
                                env={**env, data.DATA_ENV: data_env})
        assert result.returncode == 2, result.stderr[-3000:]
        assert "Traceback" not in result.stderr, result.stderr[-3000:]
        errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and all(f in errors[0] for f in fragments), result.stderr
    assert list(folder.iterdir()) == []


# -- arguments --------------------------------------------------------------------------------
@pytest.mark.parametrize("argv, fragments", [
    (["--seed", "-1"], ["seed", "[0, 4294967295]", "-1"]),
    (["--seed", str(2**32)], ["seed", str(2**32)]),
    (["--learning-rate", "nan"], ["learning_rate", "nan"]),
    (["--learning-rate", "inf"], ["learning_rate", "inf"]),
    (["--epochs", "0"], ["epochs", "0"]),
    (["--lr-cooldown", "-3"], ["lr_cooldown", "-3"]),
    (["--batch-size", "-1"], ["batch_size", "-1"]),
    (["--latent-dim", "99999"], ["latent_dim", "99999"]),
    (["--steps-per-execution", "0"], ["steps_per_execution", "0"]),
    (["--patience", "2"], ["validation split", "never used to choose"]),
    (["--validation-examples", "-5"], ["validation_examples", "-5"]),
    (["--iwae-samples", "0"], ["iwae_samples", "[1, 4096]", "0"]),
])
def test_bad_train_arguments_are_refused_before_any_file_is_written(argv, fragments, tmp_path,
                                                                     capsys):
    status, _, err = cli(["train", "quick", "--out", tmp_path / "run", *argv], capsys)
    assert_one_line_error(status, err, *fragments)
    assert list(tmp_path.iterdir()) == []


def test_config_fields_without_a_command_line_option_are_checked_too():
    for change, fragment in [({"seed": -1}, "seed"), ({"seed": 1.5}, "seed"),
                             ({"seed": True}, "seed"), ({"learning_rate": "fast"}, "learning_rate"),
                             ({"learning_rate": True}, "learning_rate"),
                             ({"beta": float("nan")}, "beta"), ({"beta": "1"}, "beta"),
                             ({"train_examples": True}, "train_examples"),
                             ({"test_examples": 0}, "test_examples"),
                             ({"mixed_precision": "yes"}, "mixed_precision"),
                             ({"deterministic": 1}, "deterministic"),
                             ({"description": 3}, "description"),
                             ({"flow_steps": 2}, "flow_steps"), ({"nr_mix": 5}, "nr_mix"),
                             ({"epochs": "10"}, "epochs"), ({"lr_cooldown": 0.5}, "lr_cooldown"),
                             ({"iwae_samples": 5, "beta": 0.5}, "beta 1 with iwae_samples"),
                             ({"iwae_samples": 2.0}, "iwae_samples")]:
        with pytest.raises(ValueError, match=fragment):
            QUICK1.replace(**change)
    with pytest.raises(ValueError, match="JSON object"):
        configs.TrainConfig.from_dict(["not", "a", "dict"])


def test_a_new_run_refused_for_missing_data_leaves_nothing(tmp_path, capsys, monkeypatch):
    empty = tmp_path / "data"
    empty.mkdir()
    monkeypatch.setenv(data.DATA_ENV, str(empty))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))   # no cached download
    status, _, err = cli(["train", "quick", "--out", tmp_path / "runs" / "quick"], capsys)
    assert_one_line_error(status, err, "mnist.npz", data.DATA_ENV)
    assert not (tmp_path / "runs").exists()


# -- data files -------------------------------------------------------------------------------
def test_a_data_file_that_is_a_folder_is_named(tmp_path, monkeypatch, capsys):
    (tmp_path / "mnist.npz").mkdir()
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))
    with pytest.raises(data.DataUnavailableError, match="mnist.npz.*a folder"):
        data.load_mnist()
    status, _, err = cli(["evaluate", "mnist-conv-latent2", "--k", "1", "--examples", "2"],
                         capsys)
    assert_one_line_error(status, err, str(tmp_path / "mnist.npz"))


@pytest.mark.skipif(IS_ROOT, reason="running as root: chmod 000 does not stop root from reading "
                                    "(test_permissions_as_root_without_its_override covers it)")
def test_an_unreadable_data_file_is_named(tmp_path, data_dir, monkeypatch):
    shutil.copy(f"{data_dir}/mnist.npz", tmp_path / "mnist.npz")
    (tmp_path / "mnist.npz").chmod(0)
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))
    with pytest.raises(data.DataUnavailableError, match="mnist.npz.*could not be read"):
        data.load_mnist()


# -- run files --------------------------------------------------------------------------------
@pytest.fixture
def run_files(tmp_path):
    """A run folder with a valid config.json and nothing else."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(QUICK1.to_dict()))
    return run


@pytest.mark.parametrize("name, text, fragments", [
    ("config.json", "{\n  model: conv", ["config.json", "not valid JSON", "line 2"]),
    ("config.json", "", ["config.json", "not valid JSON"]),
    ("config.json", '{"model": "conv", "colour": "blue"}', ["config.json", "colour"]),
    ("state.json", "{", ["state.json", "not valid JSON"]),
    ("state.json", '{"epoch": "two"}', ["state.json", "epoch", "'two'"]),
    ("state.json", b"\xff\xfe{}", ["state.json", "UTF-8"]),
])
def test_corrupt_run_files_are_named_with_what_was_expected(run_files, name, text, fragments,
                                                            capsys):
    if isinstance(text, bytes):
        (run_files / name).write_bytes(text)
    else:
        (run_files / name).write_text(text)
    before = snapshot(run_files)
    for argv in (["evaluate", run_files, "--k", "2"],
                 ["train", "quick", "--epochs", "1", "--out", run_files]):
        status, _, err = cli(argv, capsys)
        assert_one_line_error(status, err, str(run_files / name), *fragments)
        assert snapshot(run_files) == before


def test_evaluating_a_run_without_a_finished_epoch_says_so(run_files, capsys):
    status, _, err = cli(["evaluate", run_files], capsys)
    assert_one_line_error(status, err, str(run_files), "no finished epoch")


def test_evaluating_a_folder_that_is_not_a_run_says_so(tmp_path, capsys):
    status, _, err = cli(["evaluate", tmp_path], capsys)
    assert_one_line_error(status, err, str(tmp_path), "config.json")


@pytest.mark.parametrize("argv, fragments", [
    (["--examples", "-9995"], ["--examples", "-9995"]),
    (["--examples", "0"], ["--examples", "0"]),
    (["--k", "0"], ["--k", "0"]),
    (["--k", "-5"], ["--k", "-5"]),
    (["--k", str(10**7)], ["--k", str(10**7)]),
])
def test_bad_evaluate_arguments_are_refused(argv, fragments, capsys):
    status, _, err = cli(["evaluate", "mnist-conv-latent2", *argv], capsys)
    assert_one_line_error(status, err, *fragments)


def test_export_checks_its_arguments_before_writing(tmp_path, capsys):
    for argv in (["--examples", "-5"], ["--k", "0"]):
        status, _, err = cli(["export-pretrained", tmp_path, "x", *argv], capsys)
        assert_one_line_error(status, err, argv[0])


def test_evaluating_an_autoencoder_points_to_its_measure(capsys):
    status, _, err = cli(["evaluate", "mnist-conv-ae-2", "--k", "2"], capsys)
    assert_one_line_error(status, err, "autoencoder", "reconstruction_error")


# -- the Python functions the CLI calls ------------------------------------------------------
@pytest.fixture(scope="module")
def vae():
    from vae_course import pretrained

    return pretrained.load("mnist-conv-latent2")


@pytest.mark.parametrize("call, match", [
    (lambda m, x: metrics.elbo(m, x, batch_size=0), r"batch_size >= 1.*batch_size=0"),
    (lambda m, x: metrics.elbo(m, x, batch_size=-1), r"batch_size=-1"),
    (lambda m, x: metrics.log_likelihood(m, x, k=2, batch_size=0), r"batch_size=0"),
    (lambda m, x: metrics.log_likelihood(m, x, k=2, max_decode=0), r"max_decode=0"),
    (lambda m, x: metrics.log_likelihood(m, x, k=True), r"k=True"),
    (lambda m, x: metrics.log_likelihood(m, x, k=2.5), r"k=2.5"),
    (lambda m, x: metrics.evaluate(m, QUICK1, k=2, examples=-9995), r"examples=-9995"),
])
def test_metrics_refuse_bad_counts_naming_them(vae, binary_test_images, call, match):
    with pytest.raises(ValueError, match=match):
        call(vae, binary_test_images[0][:4])


def test_metrics_refuse_an_autoencoder_naming_what_to_use():
    from vae_course import pretrained

    ae = pretrained.load("mnist-conv-ae-2")
    for function in (metrics.elbo, metrics.log_likelihood):
        with pytest.raises(TypeError, match="Autoencoder.*reconstruction_error"):
            function(ae, np.zeros((2, 28, 28, 1), "float32"))


@pytest.mark.parametrize("kwargs, match", [
    ({"base": [0.0, 0.0, 0.0]}, r"base of 2 values.*\[0.0, 0.0, 0.0\]"),
    ({"base": [float("nan"), 0.0]}, r"base of 2 values, finite.*nan"),
    ({"base": ["a", "b"]}, r"base of 2 values.*'a'"),
    ({"ranges": [(-math.inf, 3.0), (-3.0, 3.0)]}, r"ranges.*finite.*-inf"),
    ({"ranges": [(0.0, float("nan")), (-3.0, 3.0)]}, r"ranges.*finite.*nan"),
    ({"ranges": [1, 2]}, r"ranges.*\(low, high\).*\[1, 2\]"),
    ({"dims": ["x", "y"]}, r"dims.*integers"),
    ({"scale": -2}, r"scale.*-2"),
    ({"n_dims": 0}, r"n_dims.*0"),
])
def test_explorer_refuses_bad_arguments_naming_them(kwargs, match):
    with pytest.raises(ValueError, match=match):
        widgets.latent_explorer("mnist-conv-latent2", static=True, **kwargs)


def test_explorer_refuses_0_255_pixels_and_mismatched_labels(mnist):
    (_, _), (x_test, y_test) = mnist
    pixels = x_test[:50, ..., None].astype("float32")            # 0-255, not [0, 1]
    with pytest.raises(ValueError, match=r"x.*0-255.*binarize"):
        widgets.latent_explorer("mnist-conv-latent2", pixels, static=True)
    with pytest.raises(ValueError, match=r"x.*0-255"):
        widgets.latent_explorer("mnist-conv-ae-2", pixels, static=True)
    with pytest.raises(ValueError, match=r"y.*50"):
        widgets.latent_explorer("mnist-conv-latent2", data.binarize_static(x_test[:50]),
                                y_test[:10], static=True)


def test_explorer_refuses_what_is_not_a_model():
    from vae_course.pretrained import PretrainedError

    with pytest.raises(PretrainedError, match="Valid names"):
        widgets.latent_explorer("runs/mnist-conv", static=True)
    for thing in (42, np.zeros((2, 2)), None):
        with pytest.raises(TypeError, match="Expected a vae_course model"):
            widgets.latent_explorer(thing, static=True)


# -- any arguments at all: exit 0 or a clean exit 2, and nothing written when refused ---------
def _values():
    return st.one_of(st.integers(0, 64).map(str), st.floats(1e-5, 1.0).map(repr),  # often valid
                     st.integers(-2**40, 2**40).map(str),
                     st.floats(allow_nan=True, allow_infinity=True).map(repr),
                     st.sampled_from(["nan", "inf", "-inf", "-0", "1e309", "", " 3", "1_0",
                                      "0x10", "2.0", "True"]),
                     st.text(max_size=6))


TRAIN_OPTIONS = ["--epochs", "--latent-dim", "--batch-size", "--learning-rate", "--lr-cooldown",
                 "--seed", "--steps-per-execution"]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, binary_test_images):
    """A folder with a finished run (to resume) and a stray file; data loads once."""
    from vae_course.train import train

    base = tmp_path_factory.mktemp("workspace")
    x = binary_test_images[0]
    train(QUICK1, base / "run", verbose=0, data_arrays=(x[:256], x[:64]))
    (base / "notes.txt").write_text("mine")
    return base


def _cached_data(monkeypatch):
    import functools

    for name in ("load_mnist", "load_cifar10"):
        monkeypatch.setattr(data, name, functools.cache(getattr(data, name)))


def _clean_exit(argv, capsys, workspace):
    before = snapshot(workspace)
    status, stdout, err = cli(argv, capsys)
    assert status in (0, 2), (argv, status, err[-3000:])
    assert "Traceback" not in err, (argv, err[-3000:])
    if status == 2:
        assert "error: " in err, (argv, err)
        assert snapshot(workspace) == before, argv   # a refused command writes nothing
    return status, stdout, before


@pytest.mark.slow
def test_any_train_arguments_end_in_exit_0_or_a_clean_exit_2(workspace, capsys, monkeypatch,
                                                            data_dir):
    """``--check-only`` runs every check (the folder, the checkpoint when resuming, the data,
    the model) and stops where the first byte would be written."""
    _cached_data(monkeypatch)
    seen = set()

    @settings(max_examples=50, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow])
    @given(preset=st.one_of(st.sampled_from(["quick", "mnist-mlp-latent2", "tutorial"]),
                            st.text(max_size=12)),
           options=st.dictionaries(st.sampled_from(TRAIN_OPTIONS), _values(), max_size=4),
           out=st.sampled_from(["new/run", "run", "notes.txt"]))
    @example(preset="quick", options={"--epochs": "3", "--lr-cooldown": "1"}, out="run")
    @example(preset="quick", options={"--seed": "-1"}, out="new/run")
    @example(preset="quick", options={"--seed": str(2**32 - 1)}, out="new/run")
    @example(preset="quick", options={"--learning-rate": "nan"}, out="run")
    @example(preset="mnist-mlp-latent2", options={"--latent-dim": "4096", "--batch-size": "65536",
                                                  "--steps-per-execution": "100000"},
             out="new/run")
    def check(preset, options, out):
        argv = ["train", preset, f"--out={workspace / out}", "--check-only", "--quiet"]
        argv += [f"{k}={v}" for k, v in options.items()]
        status, stdout, before = _clean_exit(argv, capsys, workspace)
        if status == 0:
            assert "checked" in stdout and "nothing was written" in stdout, stdout
            assert snapshot(workspace) == before, argv   # --check-only writes nothing
        seen.add(status)

    check()
    assert seen == {0, 2}


@pytest.mark.slow
def test_any_evaluate_arguments_end_in_exit_0_or_a_clean_exit_2(workspace, capsys, monkeypatch,
                                                               data_dir):
    """The two estimators are replaced by stubs that keep their argument checks (the real
    scores are tested in test_metrics.py); everything around them runs for real."""
    import functools

    from vae_course import pretrained

    _cached_data(monkeypatch)
    monkeypatch.chdir(workspace)
    monkeypatch.setattr(pretrained, "load", functools.cache(pretrained.load))

    def elbo(model, x, **kwargs):
        metrics._check_model(model, "elbo")
        return np.zeros(data.count(x))

    def log_likelihood(model, x, k=1000, **kwargs):
        metrics._check_model(model, "log_likelihood")
        metrics._check_count("k", k, 1, 1_000_000)
        return np.zeros(data.count(x))

    monkeypatch.setattr(metrics, "elbo", elbo)
    monkeypatch.setattr(metrics, "log_likelihood", log_likelihood)
    seen = set()

    @settings(max_examples=40, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow])
    @given(source=st.one_of(st.sampled_from(["mnist-conv-latent2", "mnist-conv-ae-2", "run",
                                             "notes.txt", "."]), st.text(max_size=12)),
           k=st.one_of(st.none(), _values()), examples=st.one_of(st.none(), _values()))
    @example(source="run", k="10", examples="50")
    @example(source="run", k="0", examples=None)
    @example(source="mnist-conv-latent2", k=None, examples="-9995")
    def check(source, k, examples):
        argv = ["evaluate", source] + [f"--{n}={v}" for n, v in (("k", k), ("examples", examples))
                                       if v is not None]
        status, stdout, before = _clean_exit(argv, capsys, workspace)
        if status == 0:
            assert "test ELBO" in stdout
            assert snapshot(workspace) == before, argv   # evaluating writes nothing
        seen.add(status)

    check()
    assert seen == {0, 2}


def test_tensorboard_logs_or_a_clear_refusal(tmp_path, capsys):
    """--tensorboard needs the tensorboard package (not in the lock): without it the run is
    refused before anything is written; with it, Keras's event files land in the run."""
    import importlib.util

    out = tmp_path / "tb-run"
    argv = ["train", "quick", "--epochs", "1", "--out", str(out), "--quiet", "--tensorboard"]
    if importlib.util.find_spec("tensorboard") is None:
        assert main(argv) == 2
        assert "pip install tensorboard" in capsys.readouterr().err
        assert not out.exists()
    else:   # pragma: no cover  (an environment with tensorboard installed)
        assert main(argv) == 0
        assert list((out / "tensorboard").rglob("events.out.tfevents.*"))
