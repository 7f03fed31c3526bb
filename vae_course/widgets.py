"""The latent explorer: drag a point (or sliders) through a model's latent space and watch the
decoder's image follow.

``latent_explorer(model_or_name, ...)`` works in three places:

- **with a kernel** (JupyterLab 4, Colab, VS Code) it is an `anywidget`_ whose front-end sends
  each new latent point to Python, which decodes it and sends back the pixels (raw bytes, no
  matplotlib redraw);
- **in the static HTML book** (no kernel) the same front-end evaluates the decoder itself: its
  layers and weights are embedded in the page (:func:`decoder_spec`; float32, base64) and a
  few hundred lines of JavaScript run Dense, Conv2D, Conv2DTranspose and UpSampling2D, so
  every point decodes exactly, not just the points of a precomputed grid;
- the static form is chosen when ``static=True`` or ``$VAE_COURSE_STATIC=1`` (``make book``
  sets it), because a page without a kernel cannot run widget code from a CDN offline.

Why not a precomputed grid: a 2-D grid of 28x28 images fine enough to match the decoder at
any dragged point costs megabytes, and the IAF chapter's latent has 2,048 dimensions. The
decoders here have 40k-90k weights (160-360 kB), and decoding one point takes a few
milliseconds of JavaScript.

.. _anywidget: https://anywidget.dev
"""

from __future__ import annotations

import base64
import functools
import html
import io
import json
import os
import uuid
from pathlib import Path

import numpy as np

from .validation import (UnsupportedDecoderError, check_count, check_dims, check_model_images,
                         check_point, check_ranges)

STATIC_ENV = "VAE_COURSE_STATIC"
ESM = Path(__file__).with_name("static") / "explorer.js"


# -- the decoder, exported for the browser ------------------------------------------------
def _b64(a) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode("ascii")


def decoder_spec(decoder, output: str) -> dict:
    """A JSON-able description of a chain-shaped Keras decoder for ``explorer.js``.

    ``output``: ``"sigmoid"`` (the decoder returns Bernoulli logits), ``"identity"`` (it returns
    intensities in [0, 1]) or ``"mixture1"`` (one discretized logistic per sub-pixel,
    :mod:`vae_course.iaf`). Raises :class:`UnsupportedDecoderError` naming the layer when a
    layer is not one the front-end implements, or when the model is not a simple chain.
    """
    import keras

    if output not in ("sigmoid", "identity", "mixture1"):
        raise ValueError(f"Expected output 'sigmoid', 'identity' or 'mixture1'. "
                         f"Received: output={output!r}")
    layers = []
    previous = decoder.inputs[0]
    for layer in decoder.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if layer.input is not previous and getattr(layer.input, "name", None) != previous.name:
            raise UnsupportedDecoderError(
                f"Expected a decoder whose layers form one chain. Received layer "
                f"{layer.name!r}, which does not read the previous layer's output.")
        previous = layer.output
        cfg = layer.get_config()
        entry = {"type": type(layer).__name__, "name": layer.name,
                 "activation": cfg.get("activation", "linear")}
        if isinstance(layer, keras.layers.Dense):
            pass
        elif isinstance(layer, keras.layers.Conv2DTranspose):
            if cfg["padding"] != "same" or tuple(cfg["dilation_rate"]) != (1, 1):
                raise UnsupportedDecoderError(f"Layer {layer.name!r}: only 'same' padding and no "
                                              f"dilation. Received {cfg['padding']!r}.")
            entry["strides"] = list(cfg["strides"])
        elif isinstance(layer, keras.layers.Conv2D):
            same = cfg["padding"] == "same" or tuple(cfg["kernel_size"]) == (1, 1)
            if not same or tuple(cfg["strides"]) != (1, 1) \
                    or tuple(cfg["dilation_rate"]) != (1, 1) or cfg.get("groups", 1) != 1:
                raise UnsupportedDecoderError(
                    f"Layer {layer.name!r}: only stride-1 'same' convolutions. Received strides "
                    f"{cfg['strides']}, padding {cfg['padding']!r}.")
        elif isinstance(layer, keras.layers.Reshape):
            entry["target_shape"] = list(cfg["target_shape"])
        elif isinstance(layer, keras.layers.Flatten):
            pass
        elif isinstance(layer, keras.layers.UpSampling2D):
            if cfg["interpolation"] != "nearest":
                raise UnsupportedDecoderError(f"Layer {layer.name!r}: only nearest upsampling.")
            entry["size"] = list(cfg["size"])
        else:
            raise UnsupportedDecoderError(
                f"Layer {layer.name!r} of type {type(layer).__name__} cannot run in the browser "
                f"explorer (supported: Dense, Conv2D, Conv2DTranspose, UpSampling2D, Reshape, "
                f"Flatten). Use static=False with a kernel.")
        if entry["activation"] not in ("linear", "relu", "elu", "sigmoid", "tanh", None):
            raise UnsupportedDecoderError(f"Layer {layer.name!r}: activation "
                                          f"{entry['activation']!r} is not supported.")
        weights = layer.get_weights()
        if weights:
            entry["kernel"] = _b64(weights[0])
            entry["kernel_shape"] = list(weights[0].shape)
            if len(weights) > 1:
                entry["bias"] = _b64(weights[1])
        layers.append(entry)
    return {"input_shape": [int(d) for d in decoder.inputs[0].shape[1:]], "layers": layers,
            "output": output}


# -- what a model looks like to the explorer ----------------------------------------------
def _check_model(model):
    missing = [m for m in ("point_shape", "encode_point", "decode_mean", "pixel_output",
                           "decoder") if not hasattr(model, m)]
    if missing:
        raise TypeError(f"Expected a vae_course model (VAE, FlowVAE, Autoencoder, or any model "
                        f"with the interface of vae_course.models.LatentModel) or a pretrained "
                        f"name. Received {type(model).__name__}, which has no "
                        f"{', '.join(missing)}.")
    return model


def _decode(model, z_flat) -> np.ndarray:
    """(n, size) flat latent points -> (n, h, w, c) float32 in [0, 1].

    Runs the decoder through Keras's compiled predict step: after the first call a point
    decodes in a few milliseconds, where an eager call costs more.
    """
    from keras import ops

    z = np.asarray(z_flat, dtype="float32").reshape((-1,) + tuple(model.point_shape))
    return np.asarray(ops.convert_to_numpy(model.decode_mean(z, compiled=True)), "float32")


def _encode(model, x, batch_size=1000) -> np.ndarray:
    """The latent points of images (:meth:`encode_point`), flattened: (n, size)."""
    from keras import ops

    from . import data

    parts = [np.asarray(ops.convert_to_numpy(model.encode_point(data.take(x, slice(i, i + batch_size)))))
             for i in range(0, data.count(x), batch_size)]
    return np.concatenate([p.reshape(len(p), -1) for p in parts])


def _scatter_png(points, labels, extent) -> str:
    """The latent scatter as a PNG data URL, drawn once (the pad's background)."""
    # A Figure drawn on its own canvas: never touches pyplot or its backend, so the
    # notebook's later plt figures still show.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2.4, 2.4), dpi=100)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.scatter(points[:, 0], points[:, 1], c=labels, cmap="tab10", s=1.5, alpha=0.5,
               linewidths=0, vmin=0, vmax=9)
    ax.set_xlim(extent[0]); ax.set_ylim(extent[1]); ax.axis("off")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _state(model, dims, ranges, z0, labels, scatter, scale):
    condition = dict(model.condition or {})
    if condition:
        condition["names"] = [str(k) for k in range(condition["classes"])]
    return {"condition": condition, "pad": 240, "dims": [int(d) for d in dims], "ranges": [[float(a), float(b)] for a, b in ranges],
            "labels": labels, "z": [float(v) for v in z0], "image_shape": list(model.image_shape),
            "scatter": scatter, "scale": int(scale)}


def latent_explorer(model, x=None, y=None, *, dims=None, base=None, ranges=None, n_dims=4,
                    scale=None, static=None, label=None):
    """An interactive view of ``model``'s decoder over its latent space.

    Args:
        model: a VAE, FlowVAE or Autoencoder, or the name of a pretrained model.
        x, y: optional images (and labels) whose codes are scattered under the 2-D pad; for a
            FlowVAE, ``x[0]``'s posterior mean is the starting point.
        dims: the latent coordinates (flat indices) the sliders move; default ``(0, 1)`` for a
            2-D latent, otherwise the ``n_dims`` coordinates with the largest spread of
            posterior means over ``x``. The first two span the pad.
        base: the starting latent point (flat); default the prior mean, the codes' median
            (autoencoders) or ``x[0]``'s posterior mean (FlowVAE).
        ranges: (low, high) per dimension in ``dims``; default +/-3 for a N(0, 1) prior,
            the codes' 0.5-99.5 percentiles (padded) for an autoencoder.
        scale: screen pixels per image pixel (default 8 for 28x28, 6 for 32x32).
        static: ``True`` for the kernel-free form (decoder in the browser), ``False`` for the
            widget; default ``$VAE_COURSE_STATIC`` (``make book`` sets it).
        label: for a conditional model, the digit to start with (its buttons change it);
            default the first image's label, or 0.

    For a conditional model ``x`` is the pair (images, labels), and the explorer's point is
    [z, one-hot label]: the pad and sliders move z, ten buttons choose the label.
    """
    if isinstance(model, str):
        from . import pretrained

        model = pretrained.load(model)
    _check_model(model)
    n_dims, scale = check_count("n_dims", n_dims, 1, 4096), check_count("scale", scale, 1, 64, True)
    x = check_model_images(model, x, y)   # e.g. 0-255 pixels are refused, naming x
    size = int(np.prod(model.point_shape))
    # a conditional model's point is [z, one-hot label]: the pad and sliders move z only
    free = model.condition["offset"] if model.condition else size
    codes = _encode(model, x) if x is not None else None
    if dims is None:
        if free <= 2:
            dims = list(range(free))
        elif codes is not None:
            dims = [int(d) for d in np.argsort(-codes[:, :free].var(axis=0))[:n_dims]]
        else:
            dims = list(range(min(n_dims, free)))
    dims = check_dims(dims, free)
    if base is None:
        start = model.explorer_start
        if start == "first_code" and codes is not None:
            base = codes[0]
        elif start == "median_code" and codes is not None:
            base = np.median(codes, axis=0)
        else:
            base = np.zeros(size)
        if model.condition:   # start at the label given, else the first image's, else 0
            c = model.condition
            first = int(np.argmax(codes[0, free:])) if codes is not None else 0
            base[free:] = np.eye(c["classes"])[first if label is None else int(label)]
    base = check_point(base, size)   # finite: the page's JSON cannot hold NaN or infinity
    if ranges is None:
        if model.prior is None and codes is not None:
            lo, hi = np.percentile(codes[:, dims], [0.5, 99.5], axis=0)
            pad = 0.1 * (hi - lo)
            ranges = list(zip(lo - pad, hi + pad))
        elif model.prior is None:
            raise ValueError("Expected x (images) or ranges for an autoencoder: its codes have "
                             "no prior to take a range from.")
        else:
            ranges = [(-3.0, 3.0)] * len(dims)
    ranges = check_ranges(ranges, len(dims))
    scatter = ""
    if codes is not None and len(dims) >= 2:
        labels_ = np.zeros(len(codes)) if y is None else np.asarray(y).reshape(-1)
        scatter = _scatter_png(codes[:, dims[:2]], labels_, ranges[:2])
    scale = scale or (8 if model.image_shape[0] <= 28 else 6)
    labels = [f"z{d + 1}" if size <= 16 else f"z[{d}]" for d in dims]
    state = _state(model, dims, ranges, base, labels, scatter, scale)
    if static is None:
        static = os.environ.get(STATIC_ENV, "").strip().lower() in ("1", "true", "yes", "on")
    if static:
        return StaticExplorer(state, decoder_spec(model.decoder, model.pixel_output))
    return _widget_class()(model, state)


class StaticExplorer:
    """The kernel-free explorer: self-contained HTML with the decoder evaluated in JavaScript."""

    def __init__(self, state: dict, spec: dict):
        self.state = {**state, "mode": "browser", "spec": spec}

    def _repr_html_(self) -> str:
        uid = "vae-explorer-" + uuid.uuid4().hex[:12]
        state = json.dumps(self.state).replace("</", "<\\/")
        esm = json.dumps(ESM.read_text()).replace("</", "<\\/")
        return f"""<div id="{uid}" class="vae-explorer-host"></div>
<script type="application/json" id="{uid}-state">{state}</script>
<script type="module">
const host = document.getElementById({json.dumps(uid)});
const state = JSON.parse(document.getElementById({json.dumps(uid + "-state")}).textContent);
const url = URL.createObjectURL(new Blob([{esm}], {{type: "text/javascript"}}));
const mod = await import(url);
const model = {{ get: (k) => state[k], set: (k, v) => {{ state[k] = v; }},
                 save_changes: () => {{}}, on: () => {{}} }};
mod.default.render({{ model, el: host }});
</script>
<noscript>{html.escape("The latent explorer needs JavaScript.")}</noscript>"""

    def page_bytes(self) -> int:
        return len(self._repr_html_().encode())


@functools.cache
def _widget_class():
    """The anywidget class, defined on first use (anywidget is imported only for kernels)."""
    import anywidget
    import traitlets

    class LatentExplorer(anywidget.AnyWidget):
        """The kernel-backed explorer: the front-end sends ``z``, Python sends ``image``."""

        _esm = ESM
        dims = traitlets.List([]).tag(sync=True)
        ranges = traitlets.List([]).tag(sync=True)
        labels = traitlets.List([]).tag(sync=True)
        z = traitlets.List([]).tag(sync=True)
        shown_z = traitlets.List([]).tag(sync=True)
        image_shape = traitlets.List([]).tag(sync=True)
        image = traitlets.Bytes(b"").tag(sync=True)
        scatter = traitlets.Unicode("").tag(sync=True)
        scale = traitlets.Int(8).tag(sync=True)
        pad = traitlets.Int(240).tag(sync=True)
        mode = traitlets.Unicode("kernel").tag(sync=True)
        condition = traitlets.Dict({}).tag(sync=True)
        spec = traitlets.Dict({}).tag(sync=True)

        def __init__(self, model, state):
            self._model = model
            self.decode_seconds = []   # wall time of each decode, for the latency figure
            super().__init__(**state)   # setting z decodes the first image (the observer)
            self.on_msg(self._on_msg)

        @traitlets.observe("z")
        def _on_z(self, change):
            self._render(change["new"])

        def _render(self, z):
            import time

            start = time.perf_counter()
            pixels = _decode(self._model, np.asarray(z, dtype="float32")[None])[0]
            data = (np.clip(pixels, 0, 1) * 255).round().astype(np.uint8).tobytes()
            self.decode_seconds.append(time.perf_counter() - start)
            with self.hold_sync():
                self.shown_z = list(z)
                self.image = data

        def _on_msg(self, _, content, buffers):
            """A point from the front-end (a custom message, see explorer.js); others are ignored."""
            z = content.get("z") if isinstance(content, dict) else None
            if isinstance(z, list) and len(z) == len(self.z) and all(
                    isinstance(v, (int, float)) and np.isfinite(v) for v in z):
                self.z = [float(v) for v in z]   # the observer decodes and answers

        def decode(self, z):
            """The image the widget shows for latent point ``z`` (flat), (h, w, c) in [0, 1]."""
            return _decode(self._model, np.asarray(z, dtype="float32")[None])[0]

    return LatentExplorer


class _StaticRow:
    def __init__(self, parts, titles):
        self.parts, self.titles = parts, titles

    def _repr_html_(self) -> str:
        cells = "".join(
            f'<div style="flex: 1 1 300px"><div style="font-weight: bold; margin-bottom: 4px">'
            f'{html.escape(t)}</div>{p._repr_html_()}</div>' for p, t in zip(self.parts, self.titles))
        return f'<div style="display: flex; flex-wrap: wrap; gap: 24px">{cells}</div>'


class _WidgetRow:
    """Kernel explorers shown as displays of their own, each after its title.

    Not inside an ipywidgets container (HBox/VBox): Colab does not render anywidgets placed in
    ipywidgets containers (anywidget issue 63), while every front-end renders a top-level
    anywidget. The explorers therefore come one after the other in the cell's output.
    """

    def __init__(self, parts, titles):
        self.parts, self.titles = list(parts), list(titles)

    def _ipython_display_(self):
        from IPython.display import HTML, display

        for part, title in zip(self.parts, self.titles):
            if title:
                display(HTML(f"<b>{html.escape(title)}</b>"))
            display(part)


def side_by_side(*explorers, titles=None):
    """Show explorers together, each under its title: static explorers in one row of the page;
    kernel explorers (anywidgets) as separate displays, one after the other, since Colab cannot
    render anywidgets inside an ipywidgets row."""
    titles = list(titles or [""] * len(explorers))
    if len(titles) != len(explorers):
        raise ValueError(f"Expected one title per explorer ({len(explorers)}). "
                         f"Received {len(titles)} titles.")
    for e in explorers:   # compact, so that two fit beside each other in a book's column
        if isinstance(e, StaticExplorer):
            e.state.update(pad=150, scale=5)
        else:
            e.pad, e.scale = 150, 5
    if all(isinstance(e, StaticExplorer) for e in explorers):
        return _StaticRow(explorers, titles)
    return _WidgetRow(explorers, titles)
