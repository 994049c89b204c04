"""``ops playbook cors``: is the preflight right, and what will each browser really cache?

It sends what a browser sends: the preflight (``OPTIONS`` with ``Origin``,
``Access-Control-Request-Method`` and ``-Headers``), then the request itself (GET or HEAD only:
an unsafe method is replaced by GET so that checking never changes data), then preflights and
GETs from look-alike origins an attacker could own. It grades the answers as browsers do
(the Fetch standard's CORS protocol; the Max-Age caps are the browsers' own sources):

- exactly one ``Access-Control-Allow-Origin``, equal to the origin; never ``*`` with credentials;
- the method and headers allowed; ``Vary: Origin`` when the answer depends on the origin;
- ``Access-Control-Max-Age``: Chromium caches min(value, 7200) s, Firefox min(value, 86400) s,
  Safari min(value, 600) s; a missing header means 5 s; a bad value means 5 s in Chromium and
  Safari and no caching in Firefox; a negative one, no caching;
- the preflight cache is keyed by origin, full URL (query string included) and credentials mode, so
  each distinct URL costs its own preflight; a same-origin deployment costs none.

Fixes are given as this repo applies them: the ``cors_*`` key in ``inventory/<env>.py`` and the
deploy that renders Nginx's and the app's files from it (``pyinfra inventory/<env>.py deploy.py``);
an edit to a rendered file would be overwritten by the next deploy.

Exit codes: 0 OK, 1 WARNING (the preflight works but is not cached as it should be), 2 CRITICAL
(the browser blocks the call, or an attacker's origin is allowed), 3 UNKNOWN (unreachable).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from ops import __version__
from ops.errors import CRITICAL, UNKNOWN, WARNING, UsageError
from ops.playbook.report import INFO, Report

CAPS = {"Chromium": 7200, "Firefox": 86400, "Safari": 600}
MISSING_MAX_AGE = 5  # seconds every browser caches a preflight that has no Access-Control-Max-Age
RECOMMENDED_MAX_AGE = CAPS["Chromium"]
SIMPLE_METHODS = {"GET", "HEAD", "POST"}
SAFELISTED_HEADERS = {"accept", "accept-language", "content-language"}  # Content-Type only for form values
USER_AGENT = f"s10-ops/{__version__} (ops playbook cors)"
DEPLOY = "pyinfra inventory/<env>.py deploy.py"


def inventory_fix(change: str) -> str:
    """A fix as this repo makes it: the inventory setting, then the deploy that renders Nginx's and the app's files."""
    return f"{change} in inventory/<env>.py, then deploy: {DEPLOY} (it renders the Nginx and app files)"


@dataclass
class Options:
    origin: str
    method: str = "GET"
    headers: list[str] = field(default_factory=list)
    expose: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    credentials: bool = True
    timeout: float = 10.0
    verify: bool = True


# --------------------------------------------------------------------------------------- browser facts


def browser_cache(max_age: str | None) -> dict[str, int]:
    """Seconds each browser keeps this preflight, from the raw Access-Control-Max-Age value."""
    if max_age is None:
        return dict.fromkeys(CAPS, MISSING_MAX_AGE)
    value = max_age.strip()
    if re.fullmatch(r"\d+", value):
        return {browser: min(int(value), cap) for browser, cap in CAPS.items()}
    if re.fullmatch(r"-\d+", value):
        return dict.fromkeys(CAPS, 0)
    # Not an integer: Chromium and Safari fall back to the default, Firefox caches nothing.
    return {"Chromium": MISSING_MAX_AGE, "Firefox": 0, "Safari": MISSING_MAX_AGE}


def needs_preflight(method: str, headers: list[str]) -> bool:
    """False for a "simple" request (GET/HEAD/POST with CORS-safelisted headers only): no preflight."""
    return method.upper() not in SIMPLE_METHODS or any(h.lower() not in SAFELISTED_HEADERS for h in headers)


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    port = f":{parts.port}" if parts.port and parts.port != default else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


def look_alikes(origin: str) -> dict[str, str]:
    """Origins an attacker can own that sloppy matching lets through, by trick."""
    if origin == "null":
        return {}
    parts = urlsplit(origin)
    scheme, host, port = parts.scheme, parts.hostname or "", parts.port
    suffix = f":{port}" if port else ""
    labels = host.split(".")
    registrable = ".".join(labels[-2:]) if len(labels) >= 2 and not host.replace(".", "").isdigit() else host
    tricks = {
        "null origin (sandboxed iframes send it)": "null",
        "suffix: the origin as a subdomain of another domain": f"{scheme}://{host}.evil.test{suffix}",
        "prefix: another domain ending in the same name": f"{scheme}://evil{registrable}{suffix}",
        "unescaped dot in a regex": f"{scheme}://{host.replace('.', 'a', 1)}{suffix}" if "." in host else "",
        "other scheme": f"{'http' if scheme == 'https' else 'https'}://{host}{suffix}",
        "other port": f"{scheme}://{host}:{(port or (443 if scheme == 'https' else 80)) + 1}",
    }
    return {trick: o for trick, o in tricks.items() if o and o != origin}


def cors_headers(resp: httpx.Response) -> list[list[str]]:
    """The CORS-related headers of a response, repeats kept (two Allow-Origin headers are a fault)."""
    return [[k, v] for k, v in resp.headers.multi_items() if k.lower().startswith(("access-control-", "vary"))]


def _list(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


# --------------------------------------------------------------------------------------- the checks


def check(url: str, opts: Options) -> Report:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"URL must be http:// or https:// with a host, got {url!r}")
    o = urlsplit(opts.origin)
    if opts.origin != "null" and (o.scheme not in ("http", "https") or not o.hostname or o.path not in ("", "/")):
        raise UsageError(f"--origin must be scheme://host[:port] as a browser sends it, got {opts.origin!r}")
    origin = opts.origin.rstrip("/")
    opts.method = opts.method.upper()
    report = Report(ok_summary=f"{origin} may call {url} with {opts.method}; preflight cached as browsers allow")
    report.details.update({"url": url, "origin": origin, "method": opts.method, "request_headers": opts.headers})
    if origin_of(url) == origin:
        report.details["preflight_cost"] = preflight_cost(url, origin, opts, None)
        report.add(INFO, "same-origin", "the page and the API share one origin: no CORS and no preflight at all")
        report.ok_summary = f"{url} is same-origin with {origin}: no preflight, nothing to check"
        return report
    if not needs_preflight(opts.method, opts.headers):
        report.details["preflight_cost"] = preflight_cost(url, origin, opts, None)
        report.add(
            INFO,
            "simple-request",
            f"{opts.method} with only CORS-safelisted headers is a simple request: browsers send no preflight "
            "for it; checked anyway",
        )
    with httpx.Client(timeout=opts.timeout, verify=opts.verify, follow_redirects=False) as client:
        try:
            pre = preflight(client, url, origin, opts)
        except httpx.HTTPError as exc:
            report.add(UNKNOWN, "unreachable", f"cannot reach {url}: {exc or type(exc).__name__}")
            report.details.pop("preflight_cost", None)  # no answer, no preflight cost to tell
            return report
        report.details["preflight_cost"] = preflight_cost(url, origin, opts, pre.headers.get("access-control-max-age"))
        grade_preflight(pre, origin, opts, report)
        real_method = opts.method if opts.method in ("GET", "HEAD") else "GET"
        try:
            real = client.request(real_method, url, headers={"Origin": origin, "User-Agent": USER_AGENT})
        except httpx.HTTPError as exc:
            report.add(UNKNOWN, "unreachable", f"the real {real_method} to {url} failed: {exc or type(exc).__name__}")
            return report
        grade_real(real, real_method, origin, opts, report)
        probe_look_alikes(client, url, origin, opts, report)
    return report


def preflight(client: httpx.Client, url: str, origin: str, opts: Options) -> httpx.Response:
    headers = {"Origin": origin, "Access-Control-Request-Method": opts.method, "User-Agent": USER_AGENT}
    if opts.headers:  # as Chromium sends them: lower case, sorted, comma-separated
        headers["Access-Control-Request-Headers"] = ",".join(sorted(h.lower() for h in opts.headers))
    return client.options(url, headers=headers)


def grade_allow_origin(resp: httpx.Response, origin: str, opts: Options, where: str, report: Report) -> bool:
    """The Access-Control-Allow-Origin rules; True when a browser would accept it."""
    values = resp.headers.get_list("access-control-allow-origin")
    creds = resp.headers.get("access-control-allow-credentials", "").strip().lower() == "true"
    fix_two = "only one layer may answer CORS: " + inventory_fix(
        "cors_mode = 'edge' (Nginx answers and hides the app's Access-Control-* headers) or 'app' (only the app)"
    )
    if not values:
        report.add(
            CRITICAL,
            "origin-refused",
            f"the {where} has no Access-Control-Allow-Origin for {origin}: the browser blocks the call",
            inventory_fix(f"add {origin!r} to cors_origins") + ": exactly, scheme, host and port",
        )
        return False
    if len(values) > 1 or "," in values[0]:
        report.add(
            CRITICAL,
            "two-allow-origin",
            f"the {where} carries {len(values)} Access-Control-Allow-Origin values ({' | '.join(values)}): "
            "browsers reject a response with more than one",
            fix_two,
        )
        return False
    value = values[0].strip()
    if value == "*":
        if creds:
            report.add(
                CRITICAL,
                "wildcard-credentials",
                f"the {where} allows origin * together with Access-Control-Allow-Credentials: true: browsers "
                "reject that pair, and a server that really honours it lets any site act as the user",
                inventory_fix("list the exact origins in cors_origins (no '*')"),
            )
            return False
        if opts.credentials:
            report.add(
                CRITICAL,
                "wildcard-credentials",
                f"the {where} allows origin * but the page sends credentials: a credentialed fetch is blocked",
                inventory_fix(f"list {origin!r} in cors_origins (no '*') with cors_allow_credentials = True"),
            )
            return False
        return True
    if value != origin:
        report.add(
            CRITICAL,
            "origin-refused",
            f"the {where} allows {value}, not {origin}: the browser blocks the call (the origin must match exactly, "
            "scheme and port included)",
            inventory_fix(f"add {origin!r} to cors_origins") + ": exactly, scheme, host and port",
        )
        return False
    if opts.credentials and not creds:
        report.add(
            CRITICAL,
            "credentials",
            f"the {where} lacks Access-Control-Allow-Credentials: true: a fetch with credentials is blocked",
            inventory_fix("cors_allow_credentials = True"),
        )
        return False
    if "origin" not in {v.lower() for v in _list(",".join(resp.headers.get_list("vary")))}:
        report.add(
            WARNING,
            "vary-origin",
            f"the {where} depends on the Origin but has no Vary: Origin: a shared cache can serve one origin's "
            "answer to another",
            f"the config this repo renders sends Vary: Origin: deploy it ({DEPLOY}); "
            "a server not deployed from here: add_header Vary Origin always;",
        )
    return True


def grade_preflight(resp: httpx.Response, origin: str, opts: Options, report: Report) -> None:
    max_age = resp.headers.get("access-control-max-age")
    report.details["preflight"] = {
        "status": resp.status_code,
        "headers": cors_headers(resp),
        "browser_cache_s": browser_cache(max_age),
    }
    if 300 <= resp.status_code < 400:
        report.add(
            CRITICAL,
            "preflight-status",
            f"the preflight is redirected ({resp.status_code} to {resp.headers.get('location')}): browsers fail it",
            "call the final URL directly, or answer OPTIONS before the redirect",
        )
        return
    if not 200 <= resp.status_code < 300:
        report.add(
            CRITICAL,
            "preflight-status",
            f"the preflight got {resp.status_code}: browsers need a 2xx, so the call is blocked",
            "answer OPTIONS with 204 and the CORS headers (nginx: `add_header ... always` so they also go on errors)",
        )
    if not grade_allow_origin(resp, origin, opts, "preflight", report):
        return
    allowed_methods = _list(resp.headers.get("access-control-allow-methods"))
    wildcard_ok = not opts.credentials
    if (
        opts.method not in SIMPLE_METHODS
        and opts.method not in allowed_methods
        and not (wildcard_ok and "*" in allowed_methods)
    ):
        report.add(
            CRITICAL,
            "method",
            f"{opts.method} is not in Access-Control-Allow-Methods ({', '.join(allowed_methods) or 'none'}): blocked",
            inventory_fix(f"add {opts.method!r} to cors_methods"),
        )
    allowed_headers = {h.lower() for h in _list(resp.headers.get("access-control-allow-headers"))}
    missing = [
        h
        for h in opts.headers
        if h.lower() not in SAFELISTED_HEADERS
        and h.lower() not in allowed_headers
        and not (wildcard_ok and "*" in allowed_headers and h.lower() != "authorization")
    ]
    if missing:
        report.add(
            CRITICAL,
            "headers",
            f"request header(s) {', '.join(missing)} not in Access-Control-Allow-Headers "
            f"({', '.join(sorted(allowed_headers)) or 'none'}): blocked",
            inventory_fix(f"add {', '.join(map(repr, missing))} to cors_headers"),
        )
    grade_max_age(max_age, report)


def grade_max_age(max_age: str | None, report: Report) -> None:
    cache = browser_cache(max_age)
    told = ", ".join(f"{b} {s:,} s" for b, s in cache.items())
    setting = inventory_fix(f"cors_max_age = {RECOMMENDED_MAX_AGE}")
    fix = f"{setting}: {RECOMMENDED_MAX_AGE} s is the most Chromium honours"
    if max_age is None:
        report.add(
            WARNING,
            "no-max-age",
            f"no Access-Control-Max-Age: browsers re-check every {MISSING_MAX_AGE} s, so nearly every call "
            "pays for a preflight first",
            fix,
        )
    elif not re.fullmatch(r"-?\d+", max_age.strip()):
        report.add(WARNING, "bad-max-age", f"Access-Control-Max-Age {max_age!r} is not an integer: {told}", fix)
    elif int(max_age) <= 0:
        report.add(
            WARNING, "max-age-off", f"Access-Control-Max-Age {max_age} turns the preflight cache off: {told}", fix
        )
    elif int(max_age) > CAPS["Chromium"]:
        report.add(
            WARNING,
            "max-age-above-cap",
            f"Access-Control-Max-Age {int(max_age):,} is above Chromium's cap of {CAPS['Chromium']:,} s: "
            f"browsers really cache {told}; the {int(max_age):,} s holds in Firefox only",
            f"set {RECOMMENDED_MAX_AGE} so the config says what browsers do: {setting}",
        )
    else:
        report.add(INFO, "max-age", f"Access-Control-Max-Age {max_age}: browsers cache {told}")


def grade_real(resp: httpx.Response, method: str, origin: str, opts: Options, report: Report) -> None:
    exposed = {h.lower() for h in _list(",".join(resp.headers.get_list("access-control-expose-headers")))}
    report.details["real_request"] = {
        "method": method,
        "status": resp.status_code,
        "headers": cors_headers(resp),
        "exposed": sorted(exposed),
    }
    if method != opts.method:
        report.add(
            INFO,
            "real-request",
            f"sent the real request as {method}, not {opts.method}: a check must not change data",
        )
    grade_allow_origin(resp, origin, opts, f"real {method} response ({resp.status_code})", report)
    missing = [h for h in opts.expose if h.lower() not in exposed and "*" not in exposed]
    if missing:
        report.add(
            WARNING,
            "expose-headers",
            f"the response does not expose {', '.join(missing)} (Access-Control-Expose-Headers: "
            f"{', '.join(sorted(exposed)) or 'none'}): the page's JavaScript cannot read it",
            inventory_fix(f"add {', '.join(map(repr, missing))} to cors_expose_headers"),
        )


def probe_look_alikes(client: httpx.Client, url: str, origin: str, opts: Options, report: Report) -> None:
    reflected: dict[str, str] = {}
    for trick, evil in look_alikes(origin).items():
        for resp in (
            preflight(client, url, evil, opts),
            client.get(url, headers={"Origin": evil, "User-Agent": USER_AGENT}),
        ):
            values = [v.strip() for v in resp.headers.get_list("access-control-allow-origin")]
            creds = resp.headers.get("access-control-allow-credentials", "").strip().lower() == "true"
            if evil in values or ("*" in values and creds):
                reflected[evil] = trick
    report.details["look_alikes"] = {"tried": look_alikes(origin), "allowed": reflected}
    if reflected:
        which = "; ".join(f"{evil} ({trick})" for evil, trick in reflected.items())
        report.add(
            CRITICAL,
            "evil-origin-allowed",
            f"look-alike origin(s) an attacker can own are allowed: {which}; a page there can call the API as the user",
            "match origins exactly: a list of full origins, or anchored regexes with escaped dots "
            "(`~^https://app\\.example\\.com$`); never allow null",
        )


def preflight_cost(url: str, origin: str, opts: Options, max_age: str | None) -> dict[str, Any]:
    """How many preflights the page's calls cost: one per distinct full URL per cache period per browser."""
    urls = [urljoin(url, p) for p in opts.paths] or [url]
    distinct = sorted(set(urls))
    same_origin = origin_of(url) == origin
    preflighted = needs_preflight(opts.method, opts.headers) and not same_origin
    cache = browser_cache(max_age)
    per_hour = {
        b: ((len(distinct) * math.ceil(3600 / s) if s else None) if preflighted else 0) for b, s in cache.items()
    }
    return {
        "calls": len(urls),
        "distinct_urls": len(distinct),
        "needs_preflight": preflighted,
        "same_origin": same_origin,
        "cache_s": cache,
        "first_preflights": len(distinct) if preflighted else 0,
        "max_preflights_per_hour": per_hour,  # None: every call (no caching)
    }


def render(report: Report) -> list[str]:
    """The lines printed between the verdict and the findings."""
    d = report.details
    lines = []
    if "preflight" in d:
        p = d["preflight"]
        headers = "; ".join(f"{k}: {v}" for k, v in p["headers"]) or "no CORS headers"
        lines.append(f"preflight: OPTIONS {d['url']} -> {p['status']} ({headers})")
        lines.append("browsers cache it: " + ", ".join(f"{b} {s:,} s" for b, s in p["browser_cache_s"].items()))
    if "real_request" in d:
        r = d["real_request"]
        lines.append(f"real request: {r['method']} -> {r['status']}, exposes: {', '.join(r['exposed']) or 'nothing'}")
    if "look_alikes" in d:
        la = d["look_alikes"]
        lines.append(f"look-alike origins: {len(la['tried'])} tried, {len(la['allowed'])} allowed")
    c = d.get("preflight_cost")
    if c is None:  # unreachable: nothing was answered, so nothing to count
        pass
    elif c["same_origin"]:
        lines.append("preflight cost: none (same origin)")
    elif not c["needs_preflight"]:
        lines.append("preflight cost: none (a simple request needs no preflight)")
    else:
        hourly = ", ".join(
            f"{b} {'every call' if n is None else f'up to {n:,}'}" for b, n in c["max_preflights_per_hour"].items()
        )
        lines.append(
            f"preflight cost: {c['calls']} call(s) to {c['distinct_urls']} distinct URL(s) -> {c['first_preflights']} "
            f"preflight(s) at first (the cache is per full URL, query string included), then per hour of steady "
            f"use: {hourly}"
        )
    if report.findings:
        lines.append("findings:")
    return lines
