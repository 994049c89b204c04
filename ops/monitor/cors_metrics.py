"""The synthetic CORS check's Prometheus textfile (``ops playbook cors --metrics-file``).

Written atomically, like the maintenance jobs' files (prometheus_client's write_to_textfile: a
temp file, then rename), for node_exporter's textfile collector. Labels are the check's URL and
origin (one series per configured check) and, for the cache figure, the browser.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ops.playbook.report import Report


def write(path: str, report: Report, seconds: float) -> None:
    from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

    d = report.details
    key = {"url": d.get("url", ""), "origin": d.get("origin", "")}
    reg = CollectorRegistry()
    labels = list(key)
    Gauge(
        "s10_cors_check_status",
        "Verdict of the synthetic CORS check: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
        labels,
        registry=reg,
    ).labels(**key).set(report.exit_code)
    Gauge("s10_cors_check_last_run_timestamp_seconds", "When the check last ran.", labels, registry=reg).labels(
        **key
    ).set(time.time())
    Gauge("s10_cors_check_duration_seconds", "How long the check took.", labels, registry=reg).labels(**key).set(
        seconds
    )
    cache = (d.get("preflight") or {}).get("browser_cache_s") or {}
    if cache:
        g = Gauge(
            "s10_cors_preflight_max_age_seconds",
            "Seconds each browser really caches the preflight (Access-Control-Max-Age after its cap).",
            [*labels, "browser"],
            registry=reg,
        )
        for browser, secs in cache.items():
            g.labels(**key, browser=browser).set(secs)
    write_to_textfile(path, reg)
