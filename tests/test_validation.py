"""Bad input fails early with a message that names what was expected and what was received."""

import warnings

import numpy as np
import pytest

from vae_course import data, metrics, models


pytestmark = pytest.mark.backends  # also run under JAX and torch (make test: pytest -m backends)


@pytest.fixture(scope="module")
def model():
    m = models.conv_vae(latent_dim=2, seed=0)
    m.compile(optimizer="adam")
    return m


@pytest.fixture
def good(binary_test_images):
    return binary_test_images[0][:64]


@pytest.mark.parametrize("make_bad, match", [
    (lambda x: x[0], r"single image of shape \(28, 28, 1\).*x\[None\]"),
    (lambda x: x[..., 0], r"shape \(64, 28, 28\).*channel axis"),
    (lambda x: x.reshape(64, 784), r"Expected images of shape \(n, 28, 28, 1\).*\(64, 784\)"),
    (lambda x: np.repeat(x, 3, axis=-1), r"\(64, 28, 28, 3\)"),
    (lambda x: x * 255, r"values in \[0, 255\].*0-255 pixel values.*binarize_static"),
    (lambda x: x - 1, r"values in \[-1, 0\]"),
    (lambda x: np.where(x > 0, np.nan, x), r"NaN or infinite"),
    (lambda x: np.where(x > 0, np.inf, x), r"NaN or infinite"),
    (lambda x: x[:0], r"empty batch"),
    (lambda x: x.astype(str), r"dtype <U"),
])
def test_bad_images_are_refused_before_training(model, good, make_bad, match):
    bad = make_bad(good)
    weights = [w.copy() for w in model.get_weights()]
    with pytest.raises(ValueError, match=match):
        model.fit(bad, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=match):
        model.evaluate(bad, verbose=0)
    with pytest.raises(ValueError, match=match):
        metrics.elbo(model, bad)
    with pytest.raises(ValueError, match=match):
        metrics.log_likelihood(model, bad, k=2)
    for before, after in zip(weights, model.get_weights()):  # nothing was trained
        np.testing.assert_array_equal(before, after)


def test_grey_levels_warn_that_bernoulli_needs_binary_pixels(model, mnist):
    (_, _), (x_test, _) = mnist
    grey = data.to_float(x_test[:32])
    with pytest.warns(UserWarning, match="neither 0 nor 1.*binarize_static"):
        metrics.elbo(model, grey)


def test_binary_images_pass_silently(model, good):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # Third-party deprecations (e.g. torch's Tensor.__array__ under NumPy 2) are not ours;
        # pyproject.toml ignores them too.
        warnings.simplefilter("ignore", DeprecationWarning)
        assert metrics.elbo(model, good).shape == (64,)
        assert metrics.elbo(model, good.astype("uint8")).shape == (64,)
