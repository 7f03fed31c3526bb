"""The latent explorer and the equations in a real browser (Debian's Chromium, driven by
Playwright), with no network but loopback: the built book served on 127.0.0.1, and a JupyterLab
server with a kernel. Screenshots go to $VAE_COURSE_ARTIFACTS (default _build/test-artifacts).
"""

import functools
import http.server
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("VAE_COURSE_ARTIFACTS", ROOT / "_build" / "test-artifacts"))
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason="needs Debian's chromium (.ci/run installs it)")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def offline_page(browser, outside):
    """A page whose requests to anything but loopback are refused and recorded in ``outside``."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()

    def route(r):
        host = r.request.url.split("/")[2].split(":")[0] if "://" in r.request.url else ""
        if r.request.url.startswith(("data:", "blob:")) or host in ("127.0.0.1", "localhost"):
            return r.continue_()
        outside.append(r.request.url)
        return r.abort()

    page.route("**/*", route)
    return page


def explorer_pixels(page, index):
    return page.evaluate("""(i) => {
        const c = document.querySelectorAll('.vae-explorer-image')[i];
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        return Array.from(d);
    }""", index)


def drag(page, index, fx0, fy0, fx1, fy1, steps=10, hz=None):
    """Drag on explorer ``index``'s pad; ``hz`` paces the moves like a real pointer (e.g. 60)."""
    pad = page.locator(".vae-explorer-pad").nth(index)
    pad.scroll_into_view_if_needed()
    box = pad.bounding_box()
    at = lambda fx, fy: (box["x"] + fx * box["width"], box["y"] + fy * box["height"])
    page.mouse.move(*at(fx0, fy0))
    page.mouse.down()
    if hz is None:
        page.mouse.move(*at(fx1, fy1), steps=steps)
    else:
        for i in range(1, steps + 1):
            time.sleep(1 / hz)
            t = i / steps
            page.mouse.move(*at(fx0 + t * (fx1 - fx0), fy0 + t * (fy1 - fy0)))
    page.mouse.up()


def wait_shown(page, index, timeout=20_000):
    """Wait until explorer ``index`` shows the image of its latest point; return that point."""
    page.wait_for_function("""(i) => {
        const e = document.querySelectorAll('.vae-explorer')[i];
        return e && e.dataset.shown && e.dataset.shown === e.dataset.z;
    }""", arg=index, timeout=timeout)
    root = page.locator(".vae-explorer").nth(index)
    return json.loads(root.get_attribute("data-shown")), root


def expected_rgba(name, z):
    from vae_course import pretrained, widgets

    model = pretrained.load(name)
    img = (np.clip(widgets._decode(model, np.asarray(z, "float32")[None])[0], 0, 1) * 255).round()
    return np.repeat(img, 3, axis=-1) if img.shape[-1] == 1 else img


def check_against_decoder(pixels, name, z):
    rgba = np.asarray(pixels, dtype="float64").reshape(28, 28, 4)
    np.testing.assert_allclose(rgba[..., :3], expected_rgba(name, z), atol=1.0)


@pytest.fixture(scope="module")
def served_book(built_book):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(built_book))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.slow
def test_static_book_explorer_decodes_in_the_browser_offline(browser, served_book):
    outside = []
    page = offline_page(browser, outside)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{served_book}/book/conv_vae.html")
    page.wait_for_selector(".vae-explorer-image", timeout=30_000)
    assert page.locator(".vae-explorer").count() == 2          # autoencoder and VAE
    # The equations: MathJax from _static typesets them (no CDN).
    page.wait_for_selector("mjx-container", timeout=30_000)
    assert page.locator("mjx-container").count() > 10

    z0, root = wait_shown(page, 1)
    before = explorer_pixels(page, 1)
    drag(page, 1, 0.5, 0.5, 0.8, 0.25)
    z1, root = wait_shown(page, 1)
    after = explorer_pixels(page, 1)
    assert z1 != z0 and before != after
    check_against_decoder(after, "mnist-conv-latent2", z1)    # the decoder's image, exactly
    drag(page, 0, 0.5, 0.5, 0.2, 0.7)                          # the autoencoder's explorer
    z_ae, _ = wait_shown(page, 0)
    check_against_decoder(explorer_pixels(page, 0), "mnist-conv-ae-2", z_ae)
    page.screenshot(path=str(ARTIFACTS / "static-book-explorer.png"), full_page=False)
    assert not errors, errors
    assert not outside, f"the page tried to reach the network: {outside[:5]}"


@pytest.mark.slow
def test_static_conditional_explorer_changes_digit_and_style_offline(browser, served_book):
    outside = []
    page = offline_page(browser, outside)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{served_book}/book/conditional_vae.html")
    page.wait_for_selector(".vae-explorer-label", timeout=30_000)
    assert page.locator(".vae-explorer-label").count() == 10      # one button per digit
    z0, _ = wait_shown(page, 0)
    assert np.argmax(z0[2:]) == 3                                 # the chapter starts at a 3
    before = explorer_pixels(page, 0)
    button = page.locator(".vae-explorer-label").nth(8)
    button.scroll_into_view_if_needed()
    button.click()                                                # the digit: 3 -> 8
    z1, _ = wait_shown(page, 0)
    assert z1[:2] == z0[:2] and np.argmax(z1[2:]) == 8 and sum(z1[2:]) == 1
    assert button.get_attribute("aria-pressed") == "true"
    digit = explorer_pixels(page, 0)
    check_against_decoder(digit, "mnist-cvae-latent2", z1)
    drag(page, 0, 0.5, 0.5, 0.85, 0.2)                            # the style, same digit
    z2, _ = wait_shown(page, 0)
    assert z2[:2] != z1[:2] and z2[2:] == z1[2:]
    styled = explorer_pixels(page, 0)
    assert len({bytes(before), bytes(digit), bytes(styled)}) == 3
    check_against_decoder(styled, "mnist-cvae-latent2", z2)
    page.screenshot(path=str(ARTIFACTS / "static-conditional-explorer.png"), full_page=False)
    assert not errors, errors
    assert not outside, f"the page tried to reach the network: {outside[:5]}"


@pytest.mark.slow
def test_chapter_pages_stay_light(built_book):
    """Each explorer (state with the decoder's weights, scatter image, front-end) adds < 2 MB."""
    import re

    for name, count in (("autoencoders", 1), ("conv_vae", 2), ("conditional_vae", 1), ("iaf", 1)):
        html = (built_book / "book" / f"{name}.html").read_text()
        blocks = re.findall(r'<div id="vae-explorer-[0-9a-f]+".*?</script>\s*<script type="module">'
                            r'.*?</script>', html, flags=re.S)
        assert len(blocks) == count, (name, len(blocks))
        sizes = [len(b.encode()) for b in blocks]
        assert max(sizes) < 2 * 2**20 and sum(sizes) < 2 * 2**20 * count, (name, sizes)
        print(f"{name}: explorer adds {', '.join(f'{b / 2**10:.0f} kB' for b in sizes)}; "
              f"page {len(html.encode()) / 2**20:.2f} MB")


# -- the page audit: every page of the book at desktop and phone width ---------------------
WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}
SITE_BUDGET, PAGE_BUDGET = 15 * 2**20, 2**20   # bytes: the whole built site, one HTML page

# For one loaded page: what a reader would see cut off. Sideways scrolling of the page itself;
# display equations, code and output lines wider than their column, unless their box scrolls
# (then the browser shows a scrollbar). On a desktop nothing may need a scrollbar.
LAYOUT = r"""(strict) => {
    const doc = document.documentElement;
    const problems = [];
    if (doc.scrollWidth > window.innerWidth + 1) {
        problems.push(`the page scrolls sideways: ${doc.scrollWidth} px > ${window.innerWidth} px`);
    }
    const boxes = [...document.querySelectorAll('mjx-container[display="true"]')].map(
        (e) => [e, 'equation ' + (e.textContent || '').slice(0, 40)]);
    for (const e of document.querySelectorAll('.cell_output pre, .output pre')) {
        boxes.push([e, 'output ' + (e.textContent || '').trim().slice(0, 40)]);
    }
    for (const e of document.querySelectorAll('.cell_input pre')) {
        const long = (e.textContent || '').split('\n').reduce((a, b) => b.length > a.length ? b : a);
        boxes.push([e, 'code ' + long.trim().slice(0, 40)]);
    }
    for (const [e, what] of boxes) {
        if (!e.offsetParent || e.scrollWidth <= e.clientWidth + 1) {
            continue;
        }
        const overflow = getComputedStyle(e).overflowX;
        const scrolls = overflow === 'auto' || overflow === 'scroll';
        if (strict || !scrolls) {
            problems.push(`${scrolls ? 'needs a scrollbar' : 'clipped'}: ${what}` +
                          ` (${e.scrollWidth} px in ${e.clientWidth} px)`);
        }
    }
    return problems;
}"""


def _pages(site):
    return sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html")
                  if not p.relative_to(site).as_posix().startswith("_"))


def test_site_and_pages_fit_their_budgets(built_book):
    sizes = {p: (built_book / p).stat().st_size for p in _pages(built_book)}
    site = sum(f.stat().st_size for f in built_book.rglob("*") if f.is_file())
    print(f"site {site / 2**20:.1f} MB; largest page {max(sizes, key=sizes.get)} "
          f"{max(sizes.values()) / 2**20:.2f} MB")
    assert site <= SITE_BUDGET, f"the site is {site / 2**20:.1f} MB (budget 15 MB)"
    heavy = {p: f"{n / 2**20:.2f} MB" for p, n in sizes.items() if n > PAGE_BUDGET}
    assert not heavy, f"pages over 1 MB: {heavy}"


@pytest.mark.slow
@pytest.mark.parametrize("width", WIDTHS)
def test_every_page_is_clean_at_desktop_and_phone_width(browser, served_book, built_book, width):
    """Every page: no console error or failed request, nothing cut off, and the navigation
    buttons work (on a phone the table of contents opens; on a desktop the sidebar folds)."""
    w, h = WIDTHS[width]
    problems = {}
    for name in _pages(built_book):
        context = browser.new_context(viewport={"width": w, "height": h},
                                      is_mobile=width == "phone", has_touch=width == "phone")
        page = context.new_page()
        found = []
        page.on("console", lambda m: m.type == "error" and found.append(f"console: {m.text}"))
        page.on("pageerror", lambda e: found.append(f"error: {e}"))
        page.on("requestfailed", lambda r: found.append(f"request failed: {r.url}"))
        page.on("response", lambda r: r.status >= 400 and found.append(f"{r.status}: {r.url}"))

        def route(r):
            local = r.request.url.startswith((served_book, "data:", "blob:"))
            return r.continue_() if local else r.abort()

        page.route("**/*", route)
        page.goto(f"{served_book}/{name}", wait_until="load")
        if page.locator(".math").count():   # MathJax typesets, then the layout is final
            page.wait_for_selector("mjx-container", state="attached", timeout=30_000)
        page.wait_for_timeout(300)
        found += page.evaluate(LAYOUT, width == "desktop")
        page.screenshot(path=str(ARTIFACTS / f"page-{width}-{name.replace('/', '-')}.png"))
        toggle = page.locator(".primary-toggle:visible").first
        if toggle.count():
            toggle.click()
            if width == "phone":
                dialog = page.locator("#pst-primary-sidebar-modal")
                try:
                    dialog.locator("a.reference", has_text="Autoencoders").first.wait_for(
                        state="visible", timeout=5_000)
                except Exception:   # noqa: BLE001  (reported below, with the others)
                    found.append("the menu button did not open the table of contents")
                page.screenshot(path=str(ARTIFACTS / f"page-{width}-menu-{name.replace('/', '-')}.png"))
            else:
                page.wait_for_timeout(300)
                if page.locator("#pst-primary-sidebar").is_visible():
                    found.append("the sidebar button did not fold the sidebar")
        else:
            found.append("no visible navigation button")
        if found:
            problems[name] = found
        context.close()
    assert not problems, json.dumps(problems, indent=1)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def jupyter_lab(tmp_path_factory):
    port, token = _free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if k != "VAE_COURSE_STATIC"}
    env["JUPYTER_CONFIG_DIR"] = str(tmp_path_factory.mktemp("jupyter-config"))
    # The package's server extension, as make enables it in .venv (TCP_NODELAY on kernel sockets)
    (Path(env["JUPYTER_CONFIG_DIR"]) / "jupyter_server_config.json").write_text(json.dumps(
        {"ServerApp": {"jpserver_extensions": {"vae_course_jupyter": True}}}))
    root = tmp_path_factory.mktemp("lab-root")   # a copy: autosave never touches book/
    (root / "book").mkdir()
    shutil.copy(ROOT / "book" / "conv_vae.ipynb", root / "book" / "conv_vae.ipynb")
    lab = shutil.which("jupyter-lab", path=os.path.dirname(sys.executable))
    proc = subprocess.Popen(
        [lab, "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         "--allow-root", "--LabApp.news_url=", "--LabApp.extension_manager=readonly",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("jupyter lab did not start: " + proc.stderr.read().decode()[-2000:])
    yield f"http://127.0.0.1:{port}", token
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.mark.slow
def test_jupyterlab_explorer_decodes_in_the_kernel(browser, jupyter_lab):
    url, token = jupyter_lab
    outside = []
    page = offline_page(browser, outside)
    console = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    try:
        _drive_jupyterlab(page, url, token)
    except Exception:
        page.screenshot(path=str(ARTIFACTS / "jupyterlab-failure.png"))
        print("browser console:", *console[-30:], sep="\n  ")
        raise
    page.screenshot(path=str(ARTIFACTS / "jupyterlab-explorer.png"))
    assert not outside, f"JupyterLab's page tried to reach the network: {outside[:5]}"


def _drive_jupyterlab(page, url, token):
    page.goto(f"{url}/lab/tree/book/conv_vae.ipynb?token={token}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
    # The explorer cell stands on its own; select it and run it with Shift+Enter.
    cell = page.locator(".jp-Notebook .jp-CodeCell").filter(
        has_text="from vae_course.widgets import latent_explorer, side_by_side")
    cell.scroll_into_view_if_needed()
    # The kernel must be up first (the status bar reads "... | Idle"); a run requested while it
    # starts can be dropped on a loaded machine, so the request is repeated until the cell's
    # prompt shows it queued or running ("[*]") or done ("[1]").
    page.wait_for_function("() => document.querySelector('.jp-StatusBar-Widget, "
                           ".jp-StatusBar-GroupItem') && document.body.innerText"
                           ".includes('| Idle')", timeout=180_000)
    prompt = cell.locator(".jp-InputPrompt")
    for _ in range(3):
        cell.locator(".jp-InputArea-editor").click()
        page.keyboard.press("Shift+Enter")
        try:
            page.wait_for_function("(el) => /\\[(\\*|\\d+)\\]/.test(el.textContent)",
                                   arg=prompt.element_handle(), timeout=30_000)
            break
        except Exception:   # playwright's TimeoutError: ask again
            continue
    error = "[data-mime-type='application/vnd.jupyter.stderr']"   # a traceback in an output
    page.wait_for_selector(f".vae-explorer-image, {error}", timeout=180_000)
    if not page.locator(".vae-explorer-image").count():
        pytest.fail("the explorer cell failed:\n" + page.locator(error).first.inner_text()[-2000:])
    assert page.locator(".vae-explorer").count() == 2
    z0, root = wait_shown(page, 1, timeout=120_000)
    before = explorer_pixels(page, 1)
    page.locator(".vae-explorer-pad").nth(1).scroll_into_view_if_needed()
    latencies = []
    for fx, fy in [(0.7, 0.3), (0.3, 0.8), (0.55, 0.45)]:
        drag(page, 1, 0.5, 0.5, fx, fy, steps=30, hz=60)
        z1, root = wait_shown(page, 1)
        latencies.append(float(root.get_attribute("data-latency")))
    after = explorer_pixels(page, 1)
    assert z1 != z0 and before != after
    check_against_decoder(after, "mnist-conv-latent2", z1)
    # Single moves (a click on the pad): the time from sending z to drawing its image.
    trips = []
    for fx, fy in [(0.2, 0.2), (0.8, 0.7), (0.4, 0.6), (0.6, 0.1), (0.1, 0.9)]:
        box = page.locator(".vae-explorer-pad").nth(1).bounding_box()
        page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
        _, root = wait_shown(page, 1)
        trips.append(float(root.get_attribute("data-roundtrip")))
    print(f"kernel round trip per move: {', '.join(f'{t:.0f}' for t in trips)} ms; "
          f"dragging at 60 Hz, last move to its image: "
          f"{', '.join(f'{t:.0f}' for t in latencies)} ms")
