"""The S10 Grafana dashboard, built in code with grafana-foundation-sdk (never hand-edited JSON).

Every panel reads figures the exporter queries (ops/monitor/exporter.py) and the maintenance and
CORS textfiles export, so each of its queries is checked against a real Prometheus in the tests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

PROM_DS = "${datasource}"


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


@dataclass(frozen=True)
class PanelSpec:
    title: str
    kind: str  # timeseries, table or stat
    description: str
    queries: list[Query] = field(default_factory=list)
    unit: str = "short"


ROWS: list[tuple[str, list[PanelSpec]]] = [
    (
        "Indexes",
        [
            PanelSpec(
                "Index scans per second, per table",
                "timeseries",
                "Scans of each table's indexes, summed over the primary and replicas.",
                [Query("sum by (schema, table) (rate(pg_s10_index_scans[5m]))", "{{schema}}.{{table}}")],
                "ops",
            ),
            PanelSpec(
                "Index size per table",
                "timeseries",
                "Bytes in each table's indexes on the primary.",
                [
                    Query(
                        "sum by (schema, table) (max by (schema, table, index) (pg_s10_index_bytes))",
                        "{{schema}}.{{table}}",
                    )
                ],
                "bytes",
            ),
            PanelSpec(
                "Indexes without scans (candidates to drop)",
                "table",
                "Droppable indexes (not unique, primary key or constraint) with no scan on any node since the "
                "counters started; an alert needs the counters to be old enough (see S10UnusedIndex).",
                [Query('sum by (schema, table, index) (pg_s10_index_scans{droppable="true"}) == 0', "")],
            ),
            PanelSpec(
                "Index bloat (last bloat run)",
                "table",
                "Share of each btree index over a fresh build, from the scheduled bloat job.",
                [Query("s10_index_bloat_ratio", "")],
                "percentunit",
            ),
            PanelSpec(
                "INVALID indexes",
                "stat",
                "INVALID indexes with no build in progress (see S10InvalidIndex).",
                [Query("count(pg_s10_invalid_index_bytes) or vector(0)", "invalid")],
            ),
        ],
    ),
    (
        "Statements",
        [
            PanelSpec(
                "Slowest statements: mean time",
                "timeseries",
                "Mean execution time of the top statements by total time (labelled by queryid; "
                "`ops playbook top-queries` shows their text).",
                [
                    Query(
                        "topk(10, increase(pg_s10_statement_total_ms[5m]) / increase(pg_s10_statement_calls[5m]))",
                        "{{command}} {{queryid}}",
                    )
                ],
                "ms",
            ),
            PanelSpec(
                "Statements: calls per second",
                "timeseries",
                "Calls of the top statements by total time.",
                [Query("topk(10, rate(pg_s10_statement_calls[5m]))", "{{command}} {{queryid}}")],
                "ops",
            ),
            PanelSpec(
                "Statements: longest single run",
                "table",
                "Max execution time since the counters' reset.",
                [Query("topk(10, pg_s10_statement_max_ms)", "")],
                "ms",
            ),
        ],
    ),
    (
        "Maintenance",
        [
            PanelSpec(
                "Maintenance runs: exit code",
                "table",
                "Exit code of each job's last run (actions: 0 done; reports: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN).",
                [Query("s10_maintenance_exit_code", "{{job}}")],
            ),
            PanelSpec(
                "Maintenance runs: duration",
                "timeseries",
                "How long each job's last run took.",
                [Query("s10_maintenance_duration_seconds", "{{job}}")],
                "s",
            ),
            PanelSpec(
                "Maintenance runs: time since last run",
                "table",
                "Seconds since each job last finished.",
                [Query("time() - s10_maintenance_last_run_timestamp_seconds", "{{job}}")],
                "s",
            ),
        ],
    ),
    (
        "CORS",
        [
            PanelSpec(
                "CORS check verdict",
                "stat",
                "The synthetic preflight check: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
                [Query("s10_cors_check_status", "{{url}} from {{origin}}")],
            ),
            PanelSpec(
                "Preflight cache per browser",
                "timeseries",
                "Seconds each browser really caches the preflight (Access-Control-Max-Age after its cap).",
                [Query("s10_cors_preflight_max_age_seconds", "{{browser}}")],
                "s",
            ),
        ],
    ),
]


def _panel(spec: PanelSpec) -> Any:  # the SDK's panel builders share no typed base with title()...
    from grafana_foundation_sdk.builders import prometheus, stat, table, timeseries
    from grafana_foundation_sdk.models.dashboard import DataSourceRef
    from grafana_foundation_sdk.models.prometheus import PromQueryFormat

    kinds: dict[str, Any] = {"timeseries": timeseries.Panel, "table": table.Panel, "stat": stat.Panel}
    builder = kinds[spec.kind]()
    panel = (
        builder.title(spec.title)
        .description(spec.description)
        .datasource(DataSourceRef(type_val="prometheus", uid=PROM_DS))
        .unit(spec.unit)
        .height(8)
        .span(12 if spec.kind != "stat" else 6)
    )
    for ref, q in zip("ABCDEFGH", spec.queries, strict=False):
        target = prometheus.Dataquery().ref_id(ref).expr(q.expr).legend_format(q.legend)
        if spec.kind == "table":
            target = target.instant().format(PromQueryFormat.TABLE)
        panel = panel.with_target(target)
    return panel


def build(env: str) -> dict[str, Any]:
    """The dashboard as Grafana's JSON model (a dict)."""
    from grafana_foundation_sdk.builders.dashboard import Dashboard, DatasourceVariable, Row
    from grafana_foundation_sdk.cog.encoder import JSONEncoder

    dash = (
        Dashboard(f"S10 database and CORS ({env})")
        .uid(f"s10-{env}")
        .tags(["s10", env])
        .refresh("1m")
        .time("now-6h", "now")
        .with_variable(DatasourceVariable("datasource").label("Prometheus").type("prometheus"))
    )
    for title, specs in ROWS:
        dash = dash.with_row(Row(title))
        for spec in specs:
            dash = dash.with_panel(_panel(spec))
    return json.loads(json.dumps(dash.build(), cls=JSONEncoder))


def render(env: str) -> str:
    return json.dumps(build(env), indent=2, sort_keys=True) + "\n"


def panel_queries(model: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, expr) of every query in a dashboard JSON model."""
    out = []
    for panel in model.get("panels", []):
        for target in panel.get("targets") or []:
            out.append((panel["title"], target["expr"]))
    return out
