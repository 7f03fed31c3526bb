"""The conditional VAE: q(z | x, y) and p(x | z, y) through the package's one model interface."""

import csv

import keras
import numpy as np
import pytest
from keras import ops

from vae_course import conditional, configs, metrics, runs, widgets
from vae_course.train import train

from test_widgets import NODE, js_decode


@pytest.fixture(scope="module")
def pairs(binary_test_images):
    x, y = binary_test_images
    return x[:96], y[:96].astype("int64")


@pytest.fixture(scope="module")
def fitted(pairs):
    keras.utils.set_random_seed(0)
    model = conditional.conditional_vae(latent_dim=3, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(2e-3))
    model.fit(*pairs, batch_size=32, epochs=2, verbose=0)       # fit(images, labels)
    return model


def test_networks_read_the_label(pairs):
    model = conditional.conditional_vae(latent_dim=2, seed=0)
    assert model.latent_shape == (2,) and model.point_shape == (12,)
    assert model.condition == {"offset": 2, "classes": 10}
    out = model(model.check_inputs(pairs))
    assert tuple(out["logits"].shape) == (96, 28, 28, 1)
    # the same z decodes differently for different labels: the decoder reads y
    z = np.zeros((2, 2), "float32")
    a, b = ops.convert_to_numpy(model.decode(z, np.array([1, 7]), apply_sigmoid=True))
    assert np.abs(a - b).max() > 1e-4


def test_fit_takes_pairs_either_way_and_refuses_images_alone(pairs, fitted):
    model = conditional.conditional_vae(latent_dim=3, seed=1)
    model.compile(optimizer="adam")
    history = model.fit(pairs, batch_size=32, epochs=1, verbose=0)   # fit((images, labels))
    assert np.isfinite(history.history["loss"][0])
    with pytest.raises(ValueError, match="labels"):
        metrics.elbo(model, pairs[0])
    with pytest.raises(ValueError, match=r"integer labels in \[0, 10\)"):
        model.check_inputs((pairs[0], pairs[1] + 10))


def test_metrics_bound_log_p_x_given_y(pairs, fitted):
    elbo = metrics.elbo(fitted, pairs, batch_size=40)
    iwae = metrics.log_likelihood(fitted, pairs, k=64)
    assert elbo.shape == iwae.shape == (96,) and np.isfinite(iwae).all()
    assert iwae.mean() > elbo.mean()
    # the right label explains the image better than a wrong one, on average
    wrong = (pairs[0], (pairs[1] + 1) % 10)
    assert metrics.log_likelihood(fitted, wrong, k=64).mean() < iwae.mean()


def test_save_load_round_trip(tmp_path, pairs, fitted):
    path = tmp_path / "cvae.keras"
    fitted.save(path)
    loaded = keras.saving.load_model(path, compile=False, safe_mode=True)
    points = fitted.encode_point(fitted.check_inputs(pairs))
    np.testing.assert_allclose(ops.convert_to_numpy(loaded.decode_mean(points)),
                               ops.convert_to_numpy(fitted.decode_mean(points)), atol=1e-6)


def test_explorer_moves_z_and_the_label_separately(pairs, fitted):
    e = widgets.latent_explorer(fitted, pairs, static=True, label=7)
    assert e.state["condition"]["classes"] == 10 and max(e.state["dims"]) < 3
    assert e.state["z"][3:] == [0.0] * 7 + [1.0] + [0.0] * 2   # starts at the digit asked for
    k = widgets.latent_explorer(fitted, pairs, static=False)
    assert np.argmax(k.z[3:]) == pairs[1][0]                   # default: the first image's
    point = np.array(k.z, "float32")
    expected = ops.convert_to_numpy(fitted.decode_mean(point[None]))[0]
    np.testing.assert_allclose(k.decode(point), expected, atol=1e-6)


@pytest.mark.skipif(NODE is None, reason="needs Node.js")
def test_the_browser_decoder_reads_z_and_the_one_hot_label(tmp_path, fitted):
    spec = widgets.decoder_spec(fitted.decoder, fitted.pixel_output)
    rng = np.random.default_rng(0)
    zs = np.concatenate([rng.normal(size=(4, 3)), np.eye(10)[[0, 3, 7, 9]]], axis=1)
    got = np.array(js_decode(spec, zs, tmp_path)["out"]).reshape(4, 28, 28, 1)
    np.testing.assert_allclose(got, widgets._decode(fitted, zs), atol=2e-5)


@pytest.mark.slow
def test_the_trainer_runs_resumes_and_draws_one_row_per_digit(tmp_path, data_dir):
    import imageio.v3 as iio

    config = configs.get_preset("mnist-cvae").replace(epochs=1, train_examples=512,
                                                      test_examples=128)
    model, history = train(config, tmp_path, verbose=0)
    assert len(history) == 1 and np.isfinite(float(history[0]["val_elbo"]))
    frame = iio.imread(tmp_path / "images" / "epoch_001.png")
    # originals, reconstructions and ten rows of samples: 12 rows of 28 px, 1 px gaps, x2
    assert frame.shape[0] == 2 * (12 * 29 + 1)
    model, history = train(config.replace(epochs=2), tmp_path, verbose=0)   # resumes
    with open(tmp_path / "log.csv", newline="") as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["1", "2"]
    loaded = runs.load_checkpoint(tmp_path, config, compile=False)
    result = metrics.evaluate(loaded, config, k=4, examples=20)
    assert result["what"].endswith("labels given") and result["images"] == 20
