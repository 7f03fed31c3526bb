import shutil

import numpy as np
import pytest

from vae_course import data


def test_mnist_standard_split(mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert x_train.dtype == np.uint8 and y_train.shape == (60000,) and y_test.shape == (10000,)
    assert np.bincount(y_train).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265,
                                             5851, 5949]
    assert x_train.mean() / 255 == pytest.approx(0.13066, abs=1e-5)


def test_altered_file_is_refused_with_its_name_and_sum(tmp_path, data_dir, monkeypatch):
    src = f"{data_dir}/mnist.npz"
    bad = tmp_path / "mnist.npz"
    bad.write_bytes(open(src, "rb").read()[:100_000])  # truncated
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))
    with pytest.raises(data.ChecksumError) as err:
        data.load_mnist()
    assert "mnist.npz" in str(err.value) and data.KNOWN_SHA256["mnist.npz"][0] in str(err.value)


def test_offline_without_data_dir_gives_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))  # an empty folder
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))  # no cached download
    with pytest.raises(data.DataUnavailableError) as err:
        data.load_mnist()
    message = str(err.value)
    assert "mnist.npz" in message and data.DATA_ENV in message and "SHA-256" in message


def test_data_dir_that_is_not_a_directory(tmp_path, monkeypatch):
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path / "nope"))
    with pytest.raises(data.DataUnavailableError, match="not a directory"):
        data.load_mnist()


def test_copied_data_dir_loads(tmp_path, data_dir, monkeypatch):
    shutil.copy(f"{data_dir}/mnist.npz", tmp_path / "mnist.npz")
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))
    (x_train, _), _ = data.load_mnist()
    assert x_train.shape == (60000, 28, 28)


def test_static_binarization_thresholds_at_half():
    images = np.array([[[0, 127, 128, 255]]], np.uint8)
    np.testing.assert_array_equal(data.binarize_static(images)[..., 0], [[[0, 0, 1, 1]]])


def test_dynamic_binarization_is_bernoulli_and_fresh_each_epoch(mnist):
    (x_train, _), _ = mnist
    images = x_train[:2000]
    seq = data.DynamicBinarization(images, batch_size=1000, seed=3)
    first = np.concatenate([seq[i][0] for i in range(len(seq))])
    assert set(np.unique(first)) <= {0.0, 1.0}
    # Over a batch, the fraction of ones matches the mean intensity.
    assert first.mean() == pytest.approx(images.mean() / 255, abs=0.005)
    again = seq[0][0]
    np.testing.assert_array_equal(again, seq[0][0])  # repeatable within an epoch
    seq.on_epoch_end()
    second = np.concatenate([seq[i][0] for i in range(len(seq))])
    assert not np.array_equal(np.sort(first.ravel()), second.ravel())
    assert (first != second).mean() > 0.01


def test_unknown_binarization_names_the_choices():
    with pytest.raises(ValueError, match="static.*dynamic"):
        data.binarize(np.zeros((1, 28, 28), np.uint8), "otsu")


def test_float_images_are_refused_by_to_float():
    with pytest.raises(TypeError, match="uint8"):
        data.to_float(np.zeros((1, 28, 28), np.float32))
