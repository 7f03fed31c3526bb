"""Pretrained models shipped with the package, each checked against its SHA-256 before loading.

``load(name)`` returns a ready :class:`vae_course.models.VAE`; ``info(name)`` its manifest
entry (preset, epochs, test ELBO, IS-NLL, wall time, library versions, checksum); ``asset(name,
key)`` the path of a shipped extra (``"gif"`` of per-epoch images, ``"log"`` CSV).
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


def load(name: str):
    """Load pretrained model ``name`` (safe mode: no code from the file is executed)."""
    import keras

    from .factory import register_models

    register_models()   # the package's Keras classes, for safe-mode loading

    entry = info(name)
    path = _checked(name, entry["file"], entry["sha256"])
    return keras.saving.load_model(path, compile=False, safe_mode=True)
