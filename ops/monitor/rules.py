"""Prometheus alert rules of one environment, rendered from its settings (thresholds, schedules).

Every alert has a ``severity`` label, ``summary``, ``description`` and ``runbook_url`` annotations
(RUNBOOK.md, section "Alerts", one heading per alert name) and a ``for:`` long enough not to flap;
``monitor_for_override`` replaces every ``for:`` (the tests and the demo evaluate in seconds).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ops.monitor.schedule import longest_gap
from ops.monitor.settings import MonitorSettings
from ops.settings import MaintenanceSettings

# The jobs' exit codes (ops/maintain/cli.py): actions fail with non-zero, reports only with 3 UNKNOWN
# (1 and 2 are findings, which their own alerts cover).
ACTION_JOBS = ("reindex", "analyze")
REPORT_JOBS = ("usage", "bloat")
POSTGRES_JOB = "s10_postgres"
NODE_JOB = "s10_node"
CORS_TEXTFILE = "s10_cors.prom"


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    for_: str
    severity: str  # critical pages; warning goes to a ticket queue
    summary: str
    description: str


def _seconds(value: float) -> str:
    return f"{value:.0f}"


def job_gaps(maint: MaintenanceSettings | None) -> dict[str, float]:
    """Per scheduled job, the longest gap between two runs of its schedule, in seconds."""
    if maint is None:
        return {}
    gaps = {}
    for name, job in (("usage", maint.usage), ("reindex", maint.reindex), ("bloat", maint.bloat)):
        if job.enabled:
            gaps[name] = longest_gap(job.schedule, job.weekday)
    if "reindex" in gaps:
        gaps["analyze"] = gaps["reindex"]  # the same cron line runs analyze after reindex
    return gaps


def alerts(s: MonitorSettings, maint: MaintenanceSettings | None) -> list[Alert]:
    w = s.rate_window
    out = [
        Alert(
            "S10SlowStatement",
            f"(increase(pg_s10_statement_total_ms[{w}]) / increase(pg_s10_statement_calls[{w}])) > {s.slow_ms:g}\n"
            f"and increase(pg_s10_statement_calls[{w}]) >= {s.slow_min_calls}",
            "10m",
            "warning",
            'Statement {{ $labels.queryid }} ({{ $labels.command }}) takes {{ $value | printf "%.0f" }} ms on average',
            f"Over the last {w} this statement's mean execution time on {{{{ $labels.instance }}}} was above "
            f"{s.slow_ms:g} ms with at least {s.slow_min_calls} calls. Find its text and plan with "
            "`ops playbook top-queries`, then `ops playbook slow-query`.",
        ),
        Alert(
            "S10InvalidIndex",
            "pg_s10_invalid_index_bytes >= 0",
            "5m",
            "warning",
            "INVALID index {{ $labels.schema }}.{{ $labels.index }} on {{ $labels.table }}",
            "A failed concurrent build left this index INVALID: queries do not use it, every write still "
            "maintains it (a unique one still enforces uniqueness). No build is in progress on it.",
        ),
        Alert(
            "S10UnusedIndex",
            f'sum by (schema, table, index) (pg_s10_index_scans{{droppable="true"}}) == 0\n'
            f"and on() (min(pg_s10_stats_age_s) > {_seconds(s.seconds('unused_min_stats_age'))})\n"
            f'unless on() (min(up{{job="{POSTGRES_JOB}"}}) == 0 or min(pg_up) == 0)',
            "1h",
            "info",
            "Index {{ $labels.schema }}.{{ $labels.index }} on {{ $labels.table }} has no scans on any node",
            f"No scan on the primary or any replica since the statistics counters started, and they have "
            f"counted for more than {s.unused_min_stats_age}. Unique, primary-key and constraint indexes are "
            "never reported. Confirm with `ops maintain usage` (with --replica for every replica).",
        ),
        Alert(
            "S10IndexBloated",
            f"s10_index_bloat_ratio > {s.bloat_threshold_pct / 100:g}\n"
            'unless on() (max(s10_maintenance_last_run_timestamp_seconds{job="reindex"})\n'
            '             > max(s10_maintenance_last_run_timestamp_seconds{job="bloat"}))',
            "1h",
            "warning",
            "Index {{ $labels.schema }}.{{ $labels.index }} is {{ $value | humanizePercentage }} bloated",
            f"The last bloat run measured this index ({{{{ $labels.measured_by }}}}) over the reindex "
            f"threshold of {s.bloat_threshold_pct:g}%, and no reindex run has happened since.",
        ),
        Alert(
            "S10StaleStatistics",
            "pg_s10_stale_table_modified_since_analyze > 0",
            "6h",
            "warning",
            "Statistics of {{ $labels.schema }}.{{ $labels.table }} are stale",
            f"{{{{ $value }}}} rows changed since the last (auto)analyze, more than {s.stale_min_rows} + "
            f"{s.stale_fraction:g} x the table's rows, for hours: the planner works from old figures.",
        ),
        Alert(
            "S10MaintenanceFailed",
            f's10_maintenance_exit_code{{job=~"{"|".join(ACTION_JOBS)}"}} != 0\n'
            f'or s10_maintenance_exit_code{{job=~"{"|".join(REPORT_JOBS)}"}} == 3',
            "5m",
            "warning",
            "Maintenance job {{ $labels.job }} failed (exit {{ $value }}) on {{ $labels.instance }}",
            "The last scheduled run of `ops maintain {{ $labels.job }}` did not finish its work. Its log says why.",
        ),
    ]
    gaps = job_gaps(maint)
    if gaps:
        grace = s.seconds("maintenance_grace")
        expr = "\nor ".join(
            f'(time() - s10_maintenance_last_run_timestamp_seconds{{job="{job}"}}) > {_seconds(gap + grace)}'
            for job, gap in gaps.items()
        )
        out.append(
            Alert(
                "S10MaintenanceOverdue",
                expr,
                "10m",
                "warning",
                "Maintenance job {{ $labels.job }} has not run within its schedule",
                f"Its last run is older than the longest gap of its cron schedule plus {s.maintenance_grace} "
                "of grace: cron, the host or the lock is in the way.",
            )
        )
    out += [
        Alert(
            "S10ExporterDown",
            f'up{{job=~"{POSTGRES_JOB}|{NODE_JOB}"}} == 0 or pg_up == 0',
            "5m",
            "critical",
            "{{ $labels.job }} on {{ $labels.instance }} cannot be scraped or cannot reach PostgreSQL",
            "Prometheus gets nothing from this exporter (or it cannot reach its database): every database "
            "alert is blind for this node.",
        ),
        Alert(
            "S10MetricsStale",
            "pg_exporter_last_scrape_error == 1 or pg_exporter_user_queries_load_error == 1\n"
            "or node_textfile_scrape_error == 1\n"
            f'or (time() - node_textfile_mtime_seconds{{file=~".*/{CORS_TEXTFILE.replace(".", "[.]")}"}})'
            f" > {_seconds(3 * longest_gap(s.cors_schedule))}",
            "15m",
            "warning",
            "Figures from {{ $labels.instance }} are stale or incomplete",
            "A custom query failed, a textfile could not be read, or the synthetic CORS check stopped writing "
            "its textfile: some alerts cannot fire.",
        ),
        Alert(
            "S10CorsCheckCritical",
            "s10_cors_check_status == 2",
            "5m",
            "critical",
            "Browsers block {{ $labels.origin }} calling {{ $labels.url }}",
            "The synthetic preflight check grades the answer CRITICAL: the preflight fails or allows a "
            "look-alike origin. Users of the web app see failing API calls.",
        ),
        Alert(
            "S10CorsCheckWarning",
            "s10_cors_check_status == 1",
            "1d",
            "warning",
            "CORS preflight to {{ $labels.url }} is not cached as it should be",
            "The preflight works but browsers cache it shorter than intended (Max-Age), for a day now: "
            "every call costs an extra round trip.",
        ),
        Alert(
            "S10CorsCheckUnknown",
            "s10_cors_check_status == 3",
            "30m",
            "warning",
            "The synthetic CORS check cannot reach {{ $labels.url }}",
            "The monitoring host gets no answer from the API: either the API is down for everyone, or "
            "this host cannot reach it.",
        ),
    ]
    return out


def anchor(name: str) -> str:
    """RUNBOOK.md heading ``### <name>`` as GitHub and GitLab link to it."""
    return name.lower()


def rule(a: Alert, s: MonitorSettings) -> dict[str, Any]:
    return {
        "alert": a.name,
        "expr": a.expr,
        "for": s.for_override or a.for_,
        "labels": {"severity": a.severity},
        "annotations": {
            "summary": a.summary,
            "description": a.description,
            "runbook_url": f"{s.runbook_base}#{anchor(a.name)}",
        },
    }


def render(s: MonitorSettings, maint: MaintenanceSettings | None, env: str) -> str:
    """The rules file Prometheus loads (``rule_files``), for this environment."""
    from ops.monitor.exporter import dump_yaml

    doc = {
        "groups": [
            {"name": f"s10-{env}", "interval": s.evaluation_interval, "rules": [rule(a, s) for a in alerts(s, maint)]}
        ]
    }
    return f"# S10 alert rules for {env}, generated by `ops render` (ops/monitor/rules.py). Do not edit.\n" + dump_yaml(
        doc
    )
