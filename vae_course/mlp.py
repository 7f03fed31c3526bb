"""The MLP VAE of the ELBO and reparameterization chapters (784 -> hidden -> latent and back)."""

from __future__ import annotations

from . import networks
from .models import VAE


def mlp_vae(latent_dim: int = 2, hidden_units: int = 400, hidden_layers: int = 2,
            kl: str = "analytic", beta: float = 1.0, seed=None, image_shape=(28, 28, 1)):
    """A VAE whose encoder and decoder are ``hidden_layers`` ReLU layers of ``hidden_units`` each.

    x: (batch, *image_shape) in {0, 1} (MNIST: (28, 28, 1)); z: (batch, latent_dim); Bernoulli
    logits with the shape of x. On CIFAR-10, ``image_shape=(32, 32, 3)`` gives the common
    tutorial start whose cross-entropy on grey levels is not a likelihood (the IAF chapter).
    """
    for name, value in (("hidden_units", hidden_units), ("hidden_layers", hidden_layers)):
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"Expected {name} to be a positive integer. Received: {name}={value!r}")
    units = (hidden_units,) * hidden_layers
    return VAE(networks.build_dense_encoder(latent_dim, units, input_shape=image_shape),
               networks.build_dense_decoder(latent_dim, units, output_shape=image_shape),
               kl=kl, beta=beta, seed=seed, name="mlp_vae")
