"""The MLP VAE of the ELBO and reparameterization chapters (784 -> hidden -> latent and back)."""

from __future__ import annotations

from . import networks
from .models import VAE


def mlp_vae(latent_dim: int = 2, hidden_units: int = 400, hidden_layers: int = 2,
            kl: str = "analytic", beta: float = 1.0, seed=None):
    """A VAE whose encoder and decoder are ``hidden_layers`` ReLU layers of ``hidden_units`` each.

    x: (batch, 28, 28, 1) in {0, 1}; z: (batch, latent_dim); Bernoulli logits (batch, 28, 28, 1).
    """
    for name, value in (("hidden_units", hidden_units), ("hidden_layers", hidden_layers)):
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"Expected {name} to be a positive integer. Received: {name}={value!r}")
    units = (hidden_units,) * hidden_layers
    return VAE(networks.build_dense_encoder(latent_dim, units),
               networks.build_dense_decoder(latent_dim, units),
               kl=kl, beta=beta, seed=seed, name="mlp_vae")
