"""postgres_exporter's custom queries, generated from the named files in sql/queries/.

Each exported figure is one of the queries the CLI runs (one definition of each figure): the file's
text, its ``%(name)s`` parameters filled with literals from the environment's settings, wrapped in
``SELECT <columns> FROM (<file>) AS q`` to pick the columns postgres_exporter turns into labels and
values. pg_stat_statements is qualified with the schema it is installed in (``monitor_pgss_schema``):
the exporter's connection must not depend on search_path. postgres_exporter 0.11 reads::

    <name>:
      query: "SELECT ..."
      metrics:
        - <column>: {usage: LABEL|GAUGE|COUNTER, description: "..."}

and names each metric ``<name>_<column>``.

Labels stay bounded: one series per index, per stale table, and per statement of the top N by total
time, labelled by ``queryid`` and its command word only, never by the statement's text (find the
text with ``ops playbook top-queries`` or in pg_stat_statements by queryid).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pglast
from pglast import ast
from pglast.stream import RawStream
from pglast.visitors import Visitor
from psycopg import sql

from ops.monitor.settings import MonitorSettings
from ops.sqlfiles import query

EXTENSION_RELATIONS = {"pg_stat_statements", "pg_stat_statements_info"}
_PARAM = re.compile(r"%\((\w+)\)s")
_SCHEMA = re.compile(r"\{schema\}")  # an extension's schema, as sql/queries/bloat_exact.sql writes it


@dataclass(frozen=True)
class Metric:
    column: str
    usage: str  # LABEL, GAUGE or COUNTER
    description: str
    expression: str | None = None  # SQL over the file's columns (alias q); None: the column itself


@dataclass(frozen=True)
class ExporterQuery:
    name: str  # metric prefix
    sql_file: str  # sql/queries/<sql_file>.sql
    metrics: list[Metric]
    params: dict[str, Any] = field(default_factory=dict)


def _label(column: str, description: str, expression: str | None = None) -> Metric:
    return Metric(column, "LABEL", description, expression)


INDEX_LABELS = [
    _label("schema", "Schema of the table"),
    _label("table", "Table"),
    _label("index", "Index"),
]


def exporter_queries(s: MonitorSettings) -> list[ExporterQuery]:
    """The figures postgres_exporter exports, each from its named query file."""
    return [
        ExporterQuery(
            "pg_s10_index",
            "index_usage",
            [
                *INDEX_LABELS,
                _label(
                    "droppable",
                    "false for unique, primary-key and constraint-backing indexes (never called unused)",
                    "CASE WHEN q.is_unique OR q.is_primary OR q.constraint_name IS NOT NULL "
                    "THEN 'false' ELSE 'true' END",
                ),
                Metric("scans", "COUNTER", "Index scans since the statistics reset (this node only)"),
                Metric("bytes", "GAUGE", "Size of the index in bytes"),
            ],
            params={"schemas": [s.app_schema]},
        ),
        ExporterQuery(
            "pg_s10_invalid_index",
            "invalid_indexes",
            [*INDEX_LABELS, Metric("bytes", "GAUGE", "Size of an INVALID index (no build in progress)")],
            params={"schemas": [s.app_schema]},
        ),
        ExporterQuery(
            "pg_s10_stats",
            "stats_reset",
            [Metric("age_s", "GAUGE", "Seconds the statistics counters have been counting")],
        ),
        ExporterQuery(
            "pg_s10_stale_table",
            "stale_statistics",
            [
                _label("schema", "Schema"),
                _label("table", "Table"),
                Metric("modified_since_analyze", "GAUGE", "Rows changed since the last (auto)analyze"),
                Metric("rows_estimate", "GAUGE", "Rows in the table (planner estimate)"),
            ],
            params={"min_rows": s.stale_min_rows, "fraction": s.stale_fraction, "schemas": [s.app_schema]},
        ),
        ExporterQuery(
            "pg_s10_statement",
            "top_queries",
            [
                _label("queryid", "pg_stat_statements queryid", "q.queryid::text"),
                _label(
                    "command",
                    "The statement's first word (SELECT, UPDATE...), never its text",
                    "coalesce(upper(substring(q.query from '^\\s*([A-Za-z]+)')), 'OTHER')",
                ),
                Metric("calls", "COUNTER", "Times executed"),
                Metric("total_ms", "COUNTER", "Total execution time in milliseconds"),
                Metric("mean_ms", "GAUGE", "Mean execution time in milliseconds (since the counters' reset)"),
                Metric("max_ms", "GAUGE", "Longest execution in milliseconds (since the counters' reset)"),
            ],
            params={"limit": s.top_statements},
        ),
    ]


def _fill_params(text: str, params: dict[str, Any], where: str) -> str:
    """Replace ``%(name)s`` with SQL literals (psycopg quoting): the exporter sends plain SQL."""

    def literal(m: re.Match[str]) -> str:
        if m.group(1) not in params:
            raise KeyError(f"sql/queries/{where}.sql needs parameter {m.group(1)!r}")
        return sql.Literal(params[m.group(1)]).as_string(None)

    return _PARAM.sub(literal, text).replace("%%", "%")


def fill_schema(text: str, schema: str) -> str:
    """``{schema}`` (an extension's schema placeholder in a named file) as a quoted identifier."""
    return _SCHEMA.sub(lambda _: _ident(schema), text)


class _QualifyExtension(Visitor):
    """Give every unqualified pg_stat_statements relation the extension's schema."""

    def __init__(self, schema: str):
        self.schema = schema

    def visit_RangeVar(self, ancestors: Any, node: ast.RangeVar) -> None:  # noqa: N802 (pglast's name)
        if node.schemaname is None and node.relname in EXTENSION_RELATIONS:
            node.schemaname = self.schema


def query_sql(q: ExporterQuery, s: MonitorSettings) -> str:
    """The one SELECT postgres_exporter runs for ``q``: the named file, parameters filled, qualified."""
    inner = _fill_params(fill_schema(query(q.sql_file), s.pgss_schema), q.params, q.sql_file)
    tree = pglast.parse_sql(inner)
    if len(tree) != 1:
        raise ValueError(f"sql/queries/{q.sql_file}.sql must hold exactly one statement")
    _QualifyExtension(s.pgss_schema)(tree)
    inner_sql = RawStream()(tree)
    columns = ", ".join(f"{m.expression or 'q.' + _ident(m.column)} AS {_ident(m.column)}" for m in q.metrics)
    # prettify also proves the generated query parses, before any host sees it
    return pglast.prettify(f"SELECT {columns} FROM ({inner_sql}) AS q")


def _ident(name: str) -> str:
    return sql.Identifier(name).as_string(None)


def render(s: MonitorSettings) -> str:
    """The YAML file given to postgres_exporter with ``--extend.query-path``."""
    doc = {
        q.name: {
            "query": query_sql(q, s),
            "master": True,  # run on the database of DATA_SOURCE_NAME only
            "metrics": [{m.column: {"usage": m.usage, "description": m.description}} for m in q.metrics],
        }
        for q in exporter_queries(s)
    }
    header = (
        "# postgres_exporter custom queries (--extend.query-path), generated by `ops render` from sql/queries/.\n"
        "# Do not edit: change the named query file or ops/monitor/exporter.py.\n"
    )
    return header + dump_yaml(doc)


def dump_yaml(doc: Any) -> str:
    """YAML for people to review: keys in their order, multi-line strings as blocks."""
    import yaml

    return yaml.dump(doc, Dumper=_dumper(), sort_keys=False, width=1000)


def _block_str(dumper: Any, value: str) -> Any:
    style = "|" if "\n" in value else None  # queries as readable blocks
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def _dumper() -> Any:
    import yaml

    class BlockDumper(yaml.SafeDumper):
        pass

    BlockDumper.add_representer(str, _block_str)
    return BlockDumper
