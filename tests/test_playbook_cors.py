"""ops playbook cors against a real nginx: each fault gives its verdict and exit code."""

from __future__ import annotations

import json
import os
import re

import pytest

from ops import REPO_ROOT
from ops.local.pg import free_port
from ops.playbook.cors_check import browser_cache, look_alikes, needs_preflight
from tests.conftest import run_ops
from tests.nginx_helper import Nginx
from tests.playbook_edge import PAGE_ORIGIN

ENV = {k: v for k, v in os.environ.items() if not k.startswith("PG")} | {"COLUMNS": "200"}


def cors(edge: Nginx, path: str, *args: str) -> tuple[int, dict]:
    proc = run_ops("playbook", "cors", edge.url(path), "--origin", PAGE_ORIGIN, *args, "--json", env=ENV, timeout=60)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def checks(report: dict) -> dict[str, dict]:
    return {f["check"]: f for f in report["findings"] if f["severity"] != "INFO"}


PAGE_CALL = ("--method", "POST", "--header", "Authorization", "--header", "Content-Type", "--expose", "X-Request-ID")


def test_a_correct_edge_is_ok(edge):
    code, report = cors(edge, "/good/jobs", *PAGE_CALL)
    assert code == 0, report["findings"]
    assert report["status"] == "OK" and checks(report) == {}
    assert report["preflight"]["browser_cache_s"] == {"Chromium": 7200, "Firefox": 7200, "Safari": 600}
    assert report["real_request"]["exposed"] == ["x-request-id"]
    assert report["look_alikes"]["allowed"] == {} and len(report["look_alikes"]["tried"]) == 6


@pytest.mark.parametrize(
    ("path", "check", "code", "says"),
    [
        ("/no-max-age/jobs", "no-max-age", 1, "re-check every 5 s"),
        ("/max-age-86400/jobs", "max-age-above-cap", 1, "above Chromium's cap of 7,200 s"),
        ("/two-origins/jobs", "two-allow-origin", 2, "2 Access-Control-Allow-Origin values"),
        ("/wildcard-credentials/jobs", "wildcard-credentials", 2, "origin * together with"),
        ("/refused/jobs", "origin-refused", 2, "no Access-Control-Allow-Origin for https://app.example.com"),
        ("/loose-regex/jobs", "evil-origin-allowed", 2, "https://app.example.com.evil.test"),
    ],
)
def test_each_fault_gives_its_verdict_and_exit_code(edge, path, check, code, says):
    exit_code, report = cors(edge, path, *PAGE_CALL)
    found = checks(report)
    assert check in found, report["findings"]
    assert says in found[check]["message"]
    assert found[check]["fix"]
    assert exit_code == code and report["exit_code"] == code
    assert report["status"] == {1: "WARNING", 2: "CRITICAL"}[code]


def test_max_age_above_the_cap_tells_what_each_browser_caches(edge):
    _, report = cors(edge, "/max-age-86400/jobs", *PAGE_CALL)
    assert report["preflight"]["browser_cache_s"] == {"Chromium": 7200, "Firefox": 86400, "Safari": 600}
    assert "set 7200" in checks(report)["max-age-above-cap"]["fix"]


def test_the_loose_regex_lets_the_suffix_and_dot_tricks_through_but_not_null(edge):
    _, report = cors(edge, "/loose-regex/jobs", *PAGE_CALL)
    allowed = report["look_alikes"]["allowed"]
    assert "https://app.example.com.evil.test" in allowed  # no end anchor
    assert "https://app.example.com:444" in allowed  # no end anchor: the port slips through too
    assert "null" not in allowed and "http://app.example.com" not in allowed


def test_the_human_report_leads_with_the_verdict_and_prints_the_fix(edge):
    proc = run_ops("playbook", "cors", edge.url("/no-max-age/jobs"), "--origin", PAGE_ORIGIN, *PAGE_CALL, env=ENV)
    assert proc.returncode == 1
    first, *rest = proc.stdout.splitlines()
    assert first.startswith("WARNING: no Access-Control-Max-Age")
    assert any(
        "fix: cors_max_age = 7200 in inventory/<env>.py, then deploy: pyinfra inventory/<env>.py deploy.py" in line
        for line in rest
    )
    assert any(line.startswith("browsers cache it: Chromium 5 s, Firefox 5 s, Safari 5 s") for line in rest)


def test_preflight_cost_counts_distinct_urls(edge):
    paths = ["/good/jobs/1", "/good/jobs/2", "/good/jobs/1", "/good/jobs/1?page=2"]
    args = [a for p in paths for a in ("--paths", p)]
    _, report = cors(edge, "/good/jobs", *PAGE_CALL, *args)
    cost = report["preflight_cost"]
    assert cost["calls"] == 4 and cost["distinct_urls"] == 3 and cost["first_preflights"] == 3
    assert cost["max_preflights_per_hour"] == {"Chromium": 3, "Firefox": 3, "Safari": 18}

    _, report = cors(edge, "/no-max-age/jobs", *PAGE_CALL, *args)
    assert report["preflight_cost"]["max_preflights_per_hour"]["Chromium"] == 3 * 720


def test_same_origin_costs_no_preflight(edge):
    proc = run_ops("playbook", "cors", edge.url("/anything"), "--origin", edge.url("").rstrip("/"), "--json", env=ENV)
    report = json.loads(proc.stdout)
    assert proc.returncode == 0
    assert report["preflight_cost"]["same_origin"] is True and report["preflight_cost"]["first_preflights"] == 0


def test_unreachable_is_unknown():
    port = free_port()  # nothing listens there
    proc = run_ops("playbook", "cors", f"http://127.0.0.1:{port}/api", "--origin", PAGE_ORIGIN, env=ENV)
    assert proc.returncode == 3
    assert proc.stdout.startswith("UNKNOWN: cannot reach")
    assert "preflight cost" not in proc.stdout  # nothing answered: nothing to count


@pytest.mark.parametrize(
    ("path", "check", "key"),
    [
        ("/no-max-age/jobs", "no-max-age", "cors_max_age = 7200"),
        ("/max-age-86400/jobs", "max-age-above-cap", "cors_max_age = 7200"),
        ("/two-origins/jobs", "two-allow-origin", "cors_mode"),
    ],
)
def test_fixes_name_the_inventory_key_and_the_deploy_not_generated_files(edge, path, check, key):
    _, report = cors(edge, path, *PAGE_CALL)
    fix = checks(report)[check]["fix"]
    assert key in fix and "inventory/<env>.py" in fix and "pyinfra inventory/<env>.py deploy.py" in fix
    assert "CORS_MAX_AGE=" not in fix and "add_header" not in fix  # the generated files the next deploy overwrites


def test_templates_cite_only_files_the_repo_has():
    for template in (REPO_ROOT / "templates").rglob("*"):
        if template.is_file():
            for cited in re.findall(r"[\w./-]+\.md\b", template.read_text()):
                assert (REPO_ROOT / cited).exists(), f"{template.relative_to(REPO_ROOT)} cites {cited}, not in the repo"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["ftp://example.test/x", "--origin", PAGE_ORIGIN], "URL must be http"),
        (["http://127.0.0.1/x", "--origin", "app.example.com"], "--origin must be scheme://host"),
        (["http://127.0.0.1/x", "--origin", "https://app.example.com/path"], "--origin must be scheme://host"),
    ],
)
def test_bad_input_is_one_line(args, says):
    proc = run_ops("playbook", "cors", *args, env=ENV)
    assert proc.returncode == 2 and says in proc.stderr and proc.stderr.count("\n") == 1


def test_browser_facts():
    assert browser_cache(None) == {"Chromium": 5, "Firefox": 5, "Safari": 5}
    assert browser_cache("86400") == {"Chromium": 7200, "Firefox": 86400, "Safari": 600}
    assert browser_cache("-1") == {"Chromium": 0, "Firefox": 0, "Safari": 0}
    assert browser_cache("1.5") == {"Chromium": 5, "Firefox": 0, "Safari": 5}
    assert not needs_preflight("GET", ["Accept"]) and needs_preflight("GET", ["Authorization"])
    assert needs_preflight("PUT", [])
    tricks = set(look_alikes("https://www.example.com").values())
    assert {"null", "https://www.example.com.evil.test", "https://evilexample.com", "https://wwwaexample.com"} <= tricks
    assert {"http://www.example.com", "https://www.example.com:444"} <= tricks
    assert look_alikes("null") == {}
