"""vae_course: the models, losses and training code behind the VAE course book.

    from vae_course import data, models, train, pretrained
    model = pretrained.load("mnist-conv-latent2")
"""

__version__ = "0.1.0"

from . import (autoencoders, configs, data, layers, losses, metrics, models,  # noqa: E402
               networks, pca, pretrained)
from . import estimators, explore, linear_gaussian, mlp  # noqa: E402
from .configs import PRESETS, TrainConfig, get_preset  # noqa: E402
from .models import VAE, conv_vae  # noqa: E402

__all__ = ["PRESETS", "TrainConfig", "VAE", "autoencoders", "configs", "conv_vae", "data", "get_preset",
           "layers", "losses", "metrics", "models", "networks", "pca", "pretrained",
           "estimators", "explore", "linear_gaussian", "mlp"]
