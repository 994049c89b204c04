"""The rendered Nginx in front of the stand-in app, both real processes, in every CORS mode."""

from __future__ import annotations

import httpx
import pytest

ALLOWED = "http://localhost:3000"
LOOK_ALIKES = ["http://localhost:3000.evil.com", "https://localhost:3000", "http://localhost:30000", "null"]
AUTH = {"Authorization": "Bearer test"}


def preflight(stack, origin: str, path: str = "/api/auth/me") -> httpx.Response:
    return httpx.options(
        stack.base_url + path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )


def allow_origins(response: httpx.Response) -> list[str]:
    return response.headers.get_list("access-control-allow-origin")


def test_edge_answers_the_preflight_itself(web_stack):
    stack = web_stack("edge")
    before = stack.app.running(), stack.requests_seen("OPTIONS")
    r = preflight(stack, ALLOWED)
    assert r.status_code == 204
    assert allow_origins(r) == [ALLOWED]
    assert r.headers["access-control-max-age"] == "86400"
    assert r.headers["access-control-allow-credentials"] == "true"
    assert "Authorization" in r.headers["access-control-allow-headers"]
    assert "GET" in r.headers["access-control-allow-methods"]
    assert "Origin" in r.headers.get_list("vary")
    assert "access-control-expose-headers" not in r.headers  # only on real responses
    assert before[0] and stack.requests_seen("OPTIONS") == before[1] + 1


def test_edge_preflight_never_reaches_the_app(web_stack):
    # Behind this Nginx the app is told to answer CORS too (CORS_ENABLED=true, max_age 5):
    # an app answer would show its Max-Age and Starlette's 200.
    stack = web_stack("edge", app_mode="app", max_age=5)
    r = preflight(stack, ALLOWED)
    assert r.status_code == 204 and r.headers["access-control-max-age"] == "5"
    assert "access-control-request-private-network" not in r.headers.get("vary", "").lower()


@pytest.mark.parametrize("origin", LOOK_ALIKES)
@pytest.mark.parametrize("mode", ["edge", "app"])
def test_look_alike_origins_get_no_cors_headers(web_stack, mode, origin):
    stack = web_stack(mode)
    r = preflight(stack, origin)
    assert r.status_code in (400, 403), r.status_code
    assert not [h for h in r.headers if h.lower() == "access-control-allow-origin"]
    real = httpx.get(stack.base_url + "/api/auth/me", headers={"Origin": origin, **AUTH})
    assert real.status_code == 200 and allow_origins(real) == []


@pytest.mark.parametrize("mode", ["edge", "app"])
def test_real_response_carries_one_allow_origin_and_exposes_request_id(web_stack, mode):
    stack = web_stack(mode)
    r = httpx.get(stack.base_url + "/api/auth/me", headers={"Origin": ALLOWED, **AUTH})
    assert r.status_code == 200
    assert allow_origins(r) == [ALLOWED]
    assert "X-Request-ID" in r.headers["access-control-expose-headers"]
    assert r.headers["x-request-id"]
    assert r.headers["access-control-allow-credentials"] == "true"


@pytest.mark.parametrize("mode", ["edge", "app"])
def test_error_responses_carry_cors_headers_too(web_stack, mode):
    # A 401 the page must be able to read (add_header ... always).
    stack = web_stack(mode)
    r = httpx.get(stack.base_url + "/api/auth/me", headers={"Origin": ALLOWED})
    assert r.status_code == 401
    assert allow_origins(r) == [ALLOWED]


def test_edge_hides_the_apps_cors_headers_so_no_response_carries_two(web_stack):
    stack = web_stack("edge", app_mode="app")
    direct = httpx.get(f"http://127.0.0.1:{stack.app_port}/api/auth/me", headers={"Origin": ALLOWED, **AUTH})
    assert allow_origins(direct) == [ALLOWED]  # the app really does add its own
    via_nginx = httpx.get(stack.base_url + "/api/auth/me", headers={"Origin": ALLOWED, **AUTH})
    assert allow_origins(via_nginx) == [ALLOWED]
    assert len(via_nginx.headers.get_list("access-control-expose-headers")) == 1
    assert len(via_nginx.headers.get_list("access-control-allow-credentials")) == 1


def test_app_mode_preflight_is_answered_by_corsmiddleware_with_the_rendered_max_age(web_stack):
    stack = web_stack("app", max_age=1234)
    r = preflight(stack, ALLOWED)
    assert r.status_code == 200 and r.text == "OK"  # Starlette's answer, passed through
    assert allow_origins(r) == [ALLOWED]
    assert r.headers["access-control-max-age"] == "1234"
    assert len(r.headers.get_list("access-control-max-age")) == 1


def test_same_origin_serves_front_end_and_api_with_no_cors_at_all(web_stack):
    stack = web_stack("same-origin")
    page = httpx.get(stack.base_url + "/")
    assert page.status_code == 200 and "front end" in page.text
    assert page.headers["content-type"].startswith("text/html")
    for r in (
        httpx.get(stack.base_url + "/api/auth/me", headers={"Origin": ALLOWED, **AUTH}),
        preflight(stack, ALLOWED),
    ):
        assert not [h for h in r.headers if h.lower().startswith("access-control-")], r.headers
    assert httpx.get(stack.base_url + "/api/auth/me", headers=AUTH).json()["stand_in"] is True


def test_wildcard_without_credentials(web_stack):
    stack = web_stack("edge", origins=["*"], allow_credentials=False)
    r = preflight(stack, "https://anything.example")
    assert r.status_code == 204 and allow_origins(r) == ["*"]
    assert "access-control-allow-credentials" not in r.headers
