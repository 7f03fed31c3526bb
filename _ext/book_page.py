"""A local Sphinx extension: what every page of the built book loads, and nothing else.

- ``book_page.js`` fixes the theme's sidebar and contents buttons (see the file);
  ``book_page.css`` sets code and outputs in a size whose lines fit the text column.
- Jupyter Book 1 always loads sphinx-thebe, which writes its configuration script into every
  page (twice, so the browser reports "Identifier 'THEBE_JS_URL' has already been declared")
  and points at a CDN. The book has no Thebe launch button: both scripts are dropped.
- Source maps of the themes' and MathJax's minified JavaScript are for debugging the themes,
  not for readers: they are deleted from the built site.
- What a page never loads is not shipped: the notebooks behind the "download .ipynb" button are
  stripped of outputs (the reader runs them; the page shows what they print), the themes'
  translation catalogues (used when building) and Font Awesome's TrueType fallbacks (every
  supported browser takes the WOFF2 beside them) are deleted, and the figures' PNGs are stored
  losslessly smaller (an opaque RGBA image as RGB, zlib at its best setting).
- RequireJS and the ipywidgets HTML manager (``_config.yml``: ``nb_ipywidgets_js``) ship with
  the book so that a page holding widget state renders them offline; MyST-NB loads them only on
  such pages. When no page does (the explorers are plain HTML in the book), they are deleted.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _drop_thebe(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return

    def is_thebe(script):
        name = str(getattr(script, "filename", script) or "")
        body = str(getattr(script, "attributes", {}).get("body", ""))
        return "thebe" in name or "THEBE_JS_URL" in body

    context["script_files"] = [s for s in scripts if not is_thebe(s)]
    context["css_files"] = [c for c in context.get("css_files", [])
                            if "thebe" not in str(getattr(c, "filename", c))]


def _strip_outputs(path: Path):
    nb = json.loads(path.read_text())
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


def _smaller_png(path: Path):
    from PIL import Image

    with Image.open(path) as image:
        image.load()
    if image.mode == "RGBA" and image.getextrema()[3] == (255, 255):
        image = image.convert("RGB")
    image.save(path, optimize=True)


def _trim_static(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    out = Path(app.outdir)
    static = out / "_static"
    for path in static.rglob("*.map"):
        path.unlink()
    for path in static.glob("vendor/fontawesome/webfonts/*.ttf"):
        path.unlink()
    shutil.rmtree(static / "locales", ignore_errors=True)
    for path in out.glob("_sources/**/*.ipynb"):
        _strip_outputs(path)
    for path in out.glob("_images/*.png"):
        _smaller_png(path)
    widget_js = list(app.config.nb_ipywidgets_js)   # vendor/require.js, vendor/html-manager/...
    pages = [p.read_text(errors="replace") for p in Path(app.outdir).rglob("*.html")]
    if any(name in page for page in pages for name in widget_js):
        return
    for name in widget_js:
        path = static / name
        if path.parent.name == "html-manager":   # the manager's script with its fonts
            shutil.rmtree(path.parent, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _add_static(app):
    app.config.html_static_path.append(str(HERE / "static"))


def setup(app):
    app.connect("builder-inited", _add_static)
    app.add_js_file("book_page.js", loading_method="defer")
    app.add_css_file("book_page.css")
    app.connect("html-page-context", _drop_thebe, priority=900)
    app.connect("build-finished", _trim_static)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
