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


def _iaf_seeds():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import iaf_seeds
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return iaf_seeds


def test_the_study_t_quantiles_match_the_tables():
    t_quantile = _iaf_seeds().t_quantile
    for df, table in [(1, 12.706), (2, 4.303), (3, 3.182), (4, 2.776), (9, 2.262), (30, 2.042)]:
        assert t_quantile(0.975, df) == pytest.approx(table, abs=1e-3), df


def test_iaf_study_tables_are_means_spreads_and_paired_differences():
    """The seed and decoder x posterior tables of benchmarks/iaf_seeds.py, on made-up scores."""
    study = _iaf_seeds()
    scores = {}
    for seed, (diag, iaf) in enumerate([(5.0, 4.9), (5.2, 5.0), (5.1, 5.1)]):
        scores[f"joint/diagonal/{seed}"] = {"elbo_bpd": diag, "is_bpd": diag - 0.1}
        scores[f"joint/iaf/{seed}"] = {"elbo_bpd": iaf, "is_bpd": iaf - 0.1}
        for d, shift in (("diagonal", 0.0), ("iaf", 0.3)):      # the IAF decoder is worse
            for q, gain in (("diagonal", 0.0), ("iaf", 0.2)):   # the IAF posterior is better
                value = 5.0 + shift - gain + 0.01 * seed
                scores[f"refit/{d}-decoder/{q}/{seed}"] = {"elbo_bpd": value, "is_bpd": value}
    results = {"scores": scores}
    study.table(results, [0, 1, 2], "joint")
    study.table(results, [0, 1, 2], "refit")
    gain = results["joint"]["elbo_bpd"]["iaf_gain"]
    assert gain["per_seed"] == pytest.approx([0.1, 0.2, 0.0])
    assert (gain["mean"], gain["sd"], gain["iaf_better_in"]) == (
        pytest.approx(0.1), pytest.approx(0.1), 2)
    grid = results["refit"]["is_bpd"]
    assert grid["posterior_gain_on_diagonal_decoder"]["mean"] == pytest.approx(0.2)
    assert grid["posterior_gain_on_iaf_decoder"]["mean"] == pytest.approx(0.2)
    assert grid["decoder_gain_with_iaf_posterior"]["mean"] == pytest.approx(-0.3)
    assert grid["iaf-decoder/diagonal"]["sd"] == pytest.approx(0.01)
    low, high = gain["ci95"]      # mean ± t(0.975, 2) * sd / sqrt(3)
    assert (low, high) == (pytest.approx(0.1 - 4.3027 * 0.1 / 3 ** 0.5, abs=1e-4),
                           pytest.approx(0.1 + 4.3027 * 0.1 / 3 ** 0.5, abs=1e-4))


def test_the_shipped_iaf_study_is_what_its_scores_say():
    """Every summary in the shipped study (the IAF chapter reads it) is recomputed from the
    per-model scores it holds: nothing in it was typed."""
    import copy
    import json

    from vae_course import pretrained

    def flat(tree, prefix=""):
        items = tree.items() if isinstance(tree, dict) else (
            enumerate(tree) if isinstance(tree, list) else None)
        if items is None:
            return {prefix: tree}
        return {k: v for key, sub in items for k, v in flat(sub, f"{prefix}/{key}").items()}

    shipped = json.loads(pretrained.asset("cifar-iaf", "study").read_text())
    recomputed = copy.deepcopy(shipped)
    for kind in ("joint", "refit"):
        _iaf_seeds().table(recomputed, shipped[kind]["seeds"], kind)
        assert flat(recomputed[kind]) == pytest.approx(flat(shipped[kind]), nan_ok=True), kind
    assert len(shipped["seeds"]) >= 3 and shipped["refit"]["seeds"]
    assert shipped["command"].startswith("python benchmarks/iaf_seeds.py")
