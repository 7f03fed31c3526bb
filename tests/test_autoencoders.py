import keras
import numpy as np
import pytest

from vae_course import autoencoders, data, pca, pretrained

CODE_SIZES = (2, 5, 10, 30)


@pytest.fixture(scope="module")
def float_images(mnist):
    (x_train, _), (x_test, y_test) = mnist
    return data.to_float(x_train), data.to_float(x_test), y_test


@pytest.mark.parametrize("build", [autoencoders.conv_autoencoder, autoencoders.dense_autoencoder,
                                   autoencoders.linear_autoencoder])
@pytest.mark.parametrize("code_size", [1, 10])
def test_shapes(build, code_size):
    model = build(code_size, seed=0)
    x = np.random.default_rng(0).random((3, 28, 28, 1)).astype("float32")
    z = autoencoders.encode(model, x)
    assert z.shape == (3, code_size)
    assert autoencoders.decode(model, z).shape == (3, 28, 28, 1)
    assert autoencoders.reconstruction_error(model, x).shape == (3,)


def test_transposed_decoder_shapes():
    model = autoencoders.conv_autoencoder(4, upsampling="transpose", seed=0)
    assert tuple(model.decoder.output.shape) == (None, 28, 28, 1)
    assert any(isinstance(layer, keras.layers.Conv2DTranspose) for layer in model.decoder.layers)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "10"])
def test_bad_code_size_is_refused(bad):
    with pytest.raises(ValueError, match=r"Expected code_size > 0\. Received: code_size="):
        autoencoders.conv_autoencoder(bad)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="upsampling"):
        autoencoders.conv_autoencoder(2, upsampling="bilinear")
    with pytest.raises(ValueError, match="images of shape"):
        autoencoders.images(np.zeros((2, 32, 32)))
    with pytest.raises(ValueError, match="optimizer"):
        autoencoders.make_optimizer("sgd")


def test_linear_autoencoder_has_no_nonlinearity():
    model = autoencoders.linear_autoencoder(3, seed=0)
    x = np.random.default_rng(1).random((4, 28, 28, 1)).astype("float32")
    # A composition of affine maps: f(a + b) - f(0) = (f(a) - f(0)) + (f(b) - f(0)).
    f = lambda v: autoencoders.reconstruct(model, v)  # noqa: E731
    zero = np.zeros_like(x[:2])
    np.testing.assert_allclose(f(x[:2] + x[2:]) - f(zero), f(x[:2]) + f(x[2:]) - 2 * f(zero),
                               atol=1e-4)


@pytest.mark.parametrize("upsampling", ["nearest", "transpose"])
@pytest.mark.backends
def test_save_load_round_trip(tmp_path, upsampling):
    model = autoencoders.conv_autoencoder(5, upsampling=upsampling, seed=0)
    x = np.random.default_rng(2).random((4, 28, 28, 1)).astype("float32")
    path = tmp_path / "ae.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, compile=False, safe_mode=True)
    assert isinstance(loaded, autoencoders.Autoencoder) and loaded.code_size == 5
    np.testing.assert_allclose(autoencoders.reconstruct(loaded, x), autoencoders.reconstruct(model, x),
                               atol=1e-6)


@pytest.mark.backends
def test_training_keeps_the_best_epoch_and_lowers_the_error(float_images, tmp_path):
    x_train, x_test, _ = float_images
    model = autoencoders.dense_autoencoder(8, hidden=(64,), seed=0)
    before = autoencoders.reconstruction_error(model, x_test[:500]).mean()
    history = autoencoders.train_autoencoder(model, x_train[:2000], x_train[-500:], epochs=3,
                                             checkpoint=tmp_path / "best.keras", verbose=0)
    after = autoencoders.reconstruction_error(model, x_test[:500]).mean()
    assert (tmp_path / "best.keras").exists()
    assert len(history["loss"]) == 3 and 1 <= history["best_epoch"] <= 3
    assert after < 0.5 * before
    # The model holds the best epoch's weights: its validation MSE is the smallest one seen.
    val = autoencoders.reconstruction_error(model, x_train[-500:]).mean() / 784
    assert val == pytest.approx(min(history["val_loss"]), rel=1e-3)


@pytest.mark.slow
def test_error_decreases_with_code_size_on_a_fixed_subset(float_images):
    x_train, x_test, _ = float_images
    errors = []
    for k in (2, 8, 32):
        model = autoencoders.dense_autoencoder(k, hidden=(128,), seed=0)
        autoencoders.train_autoencoder(model, x_train[:3000], x_train[-500:], epochs=4,
                                       batch_size=64, verbose=0)
        errors.append(autoencoders.reconstruction_error(model, x_test[:1000]).mean())
    assert errors[0] > errors[1] > errors[2], errors


@pytest.mark.parametrize("code_size", [2, 10, 30])
def test_pretrained_autoencoders_reproduce_their_manifest(float_images, code_size):
    name = autoencoders.pretrained_name(code_size)
    entry = pretrained.info(name)
    assert entry["kind"] == "autoencoder"
    for key in ("file", "sha256", "config", "epochs", "train_seconds", "versions",
                "test_mse_per_image", "note"):
        assert key in entry, key
    assert set(entry["versions"]) >= {"vae_course", "keras", "tensorflow", "numpy", "python"}
    assert (pretrained.DIRECTORY / entry["file"]).stat().st_size < 5 * 2**20
    model = pretrained.load(name)
    assert isinstance(model, autoencoders.Autoencoder) and model.code_size == code_size
    _, x_test, _ = float_images
    error = autoencoders.reconstruction_error(model, x_test).mean()
    assert error == pytest.approx(entry["test_mse_per_image"], abs=0.02)


def test_pretrained_autoencoders_beat_pca_and_the_30d_bar(mnist):
    (x_train, _), (x_test, _) = mnist
    p30 = pca.PCA(30, method="covariance").fit(x_train)
    for code_size in (2, 10, 30):
        ae = pretrained.info(autoencoders.pretrained_name(code_size))["test_mse_per_image"]
        assert ae < pca.squared_error(x_test, p30.first(code_size).reconstruct(x_test)).mean()
    assert pretrained.info(autoencoders.pretrained_name(30))["test_mse_per_image"] <= 4.0
