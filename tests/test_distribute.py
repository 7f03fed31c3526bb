"""Multi-device training: tf.distribute.MirroredStrategy over two logical CPU devices.

TensorFlow-only (tf.distribute). Logical devices must be configured before TensorFlow
initializes, so each check runs in a fresh Python process.
"""

import json
import os
import subprocess
import sys
import textwrap

import keras
import pytest

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                reason="tf.distribute is TensorFlow-only")

PRELUDE = """
import json
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from vae_course import configs, data, execution, layers, losses, models, train
"""

SAME_LOSS = """
# Sampling without noise (z = z_mean): the loss is then a deterministic function of the weights
# and the batch, so one device and two can be compared step for step.
layers.Sampling.call = lambda self, inputs: inputs[0] + 0.0 * inputs[1]
if UNSCALED:
    losses.scale_for_replicas = lambda loss: loss
x = np.asarray(__import__("numpy").load(PATH))

def run(strategy):
    keras.utils.set_random_seed(0)
    with execution.distribution_scope(strategy) as s:
        model = models.conv_vae(2, seed=0)
        model.compile(optimizer=keras.optimizers.SGD(0.01), jit_compile=False)
        h = model.fit(x, batch_size=64, epochs=2, shuffle=False, verbose=0)
    return (h.history["loss"], [w.numpy() for w in model.weights],
            s.num_replicas_in_sync if s else 1)

l1, w1, n1 = run("default")
l2, w2, n2 = run("mirrored")
print(json.dumps({"replicas": [n1, n2], "loss": [l1, l2],
                  "weight_diff": max(float(np.max(np.abs(a - b))) for a, b in zip(w1, w2))}))
"""


def run_python(code, tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                            text=True, timeout=600, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def images(tmp_path_factory, mnist):
    import numpy as np

    from vae_course import data

    path = tmp_path_factory.mktemp("mirrored") / "x.npy"
    np.save(path, data.binarize_static(mnist[0][0][:1024]))
    return path


@pytest.mark.parametrize("unscaled", [False, True], ids=["as-shipped", "without-scaling"])
@pytest.mark.slow
def test_two_devices_give_the_loss_of_one(images, tmp_path, unscaled):
    out = run_python(PRELUDE + f"PATH, UNSCALED = {str(images)!r}, {unscaled}\n" + SAME_LOSS,
                     tmp_path)
    assert out["replicas"] == [1, 2]
    (one, two) = out["loss"]
    if unscaled:   # the check can fail: without the division, two replicas double the step
        assert not all(abs(a - b) <= 1e-3 * abs(a) for a, b in zip(one, two))
        return
    assert all(abs(a - b) <= 1e-4 * abs(a) for a, b in zip(one, two)), out["loss"]
    assert out["weight_diff"] < 1e-2, out["weight_diff"]   # 32 SGD steps of float32 sums


@pytest.mark.slow
def test_train_cli_config_runs_mirrored(tmp_path):
    out = run_python(PRELUDE + f"""
config = configs.get_preset("quick").replace(epochs=1, train_examples=512, test_examples=128,
                                             strategy="mirrored")
model, history = train.train(config, {str(tmp_path / "run")!r}, verbose=0)
print(json.dumps({{"rows": len(history), "elbo": float(history[-1]["val_elbo"]),
                   "replicas": model.distribute_strategy.num_replicas_in_sync}}))
""", tmp_path)
    assert out["rows"] == 1 and out["replicas"] == 2
    assert -800 < out["elbo"] < -100, out


def test_mirrored_with_several_steps_per_execution_is_refused():
    from vae_course import configs

    with pytest.raises(ValueError, match="steps_per_execution 1 with strategy 'mirrored'"):
        configs.TrainConfig(strategy="mirrored", steps_per_execution=4)
