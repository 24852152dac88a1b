"""Headless Chromium driving the viewer page: used by `meshsim render`, the browser tests and the benchmark.

The system chromium (Debian package `chromium`) is driven through Playwright; `playwright install` is never
needed. Software WebGL (SwiftShader) must be allowed explicitly since Chrome 144, hence the flag.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from collections.abc import Iterator

from meshsim.errors import MeshsimError

DEFAULT_CHROMIUM = "/usr/bin/chromium"  # Debian's package; what CI installs
CHROMIUM_FLAGS = ["--enable-unsafe-swiftshader", "--disable-gpu-sandbox", "--hide-scrollbars", "--mute-audio"]


class BrowserError(MeshsimError):
    """Headless Chromium or Playwright is missing, or the viewer page failed in it."""


def chromium_path() -> str:
    """$MESHSIM_CHROMIUM, else /usr/bin/chromium, else `chromium` on PATH; BrowserError with the fix otherwise."""
    asked = os.environ.get("MESHSIM_CHROMIUM")
    if asked:
        if os.path.isfile(asked) and os.access(asked, os.X_OK):
            return asked
        raise BrowserError(f"MESHSIM_CHROMIUM={asked} is not an executable file; fix it or unset it")
    for candidate in (DEFAULT_CHROMIUM, shutil.which("chromium")):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise BrowserError("chromium not found; install it (Debian: apt-get install chromium) or set MESHSIM_CHROMIUM")


@contextlib.contextmanager
def serving(path, traj: str | None = None) -> Iterator:
    """A viewer server for `path` on a free loopback port, running in a background thread."""
    from meshsim.viewer.server import open_viewer

    server = open_viewer(path, traj=traj)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        server.source.close()
        thread.join()


@contextlib.contextmanager
def headless_chromium() -> Iterator:
    """A Playwright Browser on the system chromium; BrowserError with the fix when chromium or Playwright is missing."""
    executable = chromium_path()
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError:
        hint = "pip install 'meshsim[browser]' (no browser download needed)"
        raise BrowserError(f"playwright is not installed; {hint}") from None
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        except PlaywrightError as err:
            raise BrowserError(f"cannot start {executable} ({_first_line(err)}); check that chromium runs") from None
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def open_page(browser, url: str, width: int = 1280, height: int = 720, timeout_s: float = 60.0) -> Iterator:
    """A page of `browser` showing the viewer at `url`, ready (first frame drawn).

    The page's `errors` attribute lists uncaught page errors seen so far (tests assert it stays empty)."""
    from playwright.sync_api import Error as PlaywrightError

    page = browser.new_page(viewport={"width": width, "height": height}, device_scale_factor=1)
    try:
        page.set_default_timeout(timeout_s * 1000)
        page.errors = []
        page.on("pageerror", lambda err: page.errors.append(str(err)))
        page.goto(url)
        try:
            page.evaluate("window.viewer.ready")
        except PlaywrightError as err:
            raise BrowserError(f"the viewer page failed: {_first_line(err)}") from None
        yield page
    finally:
        page.close()


@contextlib.contextmanager
def viewer_page(url: str, width: int = 1280, height: int = 720, timeout_s: float = 60.0) -> Iterator:
    """A fresh headless browser with one ready viewer page (see `open_page`)."""
    with headless_chromium() as browser, open_page(browser, url, width, height, timeout_s) as page:
        yield page


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
