"""Training configurations: one frozen dataclass and a few named presets."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

QUICK_ENV = "VAE_COURSE_QUICK"


def quick() -> bool:
    """True when ``$VAE_COURSE_QUICK`` is set to a true value: chapters shorten live training."""
    return os.environ.get(QUICK_ENV, "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class TrainConfig:
    model: str = "conv"               # "conv": the TensorFlow tutorial's conv encoder/decoder;
                                      # "mlp": dense encoder/decoder (models.mlp_vae);
                                      # "cifar-conv": cifar.cifar_vae (CIFAR-10 only);
                                      # "cvae": conditional.conditional_vae (MNIST, labels in)
    dataset: str = "mnist"            # "mnist" or "cifar10"
    latent_dim: int = 2               # size of z
    binarization: str = "static"      # "static": threshold at 0.5; "dynamic": resample each epoch
    kl: str = "analytic"              # "analytic" (closed form) or "monte_carlo" (tutorial)
    beta: float = 1.0                 # KL weight; 1.0 is the ELBO
    iwae_samples: int = 1             # 1: train on the ELBO; k > 1: on the importance-weighted
                                      # bound with k draws per image (Burda et al., 2016)
    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 2e-3       # Adam
    lr_cooldown: int = 0              # the last N epochs train at learning_rate / 10
    seed: int = 0                     # weights, shuffling, sampling noise
    train_examples: int | None = None  # None: all 60,000; a smaller number takes a prefix
    test_examples: int | None = None   # None: all 10,000
    validation_examples: int = 0      # the last N training examples held out for validation:
                                      # the val_* columns of log.csv and early stopping use
                                      # them (0: none, and val_* watch the test set, for
                                      # monitoring only; nothing is chosen on test data)
    patience: int = 0                 # early stopping: stop once the validation ELBO has not
                                      # improved for this many epochs, keep the best epoch's
                                      # weights (0: off; needs validation_examples > 0;
                                      # watches the ELBO, also with iwae_samples > 1)
    jit_compile: str = "auto"         # "auto" (XLA on GPU only), "on" or "off"
    mixed_precision: bool = False     # mixed_float16 compute, float32 losses (for GPUs)
    deterministic: bool = False       # op determinism: bit-for-bit repeatable CPU runs
    strategy: str = "default"         # "default" (one device) or "mirrored": tf.distribute's
                                      # MirroredStrategy over all GPUs (else all logical CPUs),
                                      # each batch_size batch split across them
    steps_per_execution: int | None = None  # training steps per compiled call (same updates);
                                      # None: 16 (1 when mirrored, and under torch)
    hidden_units: int | None = None   # mlp only: units per hidden layer (None: the builder's)
    hidden_layers: int | None = None  # mlp only: hidden layers per network (None: the builder's)
    flow_steps: int = 0               # cifar-conv only: IAF steps after the Gaussian (0: none)
    nr_mix: int = 1                   # cifar-conv only: logistic mixture components per pixel
    description: str = field(default="", compare=False)

    def __post_init__(self):
        checks = [
            (self.model in ("conv", "mlp", "cifar-conv", "cvae"),
             "model 'conv', 'mlp', 'cifar-conv' or 'cvae'", self.model),
            (self.model != "cvae" or (self.dataset, self.binarization) == ("mnist", "static"),
             "model 'cvae' with dataset 'mnist' and binarization 'static'",
             (self.model, self.dataset, self.binarization)),
            (self.dataset in ("mnist", "cifar10"), "dataset 'mnist' or 'cifar10'", self.dataset),
            (self.model != "cifar-conv" or self.dataset == "cifar10",
             "model 'cifar-conv' with dataset 'cifar10'", (self.model, self.dataset)),
            (self.model in ("mlp", "cifar-conv") or self.dataset == "mnist",
             "model 'mlp' or 'cifar-conv' for dataset 'cifar10'", (self.model, self.dataset)),
            (self.binarization in ("static", "dynamic"), "binarization 'static' or 'dynamic'",
             self.binarization),
            (self.kl in ("analytic", "monte_carlo"), "kl 'analytic' or 'monte_carlo'", self.kl),
            (self.jit_compile in ("auto", "on", "off"), "jit_compile 'auto', 'on' or 'off'",
             self.jit_compile),
            (self.strategy in ("default", "mirrored"), "strategy 'default' or 'mirrored'",
             self.strategy),
            # Keras 3.15's TensorFlow trainer fails (a graph placeholder error) when both are on
            (self.strategy != "mirrored" or self.steps_per_execution in (None, 1),
             "steps_per_execution 1 with strategy 'mirrored'",
             (self.strategy, self.steps_per_execution)),
        ]

        def integer(value):
            return isinstance(value, int) and not isinstance(value, bool)

        for name, lo, hi in [("latent_dim", 1, 4096), ("epochs", 1, 100_000),
                             ("lr_cooldown", 0, self.epochs if integer(self.epochs) else 100_000),
                             ("batch_size", 1, 65_536), ("flow_steps", 0, 64), ("nr_mix", 1, 32),
                             ("seed", 0, 2**32 - 1), ("steps_per_execution", 1, 100_000),
                             ("validation_examples", 0, 10_000_000), ("patience", 0, 100_000),
                             ("iwae_samples", 1, 4096)]:
            value = getattr(self, name)
            if name == "steps_per_execution" and value is None:
                continue
            ok = integer(value) and lo <= value <= hi
            checks.append((ok, f"{name} an integer in [{lo}, {hi}]", value))
        for name in ("hidden_units", "hidden_layers"):
            value = getattr(self, name)
            ok = value is None or (integer(value) and 0 < value <= 65_536 and self.model == "mlp")
            checks.append((ok, f"{name} None, or a positive integer with model 'mlp'", value))
        for name in ("train_examples", "test_examples"):
            value = getattr(self, name)
            ok = value is None or (integer(value) and value > 0)
            checks.append((ok, f"{name} None or a positive integer", value))
        def number(value):   # NaN and infinities then fail the range comparisons
            return isinstance(value, (int, float)) and not isinstance(value, bool)

        lr, beta = self.learning_rate, self.beta
        checks += [(number(lr) and 0 < lr < 10, "learning_rate a number in (0, 10)", lr),
                   (number(beta) and 0 <= beta < 1e4, "beta a number in [0, 1e4)", beta)]
        for name in ("mixed_precision", "deterministic"):
            checks.append((isinstance(getattr(self, name), bool), f"{name} True or False",
                           getattr(self, name)))
        checks += [(isinstance(self.description, str), "description a string", self.description),
                   (self.flow_steps == 0 or self.model == "cifar-conv",
                    "flow_steps 0 unless model 'cifar-conv'", (self.model, self.flow_steps)),
                   (self.nr_mix == 1 or self.model == "cifar-conv",
                    "nr_mix 1 unless model 'cifar-conv'", (self.model, self.nr_mix)),
                   (self.iwae_samples == 1 or self.beta == 1,
                    "beta 1 with iwae_samples > 1 (the IWAE bound has no KL weight)",
                    (self.beta, self.iwae_samples))]
        # Early stopping chooses an epoch, so it must watch held-out training data, never the
        # test set (which then could not give an honest final score).
        checks.append((self.patience == 0 or (integer(self.validation_examples)
                                               and self.validation_examples > 0),
                       "patience 0, or a validation split (validation_examples > 0, e.g. "
                       "5000) for early stopping to watch; the test set is never used to "
                       "choose an epoch", (self.patience, self.validation_examples)))
        for ok, expected, received in checks:
            if not ok:
                raise ValueError(f"Expected {expected}. Received: {received!r}")

    @property
    def steps_per_call(self) -> int:
        """``steps_per_execution`` as used: 16 unless set; 1 with strategy "mirrored" and under
        the torch backend (Keras 3.15's torch trainer takes only 1)."""
        if self.steps_per_execution is not None:
            return self.steps_per_execution
        import keras

        return 1 if self.strategy == "mirrored" or keras.backend.backend() == "torch" else 16

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        if not isinstance(d, dict):
            raise ValueError(f"Expected a JSON object (dict) of config fields. Received a "
                             f"{type(d).__name__}.")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"Unknown config fields {unknown}. Expected a subset of {sorted(names)}.")
        return cls(**d)


PRESETS = {
    "tutorial": TrainConfig(
        kl="monte_carlo", batch_size=32, learning_rate=1e-4,
        description="The TensorFlow tutorial's settings: batch 32, Adam 1e-4, single-sample "
                    "Monte Carlo ELBO, static binarization, latent 2, 10 epochs."),
    "mnist-conv": TrainConfig(
        description="Recommended: the tutorial's model with analytic KL, batch 64, Adam 2e-3."),
    "quick": TrainConfig(
        epochs=2, train_examples=2048, test_examples=512,
        description="A tiny run for tests and CI: 2 epochs on 2,048 images."),
    "mnist-mlp": TrainConfig(
        model="mlp", latent_dim=32, hidden_units=400, hidden_layers=2, binarization="dynamic",
        batch_size=100, learning_rate=1e-3, epochs=106,
        description="MLP VAE 784-400-400-32 on dynamically binarized MNIST, for the "
                    "importance-sampled test log-likelihood (the training chapter)."),
    "mnist-mlp-iwae": TrainConfig(
        model="mlp", latent_dim=50, hidden_units=400, hidden_layers=2, binarization="dynamic",
        batch_size=100, learning_rate=1e-3, iwae_samples=5, epochs=320, lr_cooldown=100,
        description="MLP VAE 784-400-400-50 trained on the IWAE bound with 5 draws per image "
                    "(Burda et al., 2016), the last 100 of 320 epochs at a tenth of the rate: "
                    "the book's best MNIST likelihood (the training chapter)."),
    "mnist-mlp-latent2": TrainConfig(
        model="mlp", latent_dim=2, hidden_units=400, hidden_layers=2, binarization="dynamic",
        batch_size=100, learning_rate=1e-3, epochs=10,
        description="MLP VAE 784-400-400-2 on dynamically binarized MNIST: a latent space "
                    "small enough to draw."),
    "cifar-mlp": TrainConfig(
        model="mlp", dataset="cifar10", latent_dim=256, hidden_units=256, hidden_layers=2,
        batch_size=100, learning_rate=1e-3, epochs=5,
        description="The common tutorial start on CIFAR-10: MLP 3072-256-256-256 with a "
                    "Bernoulli decoder on pixels scaled to [0, 1] (cross-entropy; not a "
                    "likelihood of 8-bit images, see the IAF chapter)."),
    "cifar-conv": TrainConfig(
        model="cifar-conv", dataset="cifar10", latent_dim=32, nr_mix=1, batch_size=64,
        learning_rate=2e-3, epochs=17, lr_cooldown=1,
        description="Convolutional VAE on CIFAR-10: an 8x8 map of 32-channel latents with a "
                    "diagonal-Gaussian posterior, a discretized logistic per sub-pixel with "
                    "R->G->B coupling (the IAF chapter's baseline)."),
    "cifar-iaf": TrainConfig(
        model="cifar-conv", dataset="cifar10", latent_dim=32, nr_mix=1, flow_steps=2,
        batch_size=64, learning_rate=2e-3, epochs=17, lr_cooldown=1,
        description="The same VAE with 2 inverse-autoregressive-flow steps after the Gaussian "
                    "(Kingma et al., 2016): 3x3 masked convolutions over the latent map."),
    "cifar-quick": TrainConfig(
        model="cifar-conv", dataset="cifar10", latent_dim=8, nr_mix=1, flow_steps=2,
        epochs=2, train_examples=1024, test_examples=256,
        description="A tiny IAF run on CIFAR-10 for tests and CI: 2 epochs on 1,024 images."),
    "mnist-cvae": TrainConfig(
        model="cvae", epochs=20,
        description="Conditional VAE: the conv VAE's networks with the digit's one-hot label "
                    "in the encoder and the decoder; latent 2, bound on log p(x | y)."),
    "mnist-cvae-latent16": TrainConfig(
        model="cvae", latent_dim=16, epochs=20,
        description="The conditional VAE with a 16-dimensional z, for the likelihood and the "
                    "generative classifier of the conditional-VAE chapter."),
    "mnist-mlp-latent16": TrainConfig(
        model="mlp", latent_dim=16, hidden_units=400, hidden_layers=2, binarization="dynamic",
        batch_size=100, learning_rate=1e-3, epochs=8,
        description="MLP VAE 784-400-400-16 on dynamically binarized MNIST; trained with beta "
                    "0.1, 1 and 4 for the KL-weight comparison of the training chapter."),
}


def get_preset(name: str) -> TrainConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"Unknown preset {name!r}. Valid presets: {', '.join(PRESETS)}.") from None
