"""Importance weights of a Gaussian posterior, optionally pushed through a flow: what the
IWAE bound, the importance-sampled log-likelihood and IWAE training all start from.

For k draws z_1..z_k ~ q(z|x) per image, the weights w_i = p(x, z_i) / q(z_i|x) give the
bound log (1/k) sum_i w_i <= log p(x) of Burda et al. (2016); k = 1 is the ELBO.
"""

from __future__ import annotations

import keras
from keras import ops

from . import losses
from .layers import reparameterize


def gaussian_log_weights(model, x, k, seed=None, compiled=False, parts=False):
    """Importance weights log p(x|z) + log p(z) - log q(z|x) for k draws per image: (k, batch).
    ``parts=True`` returns the three terms (log p(x|z), log p(z), log q(z|x)) instead, each
    (k, batch), whose sum log p(x|z) + log p(z) - log q(z|x) is the weight.

    For a posterior that is a diagonal Gaussian, optionally pushed through a flow. ``model``
    supplies ``posterior(x) -> (mean, log_var, context)``, ``flow(z0, context) -> (z,
    log_det)``, ``decode_params(z, compiled)``, ``log_px(x, params)`` and ``latent_shape``:

        z_0 = mean + exp(log_var / 2) * eps,  log q(z_0|x) = log N(eps; 0, I) - sum(log_var) / 2
        z, log_det = flow(z_0),               log q(z|x)  = log q(z_0|x) - log_det
    """
    mean, log_var, context = model.posterior(x)
    b = ops.shape(mean)[0]
    eps = keras.random.normal((k, b) + tuple(model.latent_shape), seed=seed)

    def flat(t):     # (k, b, ...) -> (k * b, ...)
        return ops.reshape(t, (k * b,) + tuple(t.shape[2:]))

    def tile(t):     # (b, ...) -> (k * b, ...), image i of every draw at the same place
        return flat(ops.broadcast_to(t[None], (k,) + tuple(ops.shape(t))))

    eps = flat(eps)
    z0 = reparameterize(tile(mean), tile(log_var), eps)
    log_q = losses.reparameterized_log_prob(eps, tile(log_var))
    z, log_det = model.flow(z0, None if context is None else tile(context))
    x = tuple(map(tile, map(ops.convert_to_tensor, x))) if isinstance(x, tuple) \
        else tile(ops.convert_to_tensor(x))
    params = model.decode_params(model.decoder_input(z, x), compiled)
    terms = (model.log_px(x, params), losses.standard_normal_log_prob(z), log_q - log_det)
    terms = tuple(ops.reshape(t, (k, b)) for t in terms)
    return terms if parts else terms[0] + terms[1] - terms[2]
