"""From a :class:`~vae_course.configs.TrainConfig` to a model: the trainer's, the CLI's and
the checkpoint check's one model factory. The defaults of each architecture live in its
builder (``models.mlp_vae``, ``cifar.cifar_vae``); a config field left at ``None`` takes it."""

from __future__ import annotations

from .configs import TrainConfig


def register_models():
    """Import every module that registers a Keras-serializable class of the package, so that
    ``keras.saving.load_model`` (safe mode) can rebuild any shipped or checkpointed model."""
    from . import autoencoders, cifar, conditional, flows, layers, models  # noqa: F401


def build_model(config: TrainConfig):
    """A fresh, untrained model for ``config``."""
    from . import cifar, data, models

    extra = {"iwae_samples": config.iwae_samples} if config.iwae_samples > 1 else {}
    if config.model == "cifar-conv":
        return cifar.cifar_vae(config.latent_dim, flow_steps=config.flow_steps,
                               nr_mix=config.nr_mix, seed=config.seed, **extra)
    if config.model == "cvae":
        from .conditional import conditional_vae

        return conditional_vae(config.latent_dim, beta=config.beta, seed=config.seed, **extra)
    if config.model == "mlp":
        sizes = {k: v for k, v in (("hidden_units", config.hidden_units),
                                   ("hidden_layers", config.hidden_layers)) if v is not None}
        return models.mlp_vae(config.latent_dim, kl=config.kl, beta=config.beta,
                              seed=config.seed, image_shape=data.IMAGE_SHAPES[config.dataset],
                              **sizes, **extra)
    return models.conv_vae(config.latent_dim, kl=config.kl, beta=config.beta, seed=config.seed,
                           **extra)
