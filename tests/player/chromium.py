"""Debian's Chromium for the browser tests: where it is, how it is started, and helpers.

Importing this from a test module skips the module when Chromium is missing (it fails
under CI=1, where `.ci/run` installs it).
"""

from __future__ import annotations

import os
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

playwright = pytest.importorskip("playwright.sync_api")

CHROMIUM = os.environ.get("LANGDU_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    "--mute-audio",
]

if not Path(CHROMIUM).exists():
    found = shutil.which("chromium")
    if found:
        CHROMIUM = found
    elif os.environ.get("CI"):
        pytest.fail(
            "Chromium is needed for the player tests (apt-get install chromium)", pytrace=False
        )
    else:
        pytest.skip(
            "player tests need Debian's chromium (apt-get install chromium); CI installs it",
            allow_module_level=True,
        )


def current(page) -> int:
    return int(page.locator(".langdu").get_attribute("data-sentence") or "-1")


def wait_for(page, expr: str, timeout: float = 30_000) -> None:
    page.wait_for_function(expr, timeout=timeout)


def start_reading(page) -> float:
    """Click 智能朗读; the time from click to the audio's first advance, in ms."""
    page.evaluate("""() => { window.__t0 = performance.now(); window.__t1 = null;
        const tick = () => { if (window.langdu.audio.currentTime > 0 && window.__t1 === null)
            { window.__t1 = performance.now(); } else requestAnimationFrame(tick); };
        requestAnimationFrame(tick); }""")
    page.get_by_role("button", name="智能朗读：朗读全文").click()
    wait_for(page, "window.__t1 !== null")
    return float(page.evaluate("window.__t1 - window.__t0"))


def serve_page(body: bytes) -> ThreadingHTTPServer:
    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd
