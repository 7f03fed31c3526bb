"""The latent explorer: the browser decoder equals Keras's, the kernel widget decodes, errors."""

import json
import shutil
import subprocess

import numpy as np
import pytest

from vae_course import cifar, pretrained, widgets

NODE = shutil.which("node")


def js_decode(spec, zs, tmp_path):
    """Decode latent points with explorer.js under Node.js (the code the static page runs)."""
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    (tmp_path / "z.json").write_text(json.dumps([list(map(float, z)) for z in zs]))
    script = f"""
import {{ prepare, decode }} from {json.dumps(widgets.ESM.as_uri())};
import {{ readFileSync }} from "node:fs";
const spec = prepare(JSON.parse(readFileSync({json.dumps(str(tmp_path / "spec.json"))})));
const zs = JSON.parse(readFileSync({json.dumps(str(tmp_path / "z.json"))}));
const t0 = performance.now();
const out = zs.map((z) => Array.from(decode(spec, z)));
console.log(JSON.stringify({{ out, ms: (performance.now() - t0) / zs.length }}));
"""
    result = subprocess.run([NODE, "--input-type=module", "-e", script], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


@pytest.mark.skipif(NODE is None, reason="needs Node.js")
@pytest.mark.parametrize("name", ["mnist-conv-latent2", "mnist-conv-ae-2", "mnist-mlp-latent2"])
def test_the_browser_decoder_equals_keras(name, tmp_path):
    model = pretrained.load(name)
    spec = widgets.decoder_spec(model.decoder, model.pixel_output)
    size = int(np.prod(model.latent_shape))
    zs = np.random.default_rng(0).normal(size=(5, size)).astype("float32") * 2
    got = np.array(js_decode(spec, zs, tmp_path)["out"]).reshape((5,) + model.image_shape)
    np.testing.assert_allclose(got, widgets._decode(model, zs), atol=2e-5)


@pytest.mark.skipif(NODE is None, reason="needs Node.js")
def test_the_browser_decoder_equals_keras_for_the_cifar_mixture(tmp_path):
    model = cifar.cifar_vae(latent_dim=4, width=8, seed=0)
    images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3)).astype("uint8")
    model(images)
    rng = np.random.default_rng(1)
    for w in model.decoder.weights:   # non-trivial weights: couplings and clipping matter
        w.assign(rng.normal(size=w.shape).astype("float32") * 0.3)
    spec = widgets.decoder_spec(model.decoder, "mixture1")
    zs = rng.normal(size=(3, int(np.prod(model.latent_shape)))).astype("float32")
    got = np.array(js_decode(spec, zs, tmp_path)["out"]).reshape((3, 32, 32, 3))
    np.testing.assert_allclose(got, widgets._decode(model, zs), atol=2e-5)


def test_unsupported_layers_are_named():
    import keras

    z = keras.Input((2,))
    h = keras.layers.Dense(8)(z)
    h = keras.layers.BatchNormalization(name="bn")(h)
    decoder = keras.Model(z, keras.layers.Dense(784)(h))
    with pytest.raises(widgets.UnsupportedDecoderError, match="'bn' of type BatchNormalization"):
        widgets.decoder_spec(decoder, "sigmoid")


def test_static_explorer_is_self_contained_and_small(binary_test_images):
    x, y = binary_test_images
    explorer = widgets.latent_explorer("mnist-conv-latent2", x[:2000], y[:2000], static=True)
    page = explorer._repr_html_()
    assert "<script type=\"module\">" in page and "http" not in page.split("<script")[1]
    assert "data:image/png;base64," in page          # the scatter under the pad
    assert explorer.page_bytes() < 2 * 2**20, explorer.page_bytes()
    assert explorer.state["dims"] == [0, 1] and explorer.state["mode"] == "browser"


def test_kernel_widget_decodes_each_new_point(binary_test_images):
    x, y = binary_test_images
    w = widgets.latent_explorer("mnist-conv-latent2", x[:500], y[:500], static=False)
    first = bytes(w.image)
    assert len(first) == 28 * 28
    w.z = [1.5, -2.0]
    assert bytes(w.image) != first and w.shown_z == [1.5, -2.0]
    expected = (np.clip(w.decode([1.5, -2.0]), 0, 1) * 255).round().astype(np.uint8)
    np.testing.assert_array_equal(np.frombuffer(w.image, np.uint8), expected.ravel())
    assert len(w.decode_seconds) == 2   # the first point, then the new one
    # the front-end sends points as custom messages; malformed ones are ignored
    w._handle_custom_msg({"z": [0.25, 0.5]}, [])
    assert w.shown_z == [0.25, 0.5] and len(w.decode_seconds) == 3
    for bad in ({"z": [1.0]}, {"z": "1,2"}, {"z": [1.0, None]}, {"other": 1}, [1, 2]):
        w._handle_custom_msg(bad, [])
    assert w.shown_z == [0.25, 0.5] and len(w.decode_seconds) == 3


def test_server_extension_sets_nodelay_before_the_socket_opens():
    import asyncio

    from jupyter_server.services.kernels.websocket import KernelWebsocketHandler

    import vae_course_jupyter as serverext

    calls = []

    class Handler:
        def set_nodelay(self, value):
            calls.append(("nodelay", value))

        async def open(self, kernel_id):
            calls.append(("open", kernel_id))

    wrapped = serverext.nodelay(Handler.open)
    assert serverext.nodelay(wrapped) is wrapped   # loading twice wraps once
    asyncio.run(wrapped(Handler(), "k1"))
    assert calls == [("nodelay", True), ("open", "k1")]

    class App:
        class log:
            info = staticmethod(lambda msg: calls.append(msg))

    original = KernelWebsocketHandler.open
    try:
        serverext._load_jupyter_server_extension(App)
        assert KernelWebsocketHandler.open._vae_course_nodelay
        assert KernelWebsocketHandler.open.__wrapped__ is original
    finally:
        KernelWebsocketHandler.open = original
    assert serverext._jupyter_server_extension_points() == [{"module": "vae_course_jupyter"}]


@pytest.mark.parametrize("kwargs, match", [
    ({"dims": [0, 0]}, r"distinct dims in \[0, 2\)"),
    ({"dims": [5]}, r"distinct dims"),
    ({"base": [0.0]}, r"base of 2 values"),
    ({"ranges": [(1, 0), (0, 1)]}, r"low < high"),
])
def test_bad_arguments_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        widgets.latent_explorer("mnist-conv-latent2", static=True, **kwargs)


def test_unknown_model_name_lists_the_valid_ones():
    with pytest.raises(pretrained.PretrainedError, match="Valid names"):
        widgets.latent_explorer("mnist-nope")
