"""Headless Chromium (the Debian package, driven by Playwright) making API calls from a page.

For the browser tests and the CORS benchmark: a page served from one loopback origin calls the
API on another, the way the seed's front end does, and the caller counts the OPTIONS the server
saw. Playwright never downloads a browser here: it drives the system's ``chromium``.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from ops.errors import OpsError

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

# Sequential calls, each with credentials and an Authorization header (which forces a preflight
# on a cross-origin call), as the seed's front end makes them.
FETCH_JS = """
async (calls) => {
  const out = [];
  for (const c of calls) {
    const init = {method: c.method, credentials: "include", headers: {"Authorization": "Bearer demo"}};
    if (c.body !== undefined) {
      init.body = JSON.stringify(c.body);
      init.headers["Content-Type"] = "application/json";
    }
    try {
      const r = await fetch(c.url, init);
      out.push({status: r.status, requestId: r.headers.get("X-Request-ID")});
    } catch (e) {
      out.push({status: 0, error: String(e)});
    }
  }
  return out;
}
"""


def chromium_path() -> str:
    found = os.environ.get("S10_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise OpsError("chromium not found (install the Debian package chromium: make setup)")
    return found


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium browser (Playwright sync API)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def run_calls(browser: Any, page_url: str, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Open ``page_url`` in a fresh context (an empty preflight cache) and make ``calls`` from it.

    Each call is ``{"url": ..., "method": "GET"}``, optionally with a JSON ``body``.
    """
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(page_url)
        return page.evaluate(FETCH_JS, [{"method": "GET", **c} for c in calls])
    finally:
        context.close()


class PageServer:
    """A static page server on loopback: the front end's origin, separate from the API's."""

    def __init__(self, root: Path, port: int, host: str = "127.0.0.1"):
        handler = partial(_QuietHandler, directory=str(root))
        self.server = ThreadingHTTPServer((host, port), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.origin = f"http://{host}:{port}"

    def __enter__(self) -> PageServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass
