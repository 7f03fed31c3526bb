"""vae_course: the models, losses and training code behind the VAE course book.

    from vae_course import data, models, train, pretrained
    model = pretrained.load("mnist-conv-latent2")

Submodules load on first use (``vae_course.metrics`` imports Keras; ``import vae_course`` and
the command line's ``--help`` do not). The layers, lowest first:

    data, configs, validation, repro, pca, estimators, linear_gaussian,   NumPy / plain Python
    locks
    layers, losses, flows                                                 Keras ops
    networks                                                              encoders, decoders
    models, autoencoders, cifar, conditional                              the models
    images, factory, pipeline, execution, runs, metrics, inference, explore, plotting
    train                                                                 the training loop
    pretrained, publish                                                   shipped models
    widgets, __main__, exercises                                          explorer, CLI, checkers
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

__all__ = ["PRESETS", "TrainConfig", "VAE", "autoencoders", "cifar", "conditional", "configs",
           "conv_vae", "data", "estimators", "execution", "exercises", "explore",
           "factory", "flows", "get_preset", "images", "importance", "inference", "layers",
           "linear_gaussian", "locks", "losses", "metrics", "mlp_vae", "models",
           "networks", "pca", "pipeline", "plotting", "pretrained", "publish", "repro",
           "runs", "train", "validation", "widgets"]

_NAMES = {"PRESETS": "configs", "TrainConfig": "configs", "get_preset": "configs",
          "VAE": "models", "conv_vae": "models", "mlp_vae": "models"}


def __getattr__(name):
    """Import submodules (and the few names above) when first used (PEP 562)."""
    if name in _NAMES:
        return getattr(importlib.import_module(f".{_NAMES[name]}", __name__), name)
    if name in __all__:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
