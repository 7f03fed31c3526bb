"""The benchmark scripts run (on a slice): their numbers live in the README, not in asserts."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_train_throughput_benchmark_runs_and_prints_its_table(tmp_path, data_dir):
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "train_throughput.py"), "--quick",
         "--epochs", "2", "--json", str(out)],
        capture_output=True, text=True, timeout=900, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "reference loop (tutorial), batch 32" in result.stdout
    assert "package trainer, mnist-conv preset" in result.stdout
    assert "package trainer, tutorial settings, batch 32" in result.stdout
    import json

    numbers = json.loads(out.read_text())
    assert all(v > 0 for v in numbers["images_per_s"].values())
    assert len(numbers["reference"]) == 2 and len(numbers["recommended"]) == 2
    assert {len(v) for v in numbers["block_seconds"].values()} == {3}   # --quick: 3 rounds
    assert {len(v) for v in numbers["block_cpu_seconds"].values()} == {3}
    assert all(v > 0 for v in numbers["epoch_images_per_s"].values())
    low, high = numbers["paired_ratio_interval"]["trainer"]
    assert low <= numbers["paired_ratio"]["trainer"] <= high


def test_train_throughput_interval_brackets_the_geometric_mean():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from train_throughput import geometric_mean_with_interval
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    assert geometric_mean_with_interval([2.0, 2.0, 2.0]) == (2.0, (2.0, 2.0))
    mean, (low, high) = geometric_mean_with_interval([1.0, 4.0] * 10)
    assert abs(mean - 2.0) < 1e-12 and 1.0 < low < 2.0 < high < 4.0


@pytest.mark.slow
def test_input_pipeline_benchmark_runs_and_prints_its_table(data_dir):
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "input_pipeline.py"), "--quick"],
        capture_output=True, text=True, timeout=900, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line for line in result.stdout.splitlines() if line.rstrip().endswith("x")]
    assert len(rows) == 3, result.stdout   # mnist-conv, mnist-mlp, cifar-iaf, each with a ratio
    assert all(float(line.split()[-1].rstrip("x")) > 0 for line in rows)


@pytest.mark.slow
def test_importance_sampling_benchmark_runs_and_prints_its_table(data_dir):
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "importance_sampling.py"), "--k", "20",
         "--examples", "50"],
        capture_output=True, text=True, timeout=900, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "mnist-conv-latent2" in result.stdout and "peak RSS" in result.stdout


@pytest.mark.slow
def test_backend_throughput_benchmark_runs_under_each_installed_backend(data_dir):
    import importlib.util

    backends = ["tensorflow"] + [b for b in ("jax", "torch") if importlib.util.find_spec(b)]
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "backend_throughput.py"), "--examples", "256",
         "--backends", ",".join(backends), "--rounds", "1"],
        capture_output=True, text=True, timeout=900, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-3000:]
    import json

    rows = json.loads(result.stdout.strip().splitlines()[-1])
    assert [r["backend"] for r in rows] == backends
    assert all(r["images_per_s"] > 0 and r["elbo"] < 0 for r in rows)
