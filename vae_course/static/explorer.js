// Latent explorer front-end (vae_course.widgets). One ES module, two hosts:
//  - anywidget in JupyterLab / Colab / VS Code: `model` is the widget model; moving the point
//    sends `z` as a custom message, the kernel decodes and sets `shown_z` and `image` (raw
//    uint8 pixels);
//  - the static book page: `model` is a small stand-in built from the embedded state, and the
//    decoder (its layers and weights, in `spec`) is evaluated here, in the browser.
// The .vae-explorer element exposes what the browser tests read: data-z (the latest latent
// point, JSON), data-shown (the point the image shows), data-frames (images drawn so far) and
// data-latency (milliseconds from the last move to its image); with a kernel also
// data-roundtrip (milliseconds from sending a point to drawing its image).

// ---------------------------------------------------------------- decoder in the browser
function b64floats(s) {
  const bin = atob(s);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new Float32Array(bytes.buffer);
}

const ACT = {
  linear: (v) => v,
  relu: (v) => (v > 0 ? v : 0),
  elu: (v) => (v > 0 ? v : Math.exp(v) - 1),
  sigmoid: (v) => 1 / (1 + Math.exp(-v)),
  tanh: (v) => Math.tanh(v),
};

function activate(a, name) {
  const f = ACT[name || "linear"];
  if (!f) throw new Error(`explorer: unsupported activation ${name}`);
  if (name && name !== "linear") for (let i = 0; i < a.length; i++) a[i] = f(a[i]);
  return a;
}

// x: Float32Array in NHWC order without the batch axis; shape [h, w, c] (or [n] for dense).
const OPS = {
  Dense(layer, x) {
    const [nin, nout] = layer.kernel_shape;
    const W = layer.kernel, b = layer.bias;
    const y = new Float32Array(nout);
    if (b) y.set(b);
    for (let i = 0; i < nin; i++) {
      const v = x.data[i];
      if (v === 0) continue;
      const row = i * nout;
      for (let j = 0; j < nout; j++) y[j] += v * W[row + j];
    }
    return { data: activate(y, layer.activation), shape: [nout] };
  },
  Reshape(layer, x) {
    return { data: x.data, shape: layer.target_shape };
  },
  Flatten(layer, x) {
    return { data: x.data, shape: [x.data.length] };
  },
  UpSampling2D(layer, x) {
    const [h, w, c] = x.shape, [sy, sx] = layer.size;
    const H = h * sy, Wd = w * sx, y = new Float32Array(H * Wd * c);
    for (let oy = 0; oy < H; oy++)
      for (let ox = 0; ox < Wd; ox++) {
        const src = ((Math.floor(oy / sy) * w) + Math.floor(ox / sx)) * c;
        y.set(x.data.subarray(src, src + c), (oy * Wd + ox) * c);
      }
    return { data: y, shape: [H, Wd, c] };
  },
  Conv2D(layer, x) {   // stride 1, "same" padding, kernel (kh, kw, cin, cout)
    const [h, w, cin] = x.shape;
    const [kh, kw, , cout] = layer.kernel_shape;
    const K = layer.kernel, py = (kh - 1) >> 1, px = (kw - 1) >> 1;
    const y = new Float32Array(h * w * cout);
    for (let oy = 0; oy < h; oy++)
      for (let ox = 0; ox < w; ox++) {
        const o = (oy * w + ox) * cout;
        if (layer.bias) for (let co = 0; co < cout; co++) y[o + co] = layer.bias[co];
        for (let ky = 0; ky < kh; ky++) {
          const iy = oy + ky - py;
          if (iy < 0 || iy >= h) continue;
          for (let kx = 0; kx < kw; kx++) {
            const ix = ox + kx - px;
            if (ix < 0 || ix >= w) continue;
            const xi = (iy * w + ix) * cin, kb = (ky * kw + kx) * cin * cout;
            for (let ci = 0; ci < cin; ci++) {
              const v = x.data[xi + ci];
              if (v === 0) continue;
              const kr = kb + ci * cout;
              for (let co = 0; co < cout; co++) y[o + co] += v * K[kr + co];
            }
          }
        }
      }
    return { data: activate(y, layer.activation), shape: [h, w, cout] };
  },
  Conv2DTranspose(layer, x) {   // "same" padding, stride s, kernel (kh, kw, cout, cin)
    const [h, w, cin] = x.shape;
    const [kh, kw, cout] = layer.kernel_shape;
    const [sy, sx] = layer.strides;
    const H = h * sy, Wd = w * sx;
    // TensorFlow's "same" transposed convolution: the adjoint of a "same" strided convolution
    // on the H x W output, whose padding before is floor(max((h-1)*s + k - H, 0) / 2).
    const py = Math.floor(Math.max((h - 1) * sy + kh - H, 0) / 2);
    const px = Math.floor(Math.max((w - 1) * sx + kw - Wd, 0) / 2);
    const K = layer.kernel, y = new Float32Array(H * Wd * cout);
    for (let iy = 0; iy < h; iy++)
      for (let ix = 0; ix < w; ix++) {
        const xi = (iy * w + ix) * cin;
        for (let ky = 0; ky < kh; ky++) {
          const oy = iy * sy + ky - py;
          if (oy < 0 || oy >= H) continue;
          for (let kx = 0; kx < kw; kx++) {
            const ox = ix * sx + kx - px;
            if (ox < 0 || ox >= Wd) continue;
            const o = (oy * Wd + ox) * cout, kb = (ky * kw + kx) * cout * cin;
            for (let co = 0; co < cout; co++) {
              let acc = 0;
              const kr = kb + co * cin;
              for (let ci = 0; ci < cin; ci++) acc += x.data[xi + ci] * K[kr + ci];
              y[o + co] += acc;
            }
          }
        }
      }
    if (layer.bias)
      for (let p = 0; p < H * Wd; p++)
        for (let co = 0; co < cout; co++) y[p * cout + co] += layer.bias[co];
    return { data: activate(y, layer.activation), shape: [H, Wd, cout] };
  },
};

const OUTPUTS = {
  // Probabilities or intensities in [0, 1], one channel or three.
  identity: (t) => t.data,
  sigmoid: (t) => activate(Float32Array.from(t.data), "sigmoid"),
  // One discretized logistic per sub-pixel with R -> G -> B coupling (vae_course.iaf):
  // params per pixel [logit, (mean, log_scale, coeff) for R, G, B]; the image is the mean.
  mixture1: (t) => {
    const [h, w, c] = t.shape, out = new Float32Array(h * w * 3);
    const clip = (v) => Math.max(-1, Math.min(1, v));
    for (let p = 0; p < h * w; p++) {
      const q = t.data.subarray(p * c, p * c + c);
      const r = clip(q[1]);
      const g = clip(q[4] + Math.tanh(q[3]) * r);
      const b = clip(q[7] + Math.tanh(q[6]) * r + Math.tanh(q[9]) * g);
      out[p * 3] = (r + 1) / 2; out[p * 3 + 1] = (g + 1) / 2; out[p * 3 + 2] = (b + 1) / 2;
    }
    return out;
  },
};

export function prepare(spec) {
  const layers = spec.layers.map((l) => ({
    ...l,
    kernel: l.kernel ? b64floats(l.kernel) : null,
    bias: l.bias ? b64floats(l.bias) : null,
  }));
  return { ...spec, layers };
}

export function decode(prepared, z) {
  let t = { data: Float32Array.from(z), shape: prepared.input_shape };
  for (const layer of prepared.layers) {
    const op = OPS[layer.type];
    if (!op) throw new Error(`explorer: unsupported layer ${layer.type}`);
    t = op(layer, t);
  }
  return OUTPUTS[prepared.output](t);   // floats in [0, 1], h * w * channels
}

// ---------------------------------------------------------------- the view
function toBytes(v) {
  if (!v) return null;
  if (v instanceof Uint8Array) return v;
  if (v instanceof DataView) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  if (v.buffer instanceof ArrayBuffer) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  return null;
}

function drawPixels(ctx, pixels, h, w, c) {   // pixels: h*w*c uint8 or floats in [0, 1]
  const img = ctx.createImageData(w, h);
  const float = !(pixels instanceof Uint8Array);
  for (let p = 0; p < h * w; p++) {
    for (let k = 0; k < 3; k++) {
      let v = pixels[p * c + (c === 3 ? k : 0)];
      if (float) v = Math.round(Math.max(0, Math.min(1, v)) * 255);
      img.data[p * 4 + k] = v;
    }
    img.data[p * 4 + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

function el_(tag, attrs = {}, style = {}) {
  const e = document.createElement(tag);
  Object.assign(e, attrs);
  Object.assign(e.style, style);
  return e;
}

function render({ model, el }) {
  const dims = model.get("dims"), ranges = model.get("ranges"), labels = model.get("labels");
  const [h, w, c] = model.get("image_shape");
  const scale = model.get("scale");
  const browser = model.get("mode") === "browser";
  const prepared = browser ? prepare(model.get("spec")) : null;
  let z = model.get("z").slice();
  let frames = 0;

  const root = el_("div", { className: "vae-explorer" },
    { display: "flex", gap: "12px", alignItems: "flex-start", flexWrap: "wrap",
      fontFamily: "sans-serif", fontSize: "13px" });
  const PAD = model.get("pad") || 240;
  const pad = el_("canvas", { width: PAD, height: PAD, className: "vae-explorer-pad",
    title: "drag to move the latent point" },
    { border: "1px solid #bbb", cursor: "crosshair", touchAction: "none",
      backgroundSize: "100% 100%" });
  const scatter = model.get("scatter");
  if (scatter) pad.style.backgroundImage = `url(${scatter})`;
  const padBox = el_("div");
  padBox.append(pad, el_("div", { textContent: `${labels[0]} → , ${labels[1] ?? ""} ↑` },
    { color: "#555", marginTop: "2px" }));

  const controls = el_("div", {}, { display: "flex", flexDirection: "column", gap: "4px" });
  const sliders = dims.map((d, i) => {
    const row = el_("label", {}, { display: "flex", gap: "6px", alignItems: "center" });
    const s = el_("input", { type: "range", min: ranges[i][0], max: ranges[i][1],
      step: (ranges[i][1] - ranges[i][0]) / 400, value: z[d], className: "vae-explorer-slider" },
      { width: `${Math.max(100, PAD - 100)}px` });
    const out = el_("span", {}, { width: "52px", fontVariantNumeric: "tabular-nums" });
    row.append(el_("span", { textContent: labels[i] }, { minWidth: "28px" }), s, out);
    controls.append(row);
    s.addEventListener("input", () => { z[d] = parseFloat(s.value); changed(); });
    return { s, out };
  });

  // A conditional model's point ends with a one-hot label: one button per class sets it.
  const condition = model.get("condition") || {};
  const labelButtons = [];
  if (condition.classes) {
    const row = el_("div", { className: "vae-explorer-labels", title: "the label y the decoder is given" },
      { display: "flex", flexWrap: "wrap", gap: "3px", alignItems: "center" });
    row.append(el_("span", { textContent: "y" }, { minWidth: "28px" }));
    for (let k = 0; k < condition.classes; k++) {
      const b = el_("button", { type: "button", textContent: (condition.names || [])[k] ?? String(k),
        className: "vae-explorer-label" },
        { minWidth: "26px", padding: "2px 4px", border: "1px solid #999", borderRadius: "3px",
          cursor: "pointer", font: "inherit" });
      b.dataset.label = String(k);
      b.addEventListener("click", () => {
        for (let j = 0; j < condition.classes; j++) z[condition.offset + j] = j === k ? 1 : 0;
        changed();
      });
      labelButtons.push(b);
      row.append(b);
    }
    controls.append(row);
  }

  const canvas = el_("canvas", { width: w, height: h, className: "vae-explorer-image" },
    { width: `${w * scale}px`, height: `${h * scale}px`, imageRendering: "pixelated",
      border: "1px solid #bbb" });
  const ctx = canvas.getContext("2d");
  const status = el_("div", {}, { color: "#555" });
  const right = el_("div");
  right.append(canvas, status);
  root.append(padBox, right, controls);
  el.append(root);

  const toPad = (i, v) => (v - ranges[i][0]) / (ranges[i][1] - ranges[i][0]);
  function drawPad() {
    const g = pad.getContext("2d");
    g.clearRect(0, 0, PAD, PAD);
    const px = toPad(0, z[dims[0]]) * PAD;
    const py = dims.length > 1 ? (1 - toPad(1, z[dims[1]])) * PAD : PAD / 2;
    g.strokeStyle = "#000"; g.lineWidth = 2;
    g.beginPath(); g.arc(px, py, 6, 0, 2 * Math.PI); g.stroke();
    g.fillStyle = "rgba(255,255,255,0.8)"; g.fill();
  }
  let requested = performance.now();
  function show(pixels, shown) {
    drawPixels(ctx, pixels, h, w, c);
    frames += 1;
    root.dataset.frames = String(frames);
    root.dataset.shown = JSON.stringify(shown);
    root.dataset.latency = (performance.now() - requested).toFixed(1);
  }
  // Kernel mode keeps one request in flight and, while it is out, remembers only the newest
  // point: a fast drag never builds a queue of stale decodes behind it (latest point wins).
  let pending = false, inflight = false, queued = false, sentAt = 0;
  let lastSent = browser ? "" : JSON.stringify(model.get("z"));
  function send() {
    queued = false;
    const key = JSON.stringify(z);
    if (key === lastSent) return;   // the kernel would not answer an unchanged point
    lastSent = key;
    inflight = true;
    sentAt = performance.now();
    // A custom message, not model.save_changes(): ipywidgets holds back a state update until
    // the kernel reports idle after the previous one, which doubled the time per move.
    model.send({ z: z.slice() });
  }
  function drawControls() {
    dims.forEach((d, i) => {
      sliders[i].s.value = z[d];
      sliders[i].out.textContent = z[d].toFixed(2);
    });
    labelButtons.forEach((b, k) => {
      const on = z[condition.offset + k] > 0.5;
      b.style.background = on ? "#333" : "transparent";
      b.style.color = on ? "#fff" : "inherit";
      b.setAttribute("aria-pressed", on ? "true" : "false");
    });
    drawPad();
    root.dataset.z = JSON.stringify(z);
  }
  function changed() {
    requested = performance.now();
    drawControls();
    if (!browser) {
      // a lost reply (kernel restarted, cell re-run) must not block the explorer for good
      if (inflight && performance.now() - sentAt < 2000) queued = true;
      else send();
      return;
    }
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      show(decode(prepared, z), z);
    });
  }
  if (!browser) {
    // Python code set the point (explorer.z = [...]): move the pad and sliders to it, unless
    // the reader is moving it (then this is the kernel's copy of an older point of theirs)
    model.on("change:z", () => {
      const key = JSON.stringify(model.get("z"));
      if (inflight || queued || key === JSON.stringify(z)) return;
      z = model.get("z").slice();
      lastSent = key;
      drawControls();
    });
    // Python sets shown_z and image in one message; shown_z changes with every answered point
    model.on("change:shown_z", () => {
      const bytes = toBytes(model.get("image"));
      if (bytes && bytes.length === h * w * c) show(bytes, model.get("shown_z"));
      if (inflight) root.dataset.roundtrip = (performance.now() - sentAt).toFixed(1);
      inflight = false;
      if (queued) send();
    });
    const first = toBytes(model.get("image"));
    if (first && first.length === h * w * c) show(first, model.get("shown_z"));
  }
  status.textContent = browser ? "decoded in your browser" : "decoded by the Python kernel";

  function movePad(ev) {
    const r = pad.getBoundingClientRect();
    const fx = Math.max(0, Math.min(1, (ev.clientX - r.left) / r.width));
    const fy = Math.max(0, Math.min(1, (ev.clientY - r.top) / r.height));
    z[dims[0]] = ranges[0][0] + fx * (ranges[0][1] - ranges[0][0]);
    if (dims.length > 1) z[dims[1]] = ranges[1][0] + (1 - fy) * (ranges[1][1] - ranges[1][0]);
    changed();
  }
  pad.addEventListener("pointerdown", (ev) => {
    pad.setPointerCapture(ev.pointerId);
    movePad(ev);
  });
  pad.addEventListener("pointermove", (ev) => { if (ev.buttons) movePad(ev); });
  changed();
}

export default { render };
