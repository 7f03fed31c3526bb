"""vae_course's Jupyter Server extension: no Nagle delay on kernel websockets.

A module of its own, beside the package, so that the server does not import TensorFlow.

Jupyter Server never calls ``set_nodelay`` on its kernel websockets, so the operating system
holds back a small message while an earlier one is unacknowledged, and browsers acknowledge
late (up to 40 ms on Linux). A kernel answers every widget message with three or more small
messages (busy, the update, idle), so each answer waited for one delayed acknowledgement:
measured here in JupyterLab, the explorer's round trip during a drag was 50-65 ms with Nagle
and 12-26 ms without it (``tests/test_browser.py`` prints the figures). Tornado's own
documentation recommends ``set_nodelay(True)`` for websockets that send small messages.

``pip install`` enables the extension (it installs ``jupyter-config/vae_course.json`` into
the environment's ``etc/jupyter/jupyter_server_config.d``); an editable install skips data
files, so ``make`` copies that file into ``.venv``. ``jupyter server extension list`` shows it.
"""

from __future__ import annotations

import functools


def _jupyter_server_extension_points():
    return [{"module": "vae_course_jupyter"}]


def nodelay(open_):
    """Wrap a websocket handler's ``open`` so that its connection sends without delay."""
    if getattr(open_, "_vae_course_nodelay", False):
        return open_   # already wrapped: loading the extension twice changes nothing

    @functools.wraps(open_)
    async def open(self, *args, **kwargs):
        self.set_nodelay(True)
        return await open_(self, *args, **kwargs)

    open._vae_course_nodelay = True
    return open


def _load_jupyter_server_extension(serverapp):
    from jupyter_server.services.kernels.websocket import KernelWebsocketHandler

    KernelWebsocketHandler.open = nodelay(KernelWebsocketHandler.open)
    serverapp.log.info("vae_course: kernel websockets send without Nagle's delay (TCP_NODELAY)")
