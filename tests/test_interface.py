"""The package's structure: one model interface that metrics, the CLI's evaluate and the
explorer rely on (a model type defined here, unknown to the package, works in all three), and
an import graph that only points down."""

import ast
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import layers, ops

from vae_course import configs, explore, losses, metrics, models, widgets

PACKAGE = Path(__file__).resolve().parents[1] / "vae_course"


@keras.saving.register_keras_serializable(package="vae_course_tests")
class TinyLogisticVAE(models.VariationalModel):
    """A model type the package has never seen: a 1-layer encoder and decoder whose decoder
    likelihood is a Bernoulli with a learned temperature. It implements only the interface's
    pieces (posterior, log_px, elbo_terms, check_inputs, call, decode_mean)."""

    pixel_output = "sigmoid"

    def __init__(self, encoder, decoder, seed=None, **kwargs):
        super().__init__(encoder, decoder, seed=seed, **kwargs)
        self.noise = keras.random.SeedGenerator(seed)

    def posterior(self, x):
        mean, log_var = ops.split(ops.cast(self.encoder(x), "float32"), 2, axis=-1)
        return mean, log_var, None

    def log_px(self, x, params):
        return losses.bernoulli_log_prob(ops.cast(x, "float32"), params)

    def decode_mean(self, z, compiled=False):
        return ops.sigmoid(self.decode_params(z, compiled))

    def call(self, x, training=False):
        mean, log_var, _ = self.posterior(x)
        z = mean + ops.exp(0.5 * log_var) * keras.random.normal(ops.shape(mean), seed=self.noise)
        return {"params": self.decode_params(z), "mean": mean, "log_var": log_var}

    def elbo_terms(self, x, out):
        return (self.log_px(x, out["params"]),
                losses.kl_standard_normal(out["mean"], out["log_var"]))

    def check_inputs(self, x):
        from vae_course.validation import check_images

        return check_images(x, (28, 28, 1))


def tiny_model(latent=3, seed=0):
    keras.utils.set_random_seed(seed)
    x = keras.Input((28, 28, 1))
    encoder = keras.Model(x, layers.Dense(2 * latent)(layers.Flatten()(x)))
    z = keras.Input((latent,))
    decoder = keras.Model(z, layers.Reshape((28, 28, 1))(layers.Dense(784)(z)))
    return TinyLogisticVAE(encoder, decoder, seed=seed)


@pytest.fixture(scope="module")
def tiny_and_images(binary_test_images):
    model = tiny_model()
    x = binary_test_images[0][:64]
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(x, batch_size=32, epochs=1, verbose=0)   # trains through compute_loss
    return model, x


def test_a_new_model_type_works_in_the_metrics(tiny_and_images):
    model, x = tiny_and_images
    elbo = metrics.elbo(model, x, batch_size=20)
    iwae = metrics.log_likelihood(model, x, k=50, max_decode=256)
    assert elbo.shape == iwae.shape == (64,)
    assert np.isfinite(elbo).all() and iwae.mean() > elbo.mean()
    # the interface's ELBO agrees with elbo_terms on average (same expectation)
    rec, kl = model.elbo_terms(x, model(x))
    assert np.mean(ops.convert_to_numpy(rec - kl)) == pytest.approx(elbo.mean(), abs=3.0)


def test_a_new_model_type_works_in_the_cli_evaluate(tiny_and_images, data_dir):
    model, _ = tiny_and_images
    result = metrics.evaluate(model, configs.get_preset("quick"), k=5, examples=30)
    assert result["images"] == 30 and result["is_nll"] <= -result["test_elbo"] + 5


def test_a_new_model_type_works_in_the_explorer(tiny_and_images):
    model, x = tiny_and_images
    static = widgets.latent_explorer(model, x, static=True)
    assert sorted(static.state["dims"]) == [0, 1, 2]   # all three, by spread of the codes
    assert "vae-explorer" in static._repr_html_()
    explorer = widgets.latent_explorer(model, x, static=False)
    z = np.zeros(3, "float32")
    expected = ops.convert_to_numpy(ops.sigmoid(model.decoder(z[None])))[0]
    np.testing.assert_allclose(explorer.decode(z), expected, atol=1e-6)


def test_metrics_refuse_an_autoencoder_with_a_pointer_to_its_measure():
    from vae_course import autoencoders

    ae = autoencoders.conv_autoencoder(2)
    with pytest.raises(TypeError, match="reconstruction_error"):
        metrics.elbo(ae, np.zeros((2, 28, 28, 1), "float32"))


def test_a_vae_refuses_networks_of_different_latent_sizes():
    from vae_course import networks

    with pytest.raises(ValueError, match="same latent_dim"):
        models.VAE(networks.build_conv_encoder(2), networks.build_conv_decoder(3))


def test_forward_multiply_adds_match_a_hand_count():
    m = models.conv_vae(latent_dim=2)
    hand = (9 * 32 * 13 * 13 + 9 * 32 * 64 * 6 * 6 + 2304 * 4           # encoder
            + 2 * 1568 + 9 * 32 * 64 * 7 * 7 + 9 * 64 * 32 * 14 * 14     # decoder: fc, deconvs
            + 9 * 32 * 28 * 28)                                          # (input pixels each)
    assert explore.forward_multiply_adds(m) == hand


# -- the package's shape ---------------------------------------------------------------------
LAYERS = [
    {"data", "configs", "validation", "repro", "pca", "estimators", "linear_gaussian", "locks"},
    {"layers", "losses", "flows", "importance"},
    {"networks"},
    {"models", "autoencoders", "cifar", "conditional"},
    {"images", "factory", "pipeline", "execution", "runs", "metrics", "explore", "plotting",
     "inference"},
    {"train"},
    {"pretrained", "publish"},
    {"widgets", "__main__", "_console", "exercises"},
]
RANK = {m: i for i, group in enumerate(LAYERS) for m in group}


def package_imports(path, depth=1):
    """The package modules a module imports (at any depth: lazy imports count too).
    ``depth``: how deep the module sits (2 inside a subpackage such as exercises/)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == depth:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("vae_course."):
            found.add(node.module.split(".")[1])
    return found - {"__init__"}


def test_every_module_has_a_layer_and_imports_only_downward_or_sideways():
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    modules |= {p.parent.name for p in PACKAGE.glob("*/__init__.py")}      # subpackages
    assert modules == set(RANK), f"unplaced: {modules - set(RANK)}; gone: {set(RANK) - modules}"
    files = [(p.stem, p, 1) for p in PACKAGE.glob("*.py") if p.stem != "__init__"]
    files += [(p.parent.name, p, 2) for p in PACKAGE.glob("*/*.py")]
    upward = []
    for name, path, depth in files:
        for dep in package_imports(path, depth):
            if dep in RANK and RANK[dep] > RANK[name]:
                upward.append(f"{path.relative_to(PACKAGE)} -> {dep}")
    assert not upward, upward


def test_no_module_is_over_400_lines():
    sizes = {str(p.relative_to(PACKAGE)): len(p.read_text().splitlines())
             for p in PACKAGE.glob("**/*.py")}
    assert max(sizes.values()) <= 400, {k: v for k, v in sizes.items() if v > 400}


def test_cli_help_needs_neither_tensorflow_nor_keras():
    code = ("import sys, vae_course.__main__ as m\n"
            "try:\n    m.main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(k for k in sys.modules if k.split('.')[0] in "
            "('tensorflow', 'keras', 'jax', 'torch')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout[-500:]


def test_a_wrapper_model_plugs_in_too():
    """cifar.Bernoulli256 is no Keras model, only the interface's pieces around one."""
    from vae_course import cifar

    vae = models.mlp_vae(latent_dim=2, hidden_units=8, hidden_layers=1, seed=0,
                         image_shape=(32, 32, 3))
    scored = cifar.Bernoulli256(vae)
    x = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3)).astype("uint8")
    elbo = metrics.elbo(scored, x)
    iwae = metrics.log_likelihood(scored, x, k=8)
    assert elbo.shape == iwae.shape == (3,) and np.isfinite(iwae).all()
    assert (iwae > -3072 * np.log(256) * 2).all()   # a proper distribution over 256 levels
