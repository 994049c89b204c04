"""CORS settings: bad values rejected with the field and the reason; ops render writes what the deploy writes."""

from __future__ import annotations

import os
import re
import stat
import textwrap
from pathlib import Path

import pytest

from ops.cors import CorsSettings, nginx_regex
from ops.errors import UsageError
from ops.settings import validate
from tests.conftest import run_ops

SEED = {"origins": ["http://localhost:3000"]}
ENV = {**os.environ, "COLUMNS": "200"}


def test_defaults_are_the_seeds():
    s = CorsSettings(**SEED)
    assert (s.mode, s.max_age, s.allow_credentials) == ("edge", 86400, True)
    assert "X-Request-ID" in s.expose_headers


@pytest.mark.parametrize(
    ("data", "field", "reason"),
    [
        ({"origins": ["http://localhost:3000/"]}, "origins", "trailing slash"),
        ({"origins": ["http://localhost:3000/api"]}, "origins", "no path"),
        ({"origins": ["null"]}, "origins", "never allowed"),
        ({"origins": ["http://LocalHost:3000"]}, "origins", "lowercase"),
        ({"origins": ["https://example.com:443"]}, "origins", "default port"),
        ({"origins": ["ftp://example.com"]}, "origins", "http or https"),
        ({"origins": ["http://localhost:99999"]}, "origins", "out of range"),
        ({"origins": ["http://a.com", "http://a.com"]}, "origins", "twice"),
        ({"origins": ["*"]}, "(settings)", "allow_credentials"),
        ({"origins": ["*", "http://a.com"]}, "origins", "only origin"),
        ({"origins": []}, "(settings)", "at least one allowed origin"),
        ({"mode": "same-origin", "origins": ["http://a.com"]}, "(settings)", "must be empty"),
        ({"mode": "proxy", **SEED}, "mode", "'edge', 'app' or 'same-origin'"),
        ({"max_age": -1, **SEED}, "max_age", "greater than or equal to 0"),
        ({"max_age": 86401, **SEED}, "max_age", "less than or equal to 86400"),
        ({"max_age": "86400", **SEED}, "max_age", "valid integer"),
        ({"max_age": 1.5, **SEED}, "max_age", "valid integer"),
        ({"methods": ["get"], **SEED}, "methods", "uppercase"),
        ({"headers": ["X Bad"], **SEED}, "headers", "not a valid header name"),
        ({"headers": ["X-$host"], **SEED}, "headers", "not a valid header name"),
        ({"expose_headers": ['X-"a"'], **SEED}, "expose_headers", "not a valid header name"),
        ({"methods": [], **SEED}, "methods", "at least 1 item"),
        ({"allow_credentials": "yes", **SEED}, "allow_credentials", "valid boolean"),
        ({"origin": ["http://a.com"], **SEED}, "origin", "Extra inputs"),
    ],
)
def test_bad_settings_name_the_field_and_the_reason(data, field, reason):
    with pytest.raises(UsageError) as err:
        validate(CorsSettings, data, "test")
    message = str(err.value)
    assert f"{field}:" in message and reason in message, message


def test_wildcard_is_fine_without_credentials():
    s = CorsSettings(origins=["*"], allow_credentials=False)
    assert s.wildcard


@pytest.mark.parametrize(
    ("max_age", "expected"),
    [
        (600, None),
        (3600, "Chromium caches a preflight for 3600 s, Safari for 600 s"),
        (86400, "Chromium caches a preflight for 7200 s, Safari for 600 s"),
    ],
)
def test_max_age_warning_names_what_browsers_do(max_age, expected):
    warnings = CorsSettings(max_age=max_age, **SEED).warnings()
    if expected is None:
        assert warnings == []
    else:
        assert len(warnings) == 1 and expected in warnings[0]


@pytest.mark.parametrize(
    ("origin", "other", "matches"),
    [
        ("http://localhost:3000", "http://localhost:3000", True),
        ("http://localhost:3000", "http://localhost:3000.evil.com", False),
        ("http://localhost:3000", "http://localhost:30000", False),
        ("http://localhost:3000", "https://localhost:3000", False),
        ("https://example.com", "https://wwwaexample.com", False),
        ("https://www.example.com", "https://wwwaexample.com", False),
        ("https://example.com", "https://evilexample.com", False),
        ("https://example.com", "https://example.com.evil.com", False),
        ("https://example.com", "HTTPS://EXAMPLE.COM", False),
    ],
)
def test_origin_regex_is_anchored_and_escaped(origin, other, matches):
    # Nginx uses PCRE; for these patterns Python's re behaves the same. The real Nginx is tested too.
    assert bool(re.search(nginx_regex(origin), other)) is matches


def _inventory(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "inv.py"
    root = tmp_path / "host"
    path.write_text(
        textwrap.dedent(f"""\
        _data = {{
            "env": "review",
            "web_site_path": "{root}/nginx/s10.conf",
            "web_access_log": "{root}/nginx/access.log",
            "app_env_path": "{root}/app/cors.env",
            "cors_origins": ["https://app.example.com"],
            {extra}
        }}
        web = (["web1.example.com"], _data)
        app = (["app1.example.com"], _data)
        """)
    )
    return path


def test_render_writes_every_hosts_files_for_review(tmp_path):
    inv = _inventory(tmp_path, '"cors_mode": "app", "cors_max_age": 600,')
    out = tmp_path / "out"
    proc = run_ops("render", "--inventory", str(inv), "--out", str(out), "--json", env=ENV)
    assert proc.returncode == 0, proc.stderr
    site = (out / "web1.example.com" / "nginx" / "s10.conf").read_text()
    env_file = out / "app1.example.com" / "app" / "cors.env"
    assert "Access-Control" not in site.split("server {", 1)[1].replace("# mode app: CORS headers", "")
    assert "CORS_ENABLED=true" in env_file.read_text() and "CORS_MAX_AGE=600" in env_file.read_text()
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o640
    assert not (out / "web1.example.com" / "app").exists()  # a web host gets no env file
    assert "WARNING" not in proc.stderr  # 600 s is within every browser's cap


def test_render_rejects_bad_settings_in_one_line_and_writes_nothing(tmp_path):
    inv = _inventory(tmp_path, '"cors_max_age": 100000,')
    out = tmp_path / "out"
    proc = run_ops("render", "--inventory", str(inv), "--out", str(out), env=ENV)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "max_age" in lines[0] and "86400" in lines[0], proc.stderr
    assert not out.exists()


def test_render_refuses_a_misspelt_key(tmp_path):
    inv = _inventory(tmp_path, '"cors_max_ages": 600,')
    proc = run_ops("render", "--inventory", str(inv), "--out", str(tmp_path / "out"), env=ENV)
    assert proc.returncode == 2 and "unknown setting 'cors_max_ages'" in proc.stderr, proc.stderr


def test_render_local_is_the_seed_at_the_edge(tmp_path):
    proc = run_ops("render", "--env", "local", "--out", str(tmp_path), env=ENV)
    assert proc.returncode == 0, proc.stderr
    site = (tmp_path / "local" / "nginx" / "s10-site.conf").read_text()
    assert '"~^http://127\\.0\\.0\\.1:3000$" "http://127.0.0.1:3000";' in site
    assert 'allowed "86400";' in site
    assert "Chromium caches a preflight for 7200 s" in " ".join(proc.stderr.split())
