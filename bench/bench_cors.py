"""CORS preflights: answered at the edge versus by the app, and what a real browser sends.

1. ``wrk`` (Debian package) on preflights (OPTIONS with Origin and Access-Control-Request-Method)
   through the rendered Nginx: ``edge`` mode (Nginx answers 204 itself) versus ``app`` mode
   (Nginx passes them to the stand-in's Starlette ``CORSMiddleware``, one uvicorn worker), and the
   app without Nginx for reference. Same machine, same run, rounds interleaved: requests per
   second and p99 latency.
2. Headless Chromium (Debian package, Playwright) on a page from an allowed origin makes a session
   of 100 API calls over a realistic mix of URLs (some repeated, some with ids, some POSTs with a
   JSON body), and Nginx's access log counts the OPTIONS it received, for ``max_age`` 0, 600,
   7200, 86400 and in ``same-origin`` mode. The preflight cache is per URL, so the count is at
   least the number of distinct URLs: the honest version of the seed's "~99% fewer OPTIONS".

    python -m bench.bench_cors [--scale tiny|small|full]
"""

from __future__ import annotations

import json
import random
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from bench.common import Result, fmt_ratio, note, step, target
from ops.cors import CorsSettings
from ops.local.browser import PageServer, chromium, run_calls
from ops.local.pg import free_port
from ops.local.webstack import WebStack, build_stack

# wrk: seconds per run and interleaved rounds, per scale.
WRK = {"tiny": (2, 1), "small": (4, 1), "full": (8, 3)}
WRK_THREADS, WRK_CONNECTIONS = 1, 16
MAX_AGES = [0, 600, 7200, 86400]

WRK_SCRIPT = """
wrk.method = "OPTIONS"
wrk.headers["Origin"] = "{origin}"
wrk.headers["Access-Control-Request-Method"] = "GET"
wrk.headers["Access-Control-Request-Headers"] = "authorization"
done = function(summary, latency, requests)
  io.write(string.format('{{"requests": %d, "seconds": %f, "p99_us": %d, "non2xx": %d, "errors": %d}}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(99), summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


def session_calls(api: str) -> list[dict[str, Any]]:
    """100 calls a front end makes in one session: repeated, with ids, with queries, POSTs."""
    calls: list[dict[str, Any]] = []
    calls += [{"url": f"{api}/api/auth/me"}] * 20
    calls += [{"url": f"{api}/api/organizations/7"}] * 10
    calls += [{"url": f"{api}/api/jobs?limit=50"}] * 15
    calls += [{"url": f"{api}/api/jobs/{i}"} for i in range(1, 16)] + [
        {"url": f"{api}/api/jobs/{i}"} for i in range(1, 11)
    ]
    calls += [{"url": f"{api}/api/jobs/{i}/artifacts"} for i in range(1, 11)]
    calls += [{"url": f"{api}/api/jobs", "method": "POST", "body": {"topic": f"t{i}"}} for i in range(10)]
    calls += [{"url": f"{api}/api/usage?period=2026-0{1 + i % 3}"} for i in range(10)]
    assert len(calls) == 100
    random.Random(10).shuffle(calls)
    return calls


def wrk(stack_url: str, origin: str, seconds: int, workdir: Path) -> dict[str, float]:
    script = workdir / "preflight.lua"
    script.write_text(WRK_SCRIPT.format(origin=origin))
    proc = subprocess.run(
        ["wrk", f"-t{WRK_THREADS}", f"-c{WRK_CONNECTIONS}", f"-d{seconds}s", "-s", str(script), stack_url],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed: {proc.stderr.strip() or proc.stdout.strip()}")
    stats = json.loads(proc.stdout.strip().splitlines()[-1])
    if stats["non2xx"] or stats["errors"]:
        raise RuntimeError(f"wrk saw {stats['non2xx']} non-2xx answers and {stats['errors']} errors: {stats}")
    return {"rps": stats["requests"] / stats["seconds"], "p99_ms": stats["p99_us"] / 1000}


def preflight_throughput(origin: str, scale: str, workdir: Path) -> dict[str, dict[str, float]]:
    seconds, rounds = WRK.get(scale, WRK["small"])
    edge = build_stack(CorsSettings(mode="edge", origins=[origin])).start()
    app = build_stack(CorsSettings(mode="app", origins=[origin])).start()
    targets = {
        "edge: Nginx answers (204)": f"{edge.base_url}/api/auth/me",
        "app: CORSMiddleware behind Nginx": f"{app.base_url}/api/auth/me",
        "app alone: uvicorn, no Nginx": f"http://127.0.0.1:{app.app_port}/api/auth/me",
    }
    runs: dict[str, list[dict[str, float]]] = {k: [] for k in targets}
    try:
        with step(
            f"wrk: {rounds} round(s) of {seconds} s on each of {len(targets)} targets", rounds * len(targets)
        ) as advance:
            for _ in range(rounds):
                for name, url in targets.items():
                    runs[name].append(wrk(url, origin, seconds, workdir))
                    advance(1)
    finally:
        edge.destroy()
        app.destroy()
    return {
        name: {
            "rps": statistics.median(r["rps"] for r in rs),
            "p99_ms": statistics.median(r["p99_ms"] for r in rs),
        }
        for name, rs in runs.items()
    }


def browser_sessions(workdir: Path) -> list[dict[str, Any]]:
    page_port = free_port()
    page_origin = f"http://127.0.0.1:{page_port}"
    (workdir / "page").mkdir()
    (workdir / "page" / "index.html").write_text("<!doctype html><title>front end (benchmark)</title>")
    settings: list[tuple[str, CorsSettings]] = [
        (f"edge, max_age {m}", CorsSettings(mode="edge", origins=[page_origin], max_age=m)) for m in MAX_AGES
    ]
    settings.append(("same-origin", CorsSettings(mode="same-origin")))
    out = []
    with PageServer(workdir / "page", page_port), chromium() as browser:
        with step("Chromium: a session of 100 API calls per setting", len(settings)) as advance:
            for label, cors in settings:
                stack: WebStack = build_stack(cors, static_files={"index.html": "<!doctype html><title>app</title>"})
                stack.start()
                try:
                    same = cors.mode == "same-origin"
                    calls = session_calls("" if same else stack.base_url)
                    page_url = (stack.base_url if same else page_origin) + "/"
                    results = run_calls(browser, page_url, calls)
                    bad = [r for r in results if r["status"] != 200]
                    if bad:
                        raise RuntimeError(f"{label}: {len(bad)} calls failed in the browser: {bad[:2]}")
                    out.append(
                        {
                            "setting": label,
                            "calls": len(calls),
                            "distinct_urls": len({c["url"] for c in calls}),
                            "options": stack.requests_seen("OPTIONS"),
                            "requests": stack.requests_seen(under="/api/"),
                        }
                    )
                finally:
                    stack.destroy()
                advance(1)
    return out


def run(scale: str = "small") -> Result:
    """wrk on preflights (edge vs app) and Chromium's OPTIONS count per max_age and in same-origin mode."""
    for tool in ("wrk", "nginx"):
        if not shutil.which(tool):
            raise RuntimeError(f"{tool} not found (Debian package {tool}: make setup)")
    workdir = Path(tempfile.mkdtemp(prefix="s10bench-cors-"))
    try:
        origin = "http://localhost:3000"
        speed = preflight_throughput(origin, scale, workdir)
        sessions = browser_sessions(workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    edge_rps = speed["edge: Nginx answers (204)"]["rps"]
    app_rps = speed["app: CORSMiddleware behind Nginx"]["rps"]
    ratio = edge_rps / app_rps
    rows: list[list[Any]] = [
        ["wrk preflights", name, f"{s['rps']:,.0f}", f"{s['p99_ms']:.2f}", "", ""] for name, s in speed.items()
    ]
    baseline = next(s for s in sessions if s["setting"] == "edge, max_age 0")["options"]
    for s in sessions:
        saved = f"{100 * (1 - s['options'] / baseline):.0f}%" if baseline else "-"
        rows.append(
            ["Chromium, 100 calls", s["setting"], "", "", f"{s['options']} ({saved} fewer)", f"{s['requests']}"]
        )
    seed = next(s for s in sessions if s["setting"] == "edge, max_age 86400")
    seed_saving = 1 - seed["options"] / baseline
    note(f"edge/app preflight rate: {fmt_ratio(ratio)}; seed's setting sent {seed['options']} OPTIONS for 100 calls")
    return {
        "name": "cors",
        "title": "CORS preflights: edge vs app (wrk), and OPTIONS a real browser sends",
        "columns": ["benchmark", "setting", "preflights/s", "p99 ms", "OPTIONS seen by the server", "requests total"],
        "rows": rows,
        "targets": [
            target("preflights/s, edge vs app (same run)", "edge >= 10x app", fmt_ratio(ratio), ratio >= 10),
            target(
                "the seed's claim: ~99% fewer OPTIONS with max_age 86400",
                ">= 99% fewer than max_age 0 over 100 mixed calls",
                f"{100 * seed_saving:.0f}% fewer ({seed['options']} vs {baseline}; "
                f"{seed['distinct_urls']} distinct URLs)",
                seed_saving >= 0.99,
            ),
        ],
        "notes": [
            f"wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS}, {WRK.get(scale, WRK['small'])[0]} s per run, median of "
            f"{WRK.get(scale, WRK['small'])[1]} interleaved round(s); the app is the stand-in (Starlette "
            "CORSMiddleware, one uvicorn worker), the client shares the machine's cores with the servers.",
            "The preflight cache is per URL (query string included): a session sends at least one preflight per "
            "distinct URL it calls cross-origin, whatever max_age says. Within one session shorter than 600 s, "
            "600, 7200 and 86400 behave the same; over longer sessions Chromium caps at 7200 s and Safari at 600 s.",
            "same-origin mode (front end and /api on one origin) sends no preflight at all.",
        ],
    }


if __name__ == "__main__":
    from bench.common import main

    main(run)
