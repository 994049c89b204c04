"""Prometheus textfile for node_exporter's textfile collector, written atomically (tmp + rename).

One file per job (e.g. ``/var/lib/prometheus/node-exporter/s10_reindex.prom``); the file is
written even when the job fails, so monitoring sees the failure (``s10_maintenance_exit_code``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ops.errors import OpsError, UsageError

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry


# Kernel and virtual filesystems: a file there is not a file node_exporter could read back (or is the kernel's).
PSEUDO_FILESYSTEMS = frozenset(
    "proc sysfs devtmpfs devpts cgroup cgroup2 debugfs tracefs securityfs configfs fusectl bpf pstore mqueue "
    "hugetlbfs efivarfs autofs binfmt_misc nsfs rpc_pipefs selinuxfs".split()
)
PSEUDO_ROOTS = (Path("/proc"), Path("/sys"))  # also when they are not mounted (a container)


def filesystem_type(path: Path) -> str | None:
    """The type of the filesystem mounted at the longest mount point above ``path`` (Linux), else None."""
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return None
    best, fstype = "", None
    for entry in mounts:
        fields = entry.split()
        if len(fields) < 3:
            continue
        point = fields[1].encode().decode("unicode_escape")  # '\040' is a space in a mount point
        inside = str(path) == point or str(path).startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, fstype = point, fields[2]
    return fstype


def check_path(path: str | None, flag: str = "--metrics-file") -> None:
    """Fail before any work unless ``path`` can take a regular file written atomically (tmp + rename):
    not a directory, device, fifo or socket; its directory exists and is writable; not in /proc,
    /sys, /dev or any other kernel filesystem."""
    if path is None:
        return
    where = f"{flag} {path}" if flag else path
    if not path.strip():
        raise UsageError(f"{flag}: empty path" if flag else "empty path")
    given = Path(path)
    if given.is_dir():
        raise UsageError(f"{where}: is a directory (give a file name, e.g. {given / 's10_job.prom'})")
    if given.exists() and not given.is_file():
        raise UsageError(f"{where}: is not a regular file (a device, fifo or socket)")
    target = given.resolve()
    parent = target.parent
    for root in PSEUDO_ROOTS:
        if target.is_relative_to(root):
            raise UsageError(f"{where}: is under {root}, the kernel's filesystem, not a place for files")
    fstype = filesystem_type(parent)
    if fstype in PSEUDO_FILESYSTEMS:
        raise UsageError(f"{where}: {parent} is on a {fstype} filesystem, not a place for files")
    if not parent.is_dir():
        raise UsageError(f"{where}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{where}: directory {parent} is not writable")


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
    try:
        write_to_textfile(path, reg)
    except OSError as exc:  # checked before the job, but a disk can fill up or a directory go away meanwhile
        raise OpsError(f"--metrics-file {path}: cannot write it: {exc.strerror or exc}") from None


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
