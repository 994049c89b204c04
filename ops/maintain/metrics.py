"""Prometheus textfile for node_exporter's textfile collector, written atomically (tmp + rename).

One file per job (e.g. ``/var/lib/prometheus/node-exporter/s10_reindex.prom``); the file is
written even when the job fails, so monitoring sees the failure (``s10_maintenance_exit_code``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ops.errors import UsageError

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry


def check_path(path: str | None) -> None:
    """Fail before any work when the metrics file cannot be written where asked."""
    if not path:
        return
    parent = Path(path).resolve().parent
    if not parent.is_dir():
        raise UsageError(f"--metrics-file {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise UsageError(f"--metrics-file {path}: directory {parent} is not writable")


def write(path: str, job: str, exit_code: int, seconds: float, result: dict[str, Any] | None) -> None:
    """Write the job's metrics to ``path``: run status always, the job's own figures when it ran."""
    from prometheus_client import CollectorRegistry, Gauge, write_to_textfile  # only jobs that write metrics

    reg = CollectorRegistry()
    labels = ["job"]
    Gauge("s10_maintenance_last_run_timestamp_seconds", "When the job last finished.", labels, registry=reg).labels(
        job
    ).set(time.time())
    Gauge("s10_maintenance_duration_seconds", "How long the job's last run took.", labels, registry=reg).labels(
        job
    ).set(seconds)
    Gauge(
        "s10_maintenance_exit_code",
        "Exit code of the last run (reports: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN; actions: 0 done).",
        labels,
        registry=reg,
    ).labels(job).set(exit_code)
    if result is not None:
        _JOBS[job](reg, result)
    write_to_textfile(path, reg)


def _usage(reg: CollectorRegistry, r: dict[str, Any]) -> None:
    from prometheus_client import Gauge

    g = Gauge("s10_index_findings", "Indexes found unused, redundant or invalid.", ["kind"], registry=reg)
    b = Gauge("s10_index_findings_bytes", "Bytes in the indexes of each finding.", ["kind"], registry=reg)
    for kind in ("unused", "redundant", "invalid"):
        g.labels(kind).set(len(r[kind]))
        b.labels(kind).set(sum(f["bytes"] for f in r[kind]))
    Gauge("s10_index_stats_age_seconds", "Age of the index usage counters.", registry=reg).set(
        r["stats"].get("age_s") or 0
    )


def _bloat(reg: CollectorRegistry, r: dict[str, Any]) -> None:
    from prometheus_client import Gauge

    labels = ["schema", "table", "index", "measured_by"]
    pct = Gauge("s10_index_bloat_ratio", "Bloat of a btree index over a fresh build (0-1).", labels, registry=reg)
    waste = Gauge("s10_index_bloat_bytes", "Bytes of a btree index over a fresh build.", labels, registry=reg)
    for ix in r["indexes"]:
        if ix["bloat_pct"] is None:
            continue
        key = (ix["schema"], ix["table"], ix["index"], ix["measured_by"])
        pct.labels(*key).set(ix["bloat_pct"] / 100.0)
        waste.labels(*key).set(ix["bloat_bytes"] or 0)
    Gauge("s10_index_bloated", "Indexes at or over the bloat warning threshold.", registry=reg).set(len(r["bloated"]))


def _reindex(reg: CollectorRegistry, r: dict[str, Any]) -> None:
    from prometheus_client import Gauge

    n = Gauge("s10_reindex_indexes", "Indexes per outcome in the last reindex run.", ["outcome"], registry=reg)
    n.labels("rebuilt").set(0 if r["dry_run"] else len(r["rebuilt"]))
    n.labels("skipped").set(len(r["skipped"]))
    n.labels("failed").set(len(r["failed"]))
    n.labels("leftover_dropped").set(0 if r["dry_run"] else len(r["dropped_leftovers"]))
    Gauge("s10_reindex_reclaimed_bytes", "Bytes given back by the last reindex run.", registry=reg).set(
        0 if r["dry_run"] else r["bytes_reclaimed"]
    )


def _analyze(reg: CollectorRegistry, r: dict[str, Any]) -> None:
    from prometheus_client import Gauge

    n = Gauge("s10_analyze_tables", "Tables per outcome in the last analyze run.", ["outcome"], registry=reg)
    n.labels("analyzed").set(0 if r["dry_run"] else len(r["analyzed"]))
    n.labels("failed").set(len(r["failed"]))
    n.labels("fresh").set(r["fresh"])


_JOBS = {"usage": _usage, "bloat": _bloat, "reindex": _reindex, "analyze": _analyze}
