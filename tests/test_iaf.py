"""Inverse autoregressive flow, MADE masks, the discretized-logistic likelihood and FlowVAE."""

import math

import keras
import numpy as np
import pytest
from keras import ops

from vae_course import cifar, flows, losses, metrics, networks


pytestmark = pytest.mark.backends  # also run under JAX and torch (make test: pytest -m backends)


def _randomize(layer, rng, scale=0.5):
    for w in layer.weights:
        w.assign(rng.normal(size=w.shape).astype("float32") * scale)


def _jacobian(fn, z):
    """Full Jacobian d fn(z) / dz (dim x dim) by central finite differences in float64."""
    dim = z.shape[-1]
    eps = 1e-3
    cols = []
    for j in range(dim):
        e = np.zeros_like(z)
        e[0, j] = eps
        cols.append((fn(z + e) - fn(z - e)) / (2 * eps))
    return np.stack(cols, axis=-1)[0]


def _autodiff_jacobian(step, z, h):
    """Jacobian of one step by the backend's autodiff (TensorFlow, JAX or torch)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        zt = tf.constant(z)
        with tf.GradientTape() as tape:
            tape.watch(zt)
            out, _ = step([zt, h])
        return tape.jacobian(out, zt).numpy()[0, :, 0, :]
    if backend == "jax":
        import jax

        return np.asarray(jax.jacfwd(lambda v: step([v, h])[0])(z))[0, :, 0, :]
    if backend == "torch":
        import torch

        jac = torch.autograd.functional.jacobian(lambda v: step([v, h])[0], ops.convert_to_tensor(z))
        return ops.convert_to_numpy(jac)[0, :, 0, :]
    return _jacobian(lambda v: ops.convert_to_numpy(step([v, h])[0]), z)


@pytest.mark.parametrize("reverse", [False, True])
def test_iaf_step_jacobian_is_triangular_and_log_det_matches(reverse):
    rng = np.random.default_rng(0)
    dim = 6
    step = flows.IAFStep(dim, (24, 24), reverse=reverse, forget_bias=0.0)
    z = rng.normal(size=(1, dim)).astype("float32")
    h = rng.normal(size=(1, 4)).astype("float32")
    step([z, h])
    _randomize(step, rng)
    jac = _autodiff_jacobian(step, z, h)
    # Forward order: output i depends on z_1..z_i only (lower triangular); reversed: upper.
    off = np.triu(jac, 1) if not reverse else np.tril(jac, -1)
    assert np.abs(off).max() < 1e-6, jac
    other = np.tril(jac, -1) if not reverse else np.triu(jac, 1)
    assert np.abs(other).max() > 1e-3  # the step is not trivially diagonal
    _, log_det = step([z, h])
    sign, logabs = np.linalg.slogdet(jac.astype("float64"))
    assert sign > 0
    assert abs(float(ops.convert_to_numpy(log_det)[0]) - logabs) < 1e-4


def test_made_masks_are_strictly_autoregressive():
    masks = flows.made_masks(5, (7, 9))
    path = masks[0] @ masks[1] @ masks[2]       # path counts from input d to output i
    assert np.all(np.tril(path) == 0)           # output i never sees inputs i..dim
    assert np.all(path[np.triu_indices(5, 1)] > 0)  # and sees every earlier input


def test_iaf_step_log_det_matches_tfp_inverted_maf():
    if keras.backend.backend() != "tensorflow":
        pytest.skip("TensorFlow Probability cross-check runs under the TensorFlow backend")
    import tensorflow as tf
    import tensorflow_probability as tfp

    rng = np.random.default_rng(1)
    dim = 5
    step = flows.IAFStep(dim, (16,), forget_bias=0.5)
    z = rng.normal(size=(3, dim)).astype("float32")
    h = rng.normal(size=(3, 2)).astype("float32")
    step([z, h])
    _randomize(step, rng)

    def shift_and_log_scale(x):
        # IAF: z' = sigma z + (1 - sigma) m. Inverted MAF: forward(x) = (x - shift) exp(-log_scale).
        m, s = step.made([x, tf.constant(h)])
        sigma = tf.sigmoid(s + step.forget_bias)
        return -(1.0 - sigma) * m / sigma, -tf.math.log(sigma)

    bijector = tfp.bijectors.Invert(
        tfp.bijectors.MaskedAutoregressiveFlow(shift_and_log_scale_fn=shift_and_log_scale))
    ours, log_det = step([z, h])
    np.testing.assert_allclose(bijector.forward(z).numpy(), ops.convert_to_numpy(ours),
                               atol=1e-5)
    np.testing.assert_allclose(bijector.forward_log_det_jacobian(z, event_ndims=1).numpy(),
                               ops.convert_to_numpy(log_det), atol=1e-4)


@pytest.mark.slow
def test_discretized_mixture_sums_to_one_over_all_colours_of_a_pixel():
    rng = np.random.default_rng(0)
    nr_mix = 2
    params = rng.normal(size=(1, 1, 1, 10 * nr_mix)).astype("float32")
    params[..., nr_mix + 3 * nr_mix:nr_mix + 6 * nr_mix] -= 2.0  # sharper components
    levels = np.arange(256, dtype="uint8")
    total = 0.0
    for r0 in range(0, 256, 32):   # all 256^3 colours, 32 values of R at a time
        r, g, b = np.meshgrid(levels[r0:r0 + 32], levels, levels, indexing="ij")
        x = np.stack([r.ravel(), g.ravel(), b.ravel()], -1).reshape(-1, 1, 1, 3)
        lp = losses.discretized_mix_logistic_log_prob(
            losses.scale_pixels(x), np.broadcast_to(params, (len(x), 1, 1, 10 * nr_mix)), nr_mix)
        total += np.exp(ops.convert_to_numpy(lp).astype("float64")).sum()
    assert abs(total - 1.0) < 1e-4, total


@pytest.mark.parametrize("mean,log_scale", [(0.0, -3.0), (0.9, -6.0), (-1.0, 1.0), (0.3, -7.0)])
def test_single_logistic_sub_pixel_sums_to_one(mean, log_scale):
    x = losses.scale_pixels(np.arange(256, dtype="float32"))
    lp = losses._discretized_logistic_log_probs(x, np.float32(mean), np.float32(log_scale))
    lp = ops.convert_to_numpy(lp).astype("float64")
    assert np.all(np.isfinite(lp)) and np.all(lp <= 0)
    assert abs(np.exp(lp).sum() - 1.0) < 1e-5


def test_uniform_model_is_exactly_8_bits_per_dim():
    x = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3)).astype("uint8")
    nll = -ops.convert_to_numpy(losses.uniform_8bit_log_prob(x)).astype("float64")
    np.testing.assert_allclose(losses.bits_per_dim(nll, cifar.DIMS), 8.0, rtol=1e-6)


def test_bernoulli_cross_entropy_is_not_normalized_over_256_levels():
    levels = np.arange(256, dtype="float32").reshape(256, 1) / 255.0
    logits = np.zeros((256, 1), dtype="float32")          # p = 0.5 for every level
    mass = np.exp(ops.convert_to_numpy(losses.bernoulli_log_prob(levels, logits))).sum()
    assert mass == pytest.approx(128.0)                     # 256 levels x 0.5: not a distribution


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3)).astype("uint8")


def test_flow_vae_round_trip(tmp_path, images):
    model = cifar.cifar_vae(latent_dim=8, flow_steps=2, nr_mix=2, width=8, seed=3)
    model(images)
    for layer in model.steps:   # the flow starts near the identity; make it do something
        _randomize(layer, np.random.default_rng(2), scale=0.1)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert loaded.flow_steps == 2 and loaded.nr_mix == 2
    eps = np.random.default_rng(1).normal(size=(8,) + model.latent_shape).astype("float32")
    for m in (model, loaded):
        mu, log_var, h = m.encode_all(images)
        z, log_q = m.posterior_sample(mu, log_var, h, eps)
        m.result = (ops.convert_to_numpy(z), ops.convert_to_numpy(log_q),
                    ops.convert_to_numpy(m.decode(z)))
    for a, b in zip(model.result, loaded.result):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_flow_vae_trains_and_reports_bits_per_dim(images):
    model = cifar.cifar_vae(latent_dim=8, flow_steps=2, nr_mix=1, width=8, seed=0)
    model.compile(keras.optimizers.Adam(3e-3))
    before = model.evaluate(images, batch_size=8, verbose=0, return_dict=True)
    model.fit(np.repeat(images, 8, axis=0), batch_size=16, epochs=3, verbose=0)
    after = model.evaluate(images, batch_size=8, verbose=0, return_dict=True)
    assert after["bpd"] < before["bpd"]
    assert after["bpd"] == pytest.approx(-after["elbo"] / (cifar.DIMS * math.log(2)), rel=1e-5)
    elbo = metrics.elbo(model, images)
    ll = metrics.log_likelihood(model, images, k=16)
    assert elbo.shape == ll.shape == (8,)
    assert ll.mean() > elbo.mean() - 1.0  # the IWAE bound with K=16 is not below the ELBO


def test_flow_vae_rejects_float_images_with_a_hint(images):
    model = cifar.cifar_vae(latent_dim=4, width=8, nr_mix=1)
    with pytest.raises(ValueError, match="uint8.*Received dtype float32.*original uint8"):
        model.fit(images.astype("float32") / 255.0, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"shape \(n, 32, 32, 3\).*Received x of shape \(8, 28"):
        model.check_inputs(np.zeros((8, 28, 28, 1), "uint8"))


def test_flow_needs_a_context():
    with pytest.raises(ValueError, match="context"):
        cifar.FlowVAE(networks.build_cifar_encoder(4, 0, 8), networks.build_cifar_decoder(4, 1, 8),
                    flow_steps=1)


@pytest.mark.parametrize("reverse", [False, True])
def test_iaf_step_on_latent_maps_is_triangular_in_channel_major_order(reverse):
    """The chapter's flow: an 8x8 map of latents, 3x3 masked convolutions over channels."""
    rng = np.random.default_rng(3)
    hw, ch = 3, 4
    step = flows.IAFStep(ch, (12,), reverse=reverse, forget_bias=0.0, kernel_size=3)
    z = rng.normal(size=(1, hw, hw, ch)).astype("float32")
    h = rng.normal(size=(1, hw, hw, 2)).astype("float32")
    step([z, h])
    _randomize(step, rng, scale=0.2)

    def f(v):
        return ops.convert_to_numpy(step([v.reshape(1, hw, hw, ch), h])[0]).reshape(1, -1)

    jac = _jacobian(lambda v: f(v.astype("float32")).astype("float64"), z.reshape(1, -1))
    # Variables ordered channel by channel (all positions of channel 0 first, ...).
    order = np.arange(hw * hw * ch).reshape(hw, hw, ch).transpose(2, 0, 1).ravel()
    if reverse:
        order = np.arange(hw * hw * ch).reshape(hw, hw, ch)[..., ::-1].transpose(2, 0, 1).ravel()
    jac = jac[np.ix_(order, order)]
    blocks = jac.reshape(ch, hw * hw, ch, hw * hw)
    for i in range(ch):
        for j in range(i + 1, ch):
            assert np.abs(blocks[i, :, j]).max() < 1e-3    # no dependence on later channels
        diag_block = blocks[i, :, i]
        assert np.abs(diag_block - np.diag(np.diag(diag_block))).max() < 1e-3
    assert np.abs(blocks[ch - 1, :, 0]).max() > 1e-3       # but on earlier channels, nearby
    _, log_det = step([z, h])
    _, logabs = np.linalg.slogdet(jac)
    assert abs(float(ops.convert_to_numpy(log_det)[0]) - logabs) < 2e-3


@pytest.mark.parametrize("kwargs, match", [
    ({"latent_dim": 0}, r"latent_dim to be an integer in \[1, 1024\]. Received: latent_dim=0"),
    ({"flow_steps": -1}, r"flow_steps.*Received: flow_steps=-1"),
    ({"nr_mix": 2.5}, r"nr_mix.*Received: nr_mix=2.5"),
    ({"latent_size": 4}, r"latent_size 8 or 16"),
])
def test_bad_model_arguments_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        cifar.cifar_vae(**kwargs)


def test_iaf_step_inverts_in_dim_sequential_passes():
    """The IAF chapter's exercise: z_i = (z_new_i - (1 - sigma_i) m_i) / sigma_i needs z_<i, so
    undoing a step takes one pass per coordinate, while the step itself took one pass."""
    rng = np.random.default_rng(3)
    dim = 5
    step = flows.IAFStep(dim, (16,), forget_bias=0.0)
    z = rng.normal(size=(2, dim)).astype("float32")
    h = rng.normal(size=(2, 3)).astype("float32")
    step([z, h])
    _randomize(step, rng)
    z_new = ops.convert_to_numpy(step([z, h])[0])
    z_hat, errors = np.zeros_like(z), []
    for _ in range(dim):
        m, s = (ops.convert_to_numpy(t) for t in step.made([z_hat, h]))
        sigma = 1.0 / (1.0 + np.exp(-(s + step.forget_bias)))
        z_hat = ((z_new - (1.0 - sigma) * m) / sigma).astype("float32")
        errors.append(np.abs(z_hat - z).max())
    assert errors[-1] < 1e-4                # exact after dim passes
    assert errors[0] > 1e-2                 # but not after one
