"""A real browser: headless Chromium on a page from an allowed origin calls the API through the rendered
Nginx. The server (Nginx's access log) counts the preflights the browser really sent."""

from __future__ import annotations

import pytest

from ops.local.browser import PageServer, chromium, run_calls

pytestmark = pytest.mark.browser
CALLS = 50


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def page_origin(page_port, tmp_path_factory):
    root = tmp_path_factory.mktemp("page")
    (root / "index.html").write_text("<!doctype html><title>front end (test)</title>")
    with PageServer(root, page_port) as server:
        yield server.origin


def calls_from_page(browser, stack, page_url: str, api_base: str, path: str = "/api/auth/me") -> tuple[list, int]:
    before = stack.requests_seen("OPTIONS", path)
    results = run_calls(browser, page_url, [{"url": api_base + path}] * CALLS)
    return results, stack.requests_seen("OPTIONS", path) - before


@pytest.mark.parametrize("mode", ["edge", "app"])
def test_fifty_credentialed_calls_send_one_preflight(browser, page_origin, web_stack, mode):
    stack = web_stack(mode)
    results, options = calls_from_page(browser, stack, page_origin + "/", stack.base_url)
    assert [r["status"] for r in results] == [200] * CALLS, results[:2]
    assert all(r["requestId"] for r in results)  # X-Request-ID is exposed to the page
    assert options == 1
    assert stack.requests_seen("GET", "/api/auth/me") >= CALLS


def test_max_age_zero_sends_a_preflight_before_every_call(browser, page_origin, web_stack):
    stack = web_stack("edge", max_age=0)
    results, options = calls_from_page(browser, stack, page_origin + "/", stack.base_url)
    assert [r["status"] for r in results] == [200] * CALLS, results[:2]
    assert options == CALLS


def test_same_origin_sends_no_preflight(browser, web_stack):
    stack = web_stack("same-origin")
    results, options = calls_from_page(browser, stack, stack.base_url + "/", stack.base_url)
    assert [r["status"] for r in results] == [200] * CALLS, results[:2]
    assert options == 0


def test_a_look_alike_origin_is_refused_by_the_browser(browser, web_stack, tmp_path):
    # The page's origin (another loopback port) is not on the allowlist: the browser blocks the call.
    from ops.local.pg import free_port

    stack = web_stack("edge")
    (tmp_path / "index.html").write_text("<!doctype html><title>other origin</title>")
    with PageServer(tmp_path, free_port()) as other:
        results = run_calls(browser, other.origin + "/", [{"url": stack.base_url + "/api/auth/me"}])
    assert results[0]["status"] == 0 and "Failed to fetch" in results[0]["error"]
