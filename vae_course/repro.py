"""The reproducibility card at the end of every chapter.

``repro.setup(seed)`` (or ``repro.start(seed)``) in a chapter's set-up cell seeds Python, NumPy and the Keras backend and
starts timing every cell that runs after it; ``repro.card()`` in the last cell reports the
library versions, the seed, the device, and the wall time of the cells, slowest first::

    from vae_course import repro
    repro.start(seed=0)
    ...
    repro.card()
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field


@dataclass
class _Session:
    seed: int
    started: float = field(default_factory=time.perf_counter)
    cells: list = field(default_factory=list)   # (seconds, first line of the cell)
    _t0: float | None = None
    _source: str = ""

    def pre(self, info):
        self._t0 = time.perf_counter()
        self._source = getattr(info, "raw_cell", "") or ""

    def post(self, result):
        if self._t0 is not None:
            first = next((ln.strip() for ln in self._source.splitlines()
                          if ln.strip() and not ln.strip().startswith("#")), "")
            self.cells.append((time.perf_counter() - self._t0, first[:70]))
            self._t0 = None


_session: _Session | None = None


def start(seed: int = 0) -> None:
    """Seed everything (``keras.utils.set_random_seed``) and time the cells that follow."""
    global _session
    import keras

    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"Expected a non-negative integer seed. Received: seed={seed!r}")
    keras.utils.set_random_seed(seed)
    previous, _session = _session, _Session(seed)
    try:
        from IPython import get_ipython
    except ImportError:  # plain Python: seeds only
        return
    ip = get_ipython()
    if ip is None:
        return
    if previous is not None:   # started twice in one kernel: replace the old hooks
        for event, fn in (("pre_run_cell", previous.pre), ("post_run_cell", previous.post)):
            try:
                ip.events.unregister(event, fn)
            except ValueError:
                pass
    ip.events.register("pre_run_cell", _session.pre)
    ip.events.register("post_run_cell", _session.post)


def setup(seed: int = 0) -> bool:
    """A chapter's set-up cell in one call; returns whether quick mode is on.

    Seeds Python, NumPy and Keras and times the cells that follow (:func:`start`), prints
    the Keras version and backend and the package version, and returns
    :func:`vae_course.configs.quick` (``$VAE_COURSE_QUICK=1`` shortens the live cells)::

        QUICK = repro.setup(seed=0)
    """
    import keras

    from . import __version__
    from .configs import quick

    start(seed)
    print(f"Keras {keras.__version__} on {keras.backend.backend()}, vae_course {__version__}"
          + (" (quick mode)" if quick() else ""))
    return quick()


def glue(name: str, value, fmt: str | None = None):
    """Make ``value`` available to the chapter's prose as ``{glue:text}`name```.

    The book build (MyST-NB) stores it in the executed notebook, so a number in the text is
    the number the cell computed; ``fmt`` (e.g. ``".2f"``) formats it first. Outside the
    book build (Colab, plain Jupyter without myst-nb) nothing is shown. Returns None, so a
    cell that ends with it shows nothing.
    """
    shown = format(value, fmt) if fmt else value
    try:
        from myst_nb import glue as _glue
    except ImportError:   # e.g. on Colab: the prose is not rendered there
        return None
    _glue(name, shown, display=False)
    return None


def device() -> str:
    """What the backend computes on, e.g. ``"CPU (2 cores)"`` or ``"GPU: NVIDIA T4"``."""
    import os

    import keras

    backend = keras.backend.backend()
    gpus = []
    if backend == "tensorflow":
        import tensorflow as tf

        for gpu in tf.config.list_physical_devices("GPU"):
            details = tf.config.experimental.get_device_details(gpu)
            gpus.append(details.get("device_name", gpu.name))
    elif backend == "jax":
        import jax

        gpus = [d.device_kind for d in jax.devices() if d.platform != "cpu"]
    elif backend == "torch":
        import torch

        gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    if gpus:
        return "GPU: " + ", ".join(gpus)
    return f"CPU ({os.cpu_count()} cores, {platform.machine()})"


def versions() -> dict:
    import importlib
    import sys

    import keras
    import numpy as np

    from . import __version__

    out = {"python": platform.python_version(), "vae_course": __version__,
           "keras": keras.__version__, "backend": keras.backend.backend(), "numpy": np.__version__}
    for name in ("tensorflow", "tensorflow_probability", "jax", "torch"):   # those in use
        if name in sys.modules:
            out[name] = getattr(importlib.import_module(name), "__version__", "?")
    return out


def card(slowest: int = 3):
    """The chapter's reproducibility card, as Markdown (a notebook displays it as a table)."""
    lines = ["| | |", "|---|---|"]
    for key, value in versions().items():
        lines.append(f"| {key} | {value} |")
    lines.append(f"| device | {device()} |")
    if _session is None:
        lines.append("| seed | not set (call `repro.start(seed)` first) |")
    else:
        total = sum(t for t, _ in _session.cells)
        lines.append(f"| seed | {_session.seed} |")
        lines.append(f"| live cells | {len(_session.cells)} cells, {total:.1f} s of wall time |")
        for t, first in sorted(_session.cells, reverse=True)[:slowest]:
            lines.append(f"| slow cell | {t:.1f} s: `{first.replace('|', '/')}` |")
    from .configs import quick

    lines.append(f"| quick mode | {'on (VAE_COURSE_QUICK)' if quick() else 'off'} |")
    text = "\n".join(lines)
    try:
        from IPython.display import Markdown

        return Markdown(text)
    except ImportError:
        return text
