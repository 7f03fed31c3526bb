"""The conv-VAE chapter's checkers: the reference answers pass, typical wrong answers get the
hint that names their mistake."""

import numpy as np
import pytest

from vae_course import exercises
from vae_course.exercises import conv_vae as ex

pytestmark = pytest.mark.backends


def test_both_checkers_are_listed_under_the_chapter():
    names = [name for name, _ in exercises.available()["conv_vae"]]
    assert {"is-bound-proposal", "upsampling-decoder"} <= set(names)


# -- the importance-sampled bound with a Gaussian proposal ---------------------------------
LOG_2PI = np.log(2 * np.pi)


def _bound(prior=True, proposal=True, log_det=True, const_q=True, reduce="lme"):
    """The bound assembled from parts, each of which a typical mistake leaves out."""
    def answer(log_px, z, mean, log_var):
        log_w = log_px.copy()
        if prior:
            log_w = log_w - 0.5 * np.sum(LOG_2PI + z ** 2, axis=-1)
        if proposal:
            quad = (z - mean) ** 2 / np.exp(log_var)
            log_q = -0.5 * np.sum((LOG_2PI if const_q else 0.0) + quad
                                  + (log_var if log_det else 0.0), axis=-1)
            log_w = log_w - log_q
        if reduce == "mean":
            return log_w.mean(axis=0)
        if reduce == "naive":
            return np.log(np.mean(np.exp(log_w), axis=0))
        if reduce == "sum":
            return np.logaddexp.reduce(log_w, axis=0)
        if reduce == "images":
            return np.logaddexp.reduce(log_w, axis=1) - np.log(log_w.shape[1])
        return np.logaddexp.reduce(log_w, axis=0) - np.log(len(log_w))
    return answer


def test_the_bound_reference_passes_and_matches_the_package():
    from vae_course import inference

    assert exercises.check("is-bound-proposal", ex.is_bound_reference)
    assert exercises.check("is-bound-proposal", _bound())

    class Fixed:   # a "model" whose decoder log-likelihood is known: log p(x|z) = -|z|^2
        latent_shape = (2,)

        def decode_params(self, z, compiled=False):
            return z

        def log_px(self, x, params):
            from keras import ops

            return -ops.sum(ops.square(params), axis=-1)

    mean, log_var = np.array([[0.3, -0.2]]), np.array([[-1.0, -2.0]])
    log_w = inference.gaussian_log_weights(Fixed(), np.zeros((1, 1)), mean, log_var, k=64,
                                           seed=3)
    eps = np.random.default_rng(3).standard_normal((64, 1, 2))
    z = mean + np.exp(0.5 * log_var) * eps
    ours = ex.is_bound_reference(-np.sum(z ** 2, -1), z, mean, log_var)
    np.testing.assert_allclose(ours, np.logaddexp.reduce(log_w, 0) - np.log(64), rtol=1e-5)


@pytest.mark.parametrize("answer, hint", [
    (_bound(reduce="mean"), "ELBO estimate"),
    (_bound(reduce="sum"), "log K"),
    (_bound(reduce="naive"), "underflows"),
    (_bound(reduce="images"), "axis 0"),
    (_bound(prior=False), "prior is missing"),
    (_bound(proposal=False), "proposal's density"),
    (_bound(log_det=False), "log-determinant"),
    (_bound(const_q=False), "log 2 pi"),
    (_bound(prior=False, proposal=False), "p(x|z) alone"),
])
def test_typical_wrong_bounds_get_their_hint(answer, hint):
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        feedback = exercises.check("is-bound-proposal", answer)
    assert not feedback and hint in feedback.hint, feedback


# -- the upsampling decoder ------------------------------------------------------------------
def test_the_decoder_reference_passes_with_the_tutorials_size():
    feedback = exercises.check("upsampling-decoder", ex.upsampling_decoder_reference)
    assert feedback, feedback
    assert feedback.details["params"] == 41_953   # the same weights as the tutorial's decoder


def _decoder(kind="upsample", last_activation=None, filters=1):
    import keras
    from keras import layers

    def build(latent_dim):
        z = keras.Input((latent_dim,))
        h = layers.Reshape((7, 7, 32))(layers.Dense(7 * 7 * 32, activation="relu")(z))
        for width in (64, 32):
            if kind == "upsample":
                h = layers.UpSampling2D(2)(h)
                h = layers.Conv2D(width, 3, padding="same", activation="relu")(h)
            else:
                h = layers.Conv2DTranspose(width, 3, strides=2, padding="same",
                                           activation="relu")(h)
        out = layers.Conv2D(filters, 3, padding="same", activation=last_activation)(h)
        return keras.Model(z, out)
    return build


@pytest.mark.parametrize("answer, hint", [
    (_decoder(kind="transpose"), "UpSampling2D(2)"),
    (_decoder(last_activation="sigmoid"), "logits"),
    (_decoder(filters=3), "1 filter"),
    (lambda d: "not a model", "keras.Input"),
])
def test_typical_wrong_decoders_get_their_hint(answer, hint):
    feedback = exercises.check("upsampling-decoder", answer)
    assert not feedback and hint in feedback.hint, feedback
