"""Shipped models are weights files read into architectures built from code (pretrained.build),
so they load on every Keras the package accepts; `make floors` runs this file on the lowest."""

import json
import shutil

import keras
import numpy as np
import pytest

from vae_course import autoencoders, pretrained, publish


def test_every_shipped_model_is_a_weights_file_that_fills_its_architecture():
    for name in pretrained.names():
        entry = pretrained.info(name)
        assert entry["file"] == f"{name}.weights.h5", name
        model = pretrained.load(name)
        assert all(layer.built for layer in model._flatten_layers()), name
        # every variable of the model came from the file (none left at its initial value)
        fresh = pretrained.build(name)
        assert len(fresh.weights) == len(model.weights) == pretrained._variables_in(
            pretrained.DIRECTORY / entry["file"]), name
        changed = [not np.array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
                   for a, b in zip(fresh.weights, model.weights) if np.size(a) > 1]
        assert all(changed), (name, changed.count(False))


def test_loading_does_not_depend_on_what_was_built_before():
    """Weight paths come from the architecture, not from Keras's per-session layer names."""
    name = "mnist-conv-latent2"
    first = pretrained.load(name)
    for other in ("mnist-mlp-latent2", "cifar-iaf", "mnist-conv-ae-2"):
        pretrained.load(other)
    again = pretrained.load(name)
    z = np.random.default_rng(0).normal(size=(4, 2)).astype("float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(first.decode_mean(z)),
                                  keras.ops.convert_to_numpy(again.decode_mean(z)))


@pytest.fixture
def package_copy(tmp_path, monkeypatch):
    shutil.copytree(pretrained.DIRECTORY, tmp_path / "pretrained")
    monkeypatch.setattr(pretrained, "DIRECTORY", tmp_path / "pretrained")
    monkeypatch.setattr(pretrained, "MANIFEST", tmp_path / "pretrained" / "manifest.json")
    return tmp_path / "pretrained"


def test_an_exported_autoencoder_loads_back_the_same(package_copy):
    model = autoencoders.conv_autoencoder(3, seed=1)
    x = np.random.default_rng(0).uniform(size=(8, 28, 28, 1)).astype("float32")
    config = {"model": "conv_autoencoder", "code_size": 3, "upsampling": "nearest"}
    entry = publish.export_autoencoder(model, "extra-ae", config, epochs=0, train_seconds=0,
                                       note="test", x_test=x)
    assert entry["file"] == "extra-ae.weights.h5"
    loaded = pretrained.load("extra-ae")
    np.testing.assert_array_equal(autoencoders.reconstruct(model, x),
                                  autoencoders.reconstruct(loaded, x))


def test_an_attached_asset_ships_checksummed_beside_its_model(package_copy, tmp_path):
    source = tmp_path / "results.json"
    source.write_text('{"seeds": [0, 1, 2]}\n')
    entry = publish.attach_asset("cifar-iaf", "extra_study", source)
    path = pretrained.asset("cifar-iaf", "extra_study")
    assert path == package_copy / "cifar-iaf-extra_study.json"
    assert json.loads(path.read_text()) == {"seeds": [0, 1, 2]}
    assert set(entry["assets"]) >= {"gif", "log", "extra_study"}
    path.write_text('{"seeds": [0]}\n')   # altered after shipping: refused
    with pytest.raises(pretrained.PretrainedError, match="altered"):
        pretrained.asset("cifar-iaf", "extra_study")
    with pytest.raises(ValueError, match="other than 'gif' and 'log'"):
        publish.attach_asset("cifar-iaf", "gif", source)


def test_a_file_that_does_not_fit_its_architecture_is_refused(package_copy):
    manifest = json.loads((package_copy / "manifest.json").read_text())
    manifest["mnist-mlp-latent2"]["config"]["latent_dim"] = 3   # a different architecture
    (package_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError):   # a PretrainedError or Keras's shape error
        pretrained.load("mnist-mlp-latent2")
    manifest["mnist-conv-latent2"]["config"]["model"] = "mlp"    # other layers entirely
    (package_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError):   # a PretrainedError or Keras's shape error
        pretrained.load("mnist-conv-latent2")


@pytest.mark.slow
@pytest.mark.floors
def test_every_shipped_model_loads_and_scores_as_its_manifest_says(data_dir):
    """What a reader who pip-installs the package into their own stack relies on (the floors
    job runs this on the lowest versions the package accepts): every model loads and scores
    the test set as its manifest says. MNIST models on all 10,000 images with the manifest's
    noise seed (0.1%: room for another stack's float rounding); CIFAR-10 models, slow on a
    CPU, on the first 500 (a slice is not the whole set: 3%). A broken load is off by far more (an untrained
    MNIST VAE scores about -550 nats, an untrained autoencoder over 100)."""
    from vae_course import configs, data, metrics

    (_, _), (x_mnist, _) = data.load_mnist()
    off, allowed = {}, {}
    for name in pretrained.names():
        entry, model = pretrained.info(name), pretrained.load(name)
        if entry["kind"] == "autoencoder":
            got = float(np.mean(autoencoders.reconstruction_error(model, x_mnist)))
            want, allowed[name] = entry["test_mse_per_image"], 0.001
        else:
            config = configs.TrainConfig.from_dict(entry["config"])
            cifar = config.dataset == "cifar10"
            scored, x, _ = metrics.test_set(model, config, examples=500 if cifar else None)
            got, want = float(np.mean(metrics.elbo(scored, x, seed=0))), entry["test_elbo"]
            allowed[name] = 0.03 if cifar else 0.001
        off[name] = abs(got - want) / abs(want)
        print(f"{name}: {got:.2f}, manifest {want:.2f} ({off[name]:.2%})")
    assert all(off[n] < allowed[n] for n in off), off
