"""``ops playbook index-health``: the one screen an on-call engineer wants about indexes.

INVALID indexes, redundant and unused ones, bloat above the threshold and tables with stale
statistics, each with the command that fixes it. It reuses the maintenance reports
(``ops.maintain.usage``, ``bloat``, ``analyze``): the same queries and the same rules as the
scheduled jobs, never a second copy. Read-only: it changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ops.db import MONITORING_ROLE, connect, replica_connections
from ops.errors import CRITICAL, WARNING
from ops.maintain import analyze as analyze_mod
from ops.maintain import bloat as bloat_mod
from ops.maintain import usage as usage_mod
from ops.maintain.units import human_bytes, human_duration
from ops.playbook.report import INFO, Report


@dataclass
class Options:
    replicas: list[str] = field(default_factory=list)
    min_stats_age: float = usage_mod.DEFAULT_MIN_STATS_AGE
    bloat_warning: float = 40.0
    bloat_critical: float = 60.0
    bloat_min_size: int = 1024 * 1024
    exact: bool = False
    stale_fraction: float = 0.1
    schemas: list[str] | None = None  # the app's (ops.db.app_schemas); other schemas are not read


def index_health(dsn: str | None, opts: Options) -> Report:
    with connect(dsn, grant_role=MONITORING_ROLE) as conn, replica_connections(opts.replicas) as replicas:
        usage = usage_mod.findings(conn, min_stats_age=opts.min_stats_age, replicas=replicas, schemas=opts.schemas)
        bloat = bloat_mod.findings(
            conn,
            warning=opts.bloat_warning,
            critical=opts.bloat_critical,
            min_size=opts.bloat_min_size,
            use_exact=opts.exact,
            schemas=opts.schemas,
        )
        stale = analyze_mod.findings(conn, fraction=opts.stale_fraction, schemas=opts.schemas)
    return build_report(usage, bloat, stale)


def build_report(usage: dict[str, Any], bloat: dict[str, Any], stale: dict[str, Any]) -> Report:
    n_indexes = len(usage["indexes"])
    report = Report(ok_summary=f"{n_indexes} indexes valid, none redundant, unused or bloated; statistics fresh")
    for f in usage["invalid"]:
        report.add(CRITICAL, "invalid", f"{f['table']}.{f['index']}: {f['reason']}", f["fix"])
    for f in bloat["bloated"]:
        severity = CRITICAL if f["severity"] == "critical" else WARNING
        report.add(severity, "bloat", f"{f['table']}.{f['index']} ({human_bytes(f['bytes'])}): {f['reason']}", f["fix"])
    for f in usage["redundant"]:
        report.add(
            WARNING,
            "redundant",
            f"{f['table']}.{f['index']} ({human_bytes(f['bytes'])}): {f['reason']}",
            f"{f['fix']}  (after checking the app does not name it)",
        )
    for f in usage["unused"]:
        report.add(WARNING, "unused", f"{f['table']}.{f['index']} ({human_bytes(f['bytes'])}): {f['reason']}", f["fix"])
    for t in stale["stale"]:
        report.add(WARNING, "stale-statistics", f"{t['schema']}.{t['table']}: {t['reason']}", t["fix"])
    stats = usage["stats"]
    if not stats["unused_meaningful"]:
        report.add(
            INFO,
            "unused-not-judged",
            f"scan counters are only {human_duration(stats['youngest_node_age_s'])} old "
            f"(need {human_duration(stats['min_age_s'])}): unused indexes not judged yet",
        )
    if len(usage["nodes"]) == 1:
        report.add(
            INFO,
            "primary-only",
            "scans counted on this node only; pass --replica for each replica "
            "before dropping an index that looks unused",
        )
    for note in bloat.get("notes", []):
        report.add(INFO, "bloat-note", note)
    report.details.update(
        {
            "nodes": usage["nodes"],
            "invalid": usage["invalid"],
            "redundant": usage["redundant"],
            "unused": usage["unused"],
            "bloated": bloat["bloated"],
            "stale": stale["stale"],
            "indexes_checked": n_indexes,
        }
    )
    return report
