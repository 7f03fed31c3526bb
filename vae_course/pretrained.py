"""Pretrained models shipped with the package, each checked against its SHA-256 before loading.

``load(name)`` returns a ready model (a :class:`vae_course.models.VAE`, a
:class:`vae_course.cifar.FlowVAE` or an :class:`vae_course.autoencoders.Autoencoder`);
``info(name)`` its manifest entry (preset, epochs, test ELBO, IS-NLL, wall time, library
versions, checksum); ``asset(name, key)`` the path of a shipped extra (``"gif"`` of per-epoch
images, ``"log"`` CSV).

What ships is weights only (``<name>.weights.h5``): the architecture is rebuilt from the
package's own builders and the manifest entry's ``config`` (:func:`build`), then the weights
are read into it. A whole-model ``.keras`` file records each layer's full Keras config, which
a Keras older than the one that saved it refuses (new config keys); a weights file holds only
arrays and reads the same on every Keras the package accepts (``make floors`` tests the
lowest). Loading runs no code from the file.
"""

from __future__ import annotations

import json
from pathlib import Path

from .data import sha256sum

DIRECTORY = Path(__file__).with_name("pretrained")
MANIFEST = DIRECTORY / "manifest.json"


class PretrainedError(ValueError):
    """A pretrained file is missing, altered or of the wrong kind."""


def manifest() -> dict:
    return json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}


def names() -> list[str]:
    return sorted(manifest())


def info(name: str) -> dict:
    entries = manifest()
    if name not in entries:
        raise PretrainedError(f"Unknown pretrained model {name!r}. "
                              f"Valid names: {', '.join(sorted(entries)) or '(none shipped)'}.")
    return entries[name]


def _checked(name: str, filename: str, sha256: str) -> Path:
    path = DIRECTORY / filename
    if not path.exists():
        raise PretrainedError(f"Pretrained file {path} for {name!r} is missing; reinstall "
                              f"vae-course to restore it.")
    actual = sha256sum(path)
    if actual != sha256:
        raise PretrainedError(f"Pretrained file {path} for {name!r} is altered or truncated: "
                              f"expected SHA-256 {sha256}, received {actual}. Reinstall vae-course.")
    return path


def asset(name: str, key: str) -> Path:
    """Path of a checked extra file of a pretrained model: ``"gif"`` or ``"log"``."""
    entry = info(name)
    assets = entry.get("assets", {})
    if key not in assets:
        raise PretrainedError(f"Pretrained model {name!r} has no asset {key!r}. "
                              f"Available: {', '.join(sorted(assets))}.")
    return _checked(name, assets[key]["file"], assets[key]["sha256"])


def build(name: str):
    """An untrained model with pretrained ``name``'s architecture, from the manifest's config.

    Every layer is built (the IAF steps build on their first call), so that all the weights
    exist before :func:`load` reads them.
    """
    entry = info(name)
    config = entry["config"]
    if entry["kind"] == "autoencoder":
        from . import autoencoders

        builders = {"conv_autoencoder": autoencoders.conv_autoencoder}
        if config.get("model") not in builders:
            raise PretrainedError(f"Pretrained model {name!r} has an unknown architecture "
                                  f"{config.get('model')!r}; upgrade vae-course.")
        return builders[config["model"]](config["code_size"],
                                         upsampling=config.get("upsampling", "nearest"))
    from .configs import TrainConfig
    from .factory import build_model

    model = build_model(TrainConfig.from_dict(config))
    model(model.example_input())   # builds the layers made on first call (the IAF steps)
    return model


def _variables_in(path) -> int:
    """The number of the model's arrays a Keras ``.weights.h5`` file holds (an optimizer's
    state, if any, is not counted)."""
    import h5py

    found = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda key, item: found.append(key) if isinstance(item, h5py.Dataset)
                     and not key.startswith("optimizer/") else None)
    return len(found)


def load(name: str):
    """Load pretrained model ``name``: its architecture from code, its checked weights."""
    entry = info(name)
    path = _checked(name, entry["file"], entry["sha256"])
    model = build(name)
    stored = _variables_in(path)
    if stored != len(model.weights):
        raise PretrainedError(f"Pretrained file {path} holds {stored} arrays, but the model "
                              f"built for {name!r} has {len(model.weights)} variables; "
                              f"reinstall vae-course.")
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.load_weights(path)
    skipped = [str(w.message) for w in caught if "skipping" in str(w.message).lower()]
    if skipped:   # Keras loads what matches and leaves the rest at its initial values
        raise PretrainedError(f"Pretrained file {path} does not fit the architecture built "
                              f"for {name!r} ({skipped[0]}); reinstall vae-course.")
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return model
