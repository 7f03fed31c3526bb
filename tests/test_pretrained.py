import shutil

import pytest

from vae_course import losses, metrics, pretrained, publish

NAME = "mnist-conv-latent2"


def test_manifest_records_how_each_model_was_made():
    assert NAME in pretrained.names()
    for name in pretrained.names():
        entry = pretrained.info(name)
        for key in ("kind", "file", "sha256", "config", "epochs", "train_seconds", "versions"):
            assert key in entry, (name, key)
        assert (pretrained.DIRECTORY / entry["file"]).stat().st_size < 10 * 2**20
        if entry["kind"] == "vae":
            for key in ("preset", "test_elbo", "is_nll", "is_k", "is_test_images", "assets"):
                assert key in entry, (name, key)
            assert entry["is_nll"] > 0 and entry["test_elbo"] < 0


@pytest.mark.slow
def test_pretrained_model_reproduces_its_manifest_elbo(binary_test_images):
    model = pretrained.load(NAME)
    x, _ = binary_test_images
    elbo = metrics.elbo(model, x, seed=0).mean()
    assert elbo == pytest.approx(pretrained.info(NAME)["test_elbo"], abs=0.3)
    assert elbo >= -152  # the chapter's model beats the tutorial's -157


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(pretrained.PretrainedError, match=NAME):
        pretrained.load("mnist-conv-latent3")


def test_altered_or_missing_files_are_refused(tmp_path, monkeypatch):
    shutil.copytree(pretrained.DIRECTORY, tmp_path / "pretrained")
    monkeypatch.setattr(pretrained, "DIRECTORY", tmp_path / "pretrained")
    monkeypatch.setattr(pretrained, "MANIFEST", tmp_path / "pretrained" / "manifest.json")
    path = tmp_path / "pretrained" / pretrained.info(NAME)["file"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(pretrained.PretrainedError, match="expected SHA-256"):
        pretrained.load(NAME)
    path.unlink()
    with pytest.raises(pretrained.PretrainedError, match="missing"):
        pretrained.load(NAME)
    with pytest.raises(pretrained.PretrainedError, match="no asset"):
        pretrained.asset(NAME, "weights")


def test_assets_are_checked_and_readable():
    from PIL import Image

    with Image.open(pretrained.asset(NAME, "gif")) as gif:
        assert gif.format == "GIF"
        assert gif.n_frames == pretrained.info(NAME)["epochs"]  # one frame per epoch
    log = pretrained.asset(NAME, "log").read_text().splitlines()
    assert log[0].startswith("epoch,") and len(log) == 1 + pretrained.info(NAME)["epochs"]


def test_add_entry_keeps_other_entries_and_records_provenance(tmp_path, monkeypatch):
    manifest = tmp_path / "manifest.json"
    manifest.write_text(pretrained.MANIFEST.read_text())
    monkeypatch.setattr(pretrained, "MANIFEST", manifest)
    before = pretrained.manifest()
    entry = {"kind": "vae", "note": "test", **publish.provenance()}
    publish.add_entry("extra", entry)
    after = pretrained.manifest()
    assert after == {**before, "extra": entry}
    assert set(entry["versions"]) == {"vae_course", "keras", "tensorflow", "numpy", "python"}
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]  # no temporary left


@pytest.fixture(scope="module")
def cifar_test(data_dir):
    from vae_course import data

    (_, _), (x_test, _) = data.load_cifar10()
    return x_test


def test_cifar_models_reproduce_their_manifest_and_meet_the_chapter_bars(cifar_test):
    from vae_course.cifar import DIMS

    conv, flow = pretrained.info("cifar-conv"), pretrained.info("cifar-iaf")
    assert conv["epochs"] == flow["epochs"] and conv["config"]["learning_rate"] == \
        flow["config"]["learning_rate"]                       # the same budget
    assert flow["test_bpd"] <= 4.8                             # the chapter's bar
    assert flow["test_bpd"] < conv["test_bpd"]                 # IAF beats the diagonal Gaussian
    for entry in (conv, flow):
        assert entry["is_bpd"] <= entry["test_bpd"]            # the IWAE bound is tighter
    x = cifar_test[:300]
    for name in ("cifar-conv", "cifar-iaf"):
        bpd = losses.bits_per_dim(-metrics.elbo(pretrained.load(name), x).mean(), DIMS)
        assert bpd == pytest.approx(pretrained.info(name)["test_bpd"], abs=0.15), name


@pytest.mark.slow
def test_cli_evaluates_a_pretrained_cifar_model_in_bits_per_dim(data_dir):
    import os
    import subprocess
    import sys

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run([sys.executable, "-m", "vae_course", "evaluate", "cifar-iaf", "--k",
                             "4", "--examples", "16"], capture_output=True, text=True, env=env,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "CIFAR-10 8-bit images" in result.stdout and "bits/dim: ELBO" in result.stdout
