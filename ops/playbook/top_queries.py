"""``ops playbook top-queries``: which statements cost the database the most time, and what to run next.

Reads pg_stat_statements (sql/queries/top_queries.sql): calls, total and mean time, share of all
time. Each statement comes with the ``ops playbook slow-query`` command to diagnose it (its
constants are ``$n`` placeholders there: replace each ``VALUE_n`` with a real value for ``$n``). When the
extension is not loaded or not installed, the report says which and how to fix it (UNKNOWN).
"""

from __future__ import annotations

import re
import shlex
from typing import Any

import pglast
import psycopg
from psycopg import errors, sql

from ops.db import connect, first_line
from ops.errors import UNKNOWN, WARNING
from ops.playbook.report import Report
from ops.playbook.sqlshape import EXPLAINABLE
from ops.sqlfiles import query

PRELOAD_FIX = (
    "in postgresql.conf: shared_preload_libraries = 'pg_stat_statements', restart PostgreSQL, then "
    "CREATE EXTENSION pg_stat_statements;"
)


def next_command(sql_text: str) -> str | None:
    """The slow-query command for a normalized statement, or None when EXPLAIN cannot take it."""
    try:
        [raw] = pglast.parse_sql(sql_text)
    except (pglast.parser.ParseError, ValueError):
        return None
    if not isinstance(raw.stmt, EXPLAINABLE):
        return None
    params = max((int(n) for n in re.findall(r"\$(\d+)", sql_text)), default=0)
    args = " ".join(f"--params VALUE_{n}" for n in range(1, params + 1))
    text = sql_text.strip() if "--" in sql_text else " ".join(sql_text.split())  # a -- comment ends at its newline
    return f"ops playbook slow-query {shlex.quote(text)}" + (f" {args}" if args else "")


def top_queries(dsn: str | None, *, limit: int = 10, slow_ms: float = 100.0) -> Report:
    report = Report(ok_summary="")
    with connect(dsn) as conn:
        state = conn.execute(query("extension_state"), {"name": "pg_stat_statements"}).fetchone() or {}
        if not state.get("installed_version"):
            preload = "" if state.get("preloaded") else " and its library is not preloaded"
            report.add(
                UNKNOWN,
                "pg_stat_statements",
                f"pg_stat_statements is not installed in this database{preload}: no statement statistics to read",
                "CREATE EXTENSION pg_stat_statements;" if state.get("preloaded") else PRELOAD_FIX,
            )
            return report
        try:
            # the view lives in the extension's schema, whatever the search_path
            stmt = sql.SQL(query("top_queries")).format(schema=sql.Identifier(state["schema"]))  # type: ignore[arg-type]
            rows = conn.execute(stmt, {"limit": limit}).fetchall()
        except errors.ObjectNotInPrerequisiteState as exc:
            report.add(
                UNKNOWN, "pg_stat_statements", f"pg_stat_statements is not loaded: {first_line(exc)}", PRELOAD_FIX
            )
            return report
        except psycopg.Error as exc:
            report.add(UNKNOWN, "pg_stat_statements", f"cannot read pg_stat_statements: {first_line(exc)}")
            return report
    statements: list[dict[str, Any]] = []
    for rank, row in enumerate(rows, 1):
        row = {**row, "rank": rank, "next": next_command(row["query"])}
        statements.append(row)
        if row["mean_ms"] >= slow_ms:
            report.add(
                WARNING,
                "slow-statement",
                f"#{rank} takes {row['mean_ms']:,.1f} ms on average over {row['calls']:,} call(s), above "
                f"--slow-ms {slow_ms:g}: {' '.join(row['query'].split())[:60]}",
                row["next"] or "not a statement EXPLAIN can take: look at it by hand",
            )
    since = rows[0]["since"] if rows else None
    report.details.update({"statements": statements, "since": since, "slow_ms": slow_ms})
    report.ok_summary = (
        f"{len(rows)} heaviest statement(s) listed, none slower than {slow_ms:g} ms on average"
        if rows
        else "pg_stat_statements has no statements for this database yet"
    )
    return report


def render(report: Report) -> list[str]:
    """The table of statements, each with the command to run next."""
    d = report.details
    lines: list[str] = []
    if "statements" not in d:
        return lines
    if d.get("since"):
        lines.append(f"statistics since {d['since']:%Y-%m-%d %H:%M:%S %Z} (pg_stat_statements_reset() starts over)")
    for s in d["statements"]:
        lines.append(
            f"#{s['rank']}  calls {s['calls']:,}  total {s['total_ms']:,.1f} ms  mean {s['mean_ms']:,.2f} ms  "
            f"max {s['max_ms']:,.2f} ms  {s['share_of_total'] or 0:.1f}% of time  rows {s['rows']:,}"
        )
        lines.append(f"    {' '.join(s['query'].split())[:300]}")
        lines.append(f"    next: {s['next'] or '(not a statement EXPLAIN can take)'}")
    if report.findings:
        lines.append("findings:")
    return lines
