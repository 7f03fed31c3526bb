"""The command line as a reader meets it: fast, quiet --help; every shipped model listed;
clear refusals; evaluate with progress and the time left on stderr, the same numbers as
metrics.evaluate; no TensorFlow start-up lines."""

import io
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vae_course import _console, pretrained

# What TensorFlow prints while starting (absl's early INFO/WARNING lines, the CPU notice).
TF_NOISE = re.compile(r"absl::InitializeLog|^[IWE]\d{4} |cpu_feature_guard|oneDNN|cuda", re.M)


def cli(*args, timeout=600):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "vae_course", *args], capture_output=True,
                            text=True, env=env, timeout=timeout)
    return result, time.perf_counter() - start


def test_help_is_fast_and_imports_neither_keras_nor_tensorflow():
    result, seconds = cli("--help")
    assert result.returncode == 0 and "evaluate" in result.stdout and "pretrained" in result.stdout
    assert result.stderr == ""
    assert seconds < 5, seconds   # 0.1-0.2 s here; importing TensorFlow took 8 s
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    imports = subprocess.run([sys.executable, "-m", "vae_course", "--help"], capture_output=True,
                             text=True, env=env, timeout=60).stderr
    loaded = {line.rsplit("|", 1)[-1].strip() for line in imports.splitlines()}
    assert not loaded & {"keras", "tensorflow", "jax", "torch"}


def test_console_script_is_installed():
    script = Path(sys.executable).with_name("vae-course")
    if not script.exists():
        pytest.skip("no vae-course script next to this Python (package not pip-installed)")
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith("usage:")


def test_pretrained_lists_every_shipped_model_without_tensorflow_noise():
    result, _ = cli("pretrained")
    assert result.returncode == 0, result.stderr[-2000:]
    listed = [line.split()[0] for line in result.stdout.splitlines()]
    assert listed == pretrained.names()
    assert not TF_NOISE.search(result.stderr), result.stderr


def test_evaluating_an_autoencoder_says_why_not_and_what_to_use(data_dir):
    result, _ = cli("evaluate", "mnist-conv-ae-2")
    assert result.returncode == 2 and result.stdout == ""
    assert "is an autoencoder: it has no likelihood" in result.stderr
    assert "reconstruction_error" in result.stderr
    assert not TF_NOISE.search(result.stderr), result.stderr


def test_evaluate_reports_progress_on_stderr_and_results_on_stdout(data_dir):
    result, _ = cli("evaluate", "mnist-mlp-latent2", "--k", "5", "--examples", "60")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "importance-sampled NLL (K=5)" in result.stdout
    assert "test images: 60" in result.stdout
    assert "scoring 60 test images" in result.stderr
    assert "importance sampling: 60/60 images" in result.stderr
    assert not TF_NOISE.search(result.stderr), result.stderr


def test_evaluate_with_progress_gives_metrics_evaluate_numbers(data_dir):
    from vae_course import metrics
    from vae_course.configs import TrainConfig

    for name in ("mnist-mlp-latent2", "cifar-conv"):   # binarized MNIST; 8-bit CIFAR-10
        model = pretrained.load(name)
        config = TrainConfig.from_dict(pretrained.info(name)["config"])
        out = io.StringIO()
        got = _console.evaluate_with_progress(model, config, k=3, examples=24, stream=out)
        assert got == metrics.evaluate(model, config, k=3, examples=24), name
        assert "importance sampling: 24/24 images" in out.getvalue()


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_draws_a_keras_bar_on_a_terminal_and_warns_of_a_long_run(capsys):
    stream = _Terminal()
    progress = _console.Progress(total=100, k=10, stream=stream, long_seconds=0)
    for _ in range(4):
        progress(25 * 10)            # 25 images with all K samples each
    text = stream.getvalue()
    assert "100/100" in text and "note: at this rate" in text and "--examples" in text
    assert capsys.readouterr().out == ""          # nothing on stdout


def test_progress_lines_without_a_terminal_say_the_time_left():
    stream = io.StringIO()
    progress = _console.Progress(total=10, k=4, stream=stream)
    for _ in range(10):
        progress(4)
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("importance sampling: 1/10 images") and "left" in lines[0]
    assert lines[-1].endswith("done") and len(lines) == 10


def test_quiet_import_drops_start_up_lines_but_keeps_the_rest(tmp_path):
    """In a fresh process: TensorFlow's start-up lines go, a real message written to fd 2
    while TensorFlow starts stays."""
    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        pytest.skip("TensorFlow backend only")
    code = ("import os, sys\n"
            "os.environ.pop('TF_CPP_MIN_LOG_LEVEL', None)\n"
            "import builtins\n"
            "real = builtins.__import__\n"
            "def noisy(name, *a, **k):\n"
            "    if name == 'tensorflow' and 'tensorflow' not in sys.modules:\n"
            "        os.write(2, b'a real warning\\n')\n"
            "    return real(name, *a, **k)\n"
            "builtins.__import__ = noisy\n"
            "from vae_course import _console\n"
            "_console.quiet_tensorflow_import()\n"
            "import keras\n"
            "keras.ops.zeros(2)\n")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "a real warning" in result.stderr
    assert not TF_NOISE.search(result.stderr), result.stderr
