"""Run folders: one run per folder, everything checked before the first byte is written, a
checkpoint that is always verified, and crash leftovers that are completed or cleaned up."""

import csv
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

from vae_course import configs, runs
from vae_course.__main__ import main
from vae_course.runs import CheckpointError, RunConflictError
from vae_course.train import train

# The CLI's "quick" preset, one epoch: a run the CLI's `train quick --epochs 2` resumes.
QUICK1 = configs.get_preset("quick").replace(epochs=1)


def snapshot(folder):
    """Every file's SHA-256 (and every folder) under ``folder``: equal before and after means
    nothing was written, created or deleted."""
    if not folder.exists():
        return None
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest()
                                         if p.is_file() else "folder")
            for p in sorted(folder.rglob("*"))}


def rows(run):
    with open(run / "log.csv", newline="") as f:
        return list(csv.DictReader(f))


def cli(argv, capsys):
    """``python -m vae_course ARGV`` in this process: (exit status, stderr)."""
    try:
        status = main([str(a) for a in argv])
    except SystemExit as exit_:   # argparse's usage errors
        status = exit_.code
    return status, capsys.readouterr().err


@pytest.fixture(scope="module")
def small(binary_test_images):
    """(train, test) arrays small enough for a run of a few seconds."""
    x = binary_test_images[0]
    return x[:256], x[:64]


@pytest.fixture(scope="module")
def finished(tmp_path_factory, small):
    """A finished one-epoch run of the quick preset (latent 2), and beside it the checkpoint
    of a latent-3 model (untrained: only its architecture matters)."""
    from vae_course.factory import build_model

    base = tmp_path_factory.mktemp("finished")
    train(QUICK1, base / "latent2", verbose=0, data_arrays=small)
    with warnings.catch_warnings():   # "not yet built": its networks are, which is what counts
        warnings.simplefilter("ignore")
        build_model(QUICK1.replace(latent_dim=3)).save(base / "latent3.keras")
    return base


@pytest.fixture
def run(finished, tmp_path):
    """A copy of the finished latent-2 run."""
    shutil.copytree(finished / "latent2", tmp_path / "run")
    return tmp_path / "run"


# -- one run per folder --------------------------------------------------------------------
@pytest.mark.slow
def test_a_second_process_is_refused_at_once_naming_the_first(tmp_path, capsys):
    """The lock is the kernel's (flock): held while the process lives, gone when it is killed."""
    folder = tmp_path / "run"
    folder.mkdir()
    code = ("import sys, time\nfrom vae_course import runs\nlock = runs.RunLock(sys.argv[1])\n"
            "lock.acquire()\nprint('locked', flush=True)\ntime.sleep(300)\n")
    # (Keras's numpy backend: the holder starts in a second, without TensorFlow)
    holder = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE,
                              text=True, env={**os.environ, "KERAS_BACKEND": "numpy"})
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = snapshot(folder)
        with pytest.raises(runs.RunBusyError, match=f"PID {holder.pid}"):
            runs.RunLock(folder).acquire()
        status, err = cli(["train", "quick", "--out", folder], capsys)
        assert status == 2 and f"PID {holder.pid}" in err and "one run per folder" in err, err
        assert snapshot(folder) == before
    finally:
        holder.kill()   # SIGKILL: no handler, no clean-up, as if the machine lost power
        holder.wait(timeout=60)
    lock = runs.RunLock(folder)   # the kernel released the dead process's lock
    lock.acquire()
    lock.release()


def test_in_one_process_a_second_train_into_a_busy_folder_is_refused(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    lock = runs.RunLock(folder)
    lock.acquire()
    try:
        with pytest.raises(runs.RunBusyError, match=f"PID {os.getpid()}"):
            train(QUICK1, folder, verbose=0)
    finally:
        lock.release()
    assert list(folder.iterdir()) == []   # the lock file goes with a clean release


@pytest.mark.slow
def test_two_cli_runs_into_one_folder(tmp_path, capsys, data_dir):
    """Before the lock, both ran and wrote every epoch twice into log.csv."""
    out = tmp_path / "run"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    first = subprocess.Popen([sys.executable, "-m", "vae_course", "train", "quick", "--epochs",
                              "40", "--out", str(out), "--quiet"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.time() + 600
        while not (out / "state.json").exists() and time.time() < deadline:
            assert first.poll() is None, first.stderr.read()[-2000:]
            time.sleep(0.2)
        status, err = cli(["train", "quick", "--epochs", "3", "--out", out, "--quiet"], capsys)
        assert status == 2, err[-2000:]
        assert f"PID {first.pid}" in err and err.startswith("error: ") and "Traceback" not in err
    finally:
        first.kill()
        first.wait(timeout=60)
    done = json.loads((out / "state.json").read_text())["epoch"]
    # the killed run left its lock file; the folder is free again and resumes
    status, err = cli(["train", "quick", "--epochs", done + 1, "--out", out, "--quiet"], capsys)
    assert status == 0, err[-2000:]
    assert [int(r["epoch"]) for r in rows(out)] == list(range(1, done + 2))


# -- temporary files -------------------------------------------------------------------------
def test_temporary_names_carry_the_process_id(tmp_path):
    pid = str(os.getpid())
    pending = runs.pending_checkpoint(tmp_path)
    assert pid in pending.name and pending.name.endswith(".keras")
    assert pid in runs.temporary(tmp_path / "state.json").name
    runs.atomic_write_text(tmp_path / "state.json", "{}")
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


@pytest.mark.slow
def test_every_file_a_run_writes_goes_through_a_per_process_name(tmp_path, small, monkeypatch):
    replaced = []
    real_replace = os.replace

    def recording_replace(src, dst):
        replaced.append(os.path.basename(src))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", recording_replace)
    run = tmp_path / "new" / "nested"   # folders that do not exist yet
    train(QUICK1, run, verbose=0, data_arrays=small)
    pid = str(os.getpid())
    assert replaced and all(pid in name for name in replaced), replaced
    # nothing temporary is left behind, nor the lock
    assert sorted(p.name for p in run.iterdir()) == [
        "checkpoint.keras", "config.json", "images", "log.csv", "progress.gif", "state.json"]


def test_a_crash_between_recording_and_renaming_a_checkpoint_rolls_forward(run, finished):
    """state.json records the new checkpoint's SHA-256 before the file replaces the old one:
    a resume completes the rename, whichever process (PID) wrote the pending file."""
    # As if process 4242 had crashed while saving epoch 2: the new checkpoint written under
    # its pending name, state.json and log.csv updated, no rename yet (checkpoint.keras still
    # the epoch before's); and a half-written pending file of an earlier crash (PID 17).
    new = (run / "checkpoint.keras").read_bytes()
    (run / ".tmp-4242-checkpoint.keras").write_bytes(new)
    shutil.copy(finished / "latent3.keras", run / "checkpoint.keras")
    state = json.loads((run / "state.json").read_text())
    (run / "state.json").write_text(json.dumps({**state, "epoch": 2}))
    log = rows(run)
    with open(run / "log.csv", "a", newline="") as f:
        csv.DictWriter(f, fieldnames=list(log[0])).writerow({**log[0], "epoch": 2})
    (run / ".tmp-17-checkpoint.keras").write_bytes(b"half a zip")
    (run / ".log.csv.17.tmp").write_text("epoch\n")
    # Reading the run (evaluate, export) loads the recorded checkpoint and changes nothing.
    before = snapshot(run)
    model = runs.load_checkpoint(run, QUICK1, compile=False)
    assert model.latent_dim == 2 and snapshot(run) == before
    # Resuming completes the rename and clears the leftovers.
    _, history = train(QUICK1.replace(epochs=2), run, verbose=0)
    assert (run / "checkpoint.keras").read_bytes() == new
    assert [int(r["epoch"]) for r in history] == [1, 2]
    assert not [p.name for p in run.iterdir() if p.name.startswith(".")]


# -- validate before writing ------------------------------------------------------------------
def _sha_into_state(run):
    state = json.loads((run / "state.json").read_text())
    state["checkpoint_sha256"] = hashlib.sha256((run / "checkpoint.keras").read_bytes()).hexdigest()
    (run / "state.json").write_text(json.dumps(state))


def _other_architecture(run, finished):
    shutil.copy(finished / "latent3.keras", run / "checkpoint.keras")
    _sha_into_state(run)


def _unreadable_archive(run, finished):
    (run / "checkpoint.keras").write_bytes(b"PK\x03\x04 not really a zip archive")
    _sha_into_state(run)


def _blocked_by_safe_mode(run, finished):
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Lambda(lambda t: t * 2)])
    model.save(run / "checkpoint.keras")   # a Lambda layer: code that safe mode will not run
    _sha_into_state(run)


def _edit_state(**changes):
    def edit(run, finished):
        state = {**json.loads((run / "state.json").read_text()), **changes}
        (run / "state.json").write_text(json.dumps({k: v for k, v in state.items()
                                                    if v is not None}))
    return edit


def _write(name, text):
    def write(run, finished):
        (run / name).write_text(text)
    return write


REFUSED_RESUMES = {
    "another architecture": (_other_architecture, "different architecture"),
    "unreadable archive": (_unreadable_archive, "could not be loaded"),
    "blocked by safe mode": (_blocked_by_safe_mode, "could not be loaded"),
    "no checksum": (_edit_state(checkpoint_sha256=None), "state.json.*checkpoint_sha256"),
    "malformed checksum": (_edit_state(checkpoint_sha256="abc123"),
                           "state.json.*checkpoint_sha256.*64 hexadecimal"),
    "corrupt state.json": (_write("state.json", "{epoch: 1"), "state.json.*not valid JSON"),
    "state.json of the wrong kind": (_write("state.json", "[1, 2]"), "state.json.*JSON object"),
    "corrupt config.json": (_write("config.json", "{\n  'model': conv"),
                            "config.json.*not valid JSON"),
    "foreign config.json": (_write("config.json", '{"name": "my-app", "port": 80}'),
                            "config.json.*not a vae_course run"),
    "corrupt log.csv": (_write("log.csv", "epoch,elbo\none,2\n"), "log.csv"),
    "different settings": (None, "latent_dim: 2 in the directory, 3 now"),
}


@pytest.mark.parametrize("case", list(REFUSED_RESUMES))
def test_a_refused_resume_writes_nothing(case, run, finished, capsys, data_dir):
    """The same CLI command with more epochs (config.json: epochs 1 -> 2) is refused, and
    every file in the folder stays byte for byte as it was."""
    damage, message = REFUSED_RESUMES[case]
    extra = []
    if damage is None:
        extra = ["--latent-dim", "3"]
    else:
        damage(run, finished)
    before = snapshot(run)
    status, err = cli(["train", "quick", "--epochs", "2", "--out", run, "--quiet", *extra],
                      capsys)
    assert status == 2, err[-3000:]
    assert err.startswith("error: ") and "Traceback" not in err, err[-3000:]
    assert re.search(message, err, flags=re.S), err
    assert "Nothing was changed" in err
    assert snapshot(run) == before


def test_a_missing_checksum_is_refused_by_every_reader(run):
    _edit_state(checkpoint_sha256=None)(run, None)
    before = snapshot(run)
    with pytest.raises(CheckpointError, match="checkpoint_sha256"):
        runs.load_checkpoint(run, QUICK1, compile=False)
    with pytest.raises(CheckpointError, match="checkpoint_sha256"):
        train(QUICK1.replace(epochs=2), run, verbose=0)
    assert snapshot(run) == before


def test_an_altered_or_missing_checkpoint_is_refused_and_kept(run):
    ckpt = run / "checkpoint.keras"
    original = ckpt.read_bytes()
    ckpt.write_bytes(original[: len(original) // 2])       # truncated, as by a full disk
    before = snapshot(run)
    with pytest.raises(CheckpointError, match="altered or truncated: expected SHA-256"):
        train(QUICK1.replace(epochs=2), run, verbose=0)
    assert snapshot(run) == before                         # nothing was overwritten
    ckpt.unlink()
    before = snapshot(run)
    with pytest.raises(CheckpointError, match="missing.*1 finished epoch"):
        train(QUICK1.replace(epochs=2), run, verbose=0)
    assert snapshot(run) == before                         # the log was not reset


def test_a_checkpoint_of_another_architecture_is_refused(run):
    with pytest.raises(CheckpointError, match="different architecture"):
        runs.load_checkpoint(run, QUICK1.replace(latent_dim=5))


def test_a_different_run_in_the_same_directory_is_refused(run):
    before = snapshot(run)
    with pytest.raises(RunConflictError, match="latent_dim"):
        train(QUICK1.replace(latent_dim=3), run, verbose=0)
    assert snapshot(run) == before


# -- which folders a new run may use ----------------------------------------------------------
@pytest.mark.backends
@pytest.mark.parametrize("names", [["notes.txt"], [".git/"], [".bashrc"], [".git/", ".bashrc"],
                                   ["images/"]])
def test_a_folder_holding_anything_a_run_did_not_write_is_refused(tmp_path, names):
    folder = tmp_path / "home"
    folder.mkdir()
    for name in names:
        if name.endswith("/"):
            (folder / name).mkdir()
            (folder / name / "HEAD").write_text("ref: refs/heads/main\n")
        else:
            (folder / name).write_text("mine")
    before = snapshot(folder)
    with pytest.raises(RunConflictError) as err:
        train(QUICK1, folder, verbose=0)
    message = str(err.value)
    assert names[0].rstrip("/") in message and "hidden files count too" in message, message
    assert "Nothing was changed" in message
    assert snapshot(folder) == before


def test_a_refused_new_run_leaves_no_folder_behind(tmp_path, small):
    bad = np.full_like(small[0], np.nan)
    with pytest.raises(ValueError, match="NaN"):
        train(QUICK1, tmp_path / "new" / "run", verbose=0, data_arrays=(bad, small[1]))
    assert list(tmp_path.iterdir()) == []


def test_check_only_runs_every_check_and_writes_nothing(run, tmp_path, small):
    before = snapshot(run)
    model, history = train(QUICK1.replace(epochs=5), run, verbose=0, data_arrays=small,
                           check_only=True)
    assert model.latent_dim == 2 and history is None
    assert snapshot(run) == before
    model, _ = train(QUICK1, tmp_path / "fresh", verbose=0, data_arrays=small, check_only=True)
    assert not (tmp_path / "fresh").exists()
