"""``ops playbook top-queries``: which statements cost the database the most time, and what to run next.

Reads pg_stat_statements (sql/queries/top_queries.sql): calls, total and mean time, share of all
time. Each statement comes with the ``ops playbook slow-query`` command to diagnose it (its
constants are ``$n`` placeholders there: replace each ``VALUE_n`` with a real value for ``$n``). When the
extension is not loaded or not installed, or this role may not read other sessions' statements, the report
says which and how to fix it (UNKNOWN). The extension is found in its own schema (pg_extension), and the
tool's own statements are left out (see ``is_own``).
"""

from __future__ import annotations

import contextlib
import functools
import re
import shlex
from pathlib import Path
from typing import Any

import pglast
import psycopg
from pglast import ast
from psycopg import errors, sql

from ops import SQL_DIR
from ops.db import connect, first_line
from ops.errors import UNKNOWN, WARNING
from ops.playbook.report import Report
from ops.playbook.sqlshape import EXPLAINABLE
from ops.safety import DIAGNOSIS_ROLE
from ops.safety import PROBE as PROBE_NAME
from ops.sqlfiles import query

STATEMENT_START = re.compile(
    r"\s*(SELECT|WITH|SET|SHOW|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|ANALYZE|REINDEX|VACUUM)\b", re.I
)
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
            preload = {False: " and its library is not preloaded", None: ""}.get(state.get("preloaded"), "")
            report.add(
                UNKNOWN,
                "pg_stat_statements",
                f"pg_stat_statements is not installed in this database{preload}: no statement statistics to read",
                PRELOAD_FIX if state.get("preloaded") is False else "CREATE EXTENSION pg_stat_statements;",
            )
            return report
        access = conn.execute(query("stats_access")).fetchone() or {}
        if not access.get("read_all_stats"):
            report.add(
                UNKNOWN,
                "privilege",
                f"role {conn.info.parameter_status('session_authorization') or 'this login'} may read only its own "
                "statements in pg_stat_statements: it needs the privileges of pg_read_all_stats",
                "GRANT s10_monitoring TO <this login>;   (ops roles apply creates it; or GRANT pg_read_all_stats)",
            )
            return report
        try:
            rows = heaviest(conn, state["schema"], limit)
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


def heaviest(conn: psycopg.Connection[Any], schema: str, limit: int) -> list[dict[str, Any]]:
    """The ``limit`` heaviest statements that are not the tool's own; asks for more rows until it has them."""
    stmt = sql.SQL(query("top_queries")).format(schema=sql.Identifier(schema))  # type: ignore[arg-type]
    ask = limit + 20
    while True:
        rows = conn.execute(stmt, {"limit": ask}).fetchall()
        theirs = [r for r in rows if not is_own(r["query"], schema)]
        if len(theirs) >= limit or len(rows) < ask:
            return theirs[:limit]
        ask *= 4


# --------------------------------------------------------------------------------------- the tool's own statements
#
# pg_stat_statements keeps no application name, and what it keeps does not single out our statements
# (measured on PostgreSQL 15): the text stored for a queryid is the first one seen, comments included, so a
# marker comment is lost when the same statement ran first without it; and the queryid of one of our
# statements changes with the type psycopg gives a parameter's value (LIMIT 10 is int2, LIMIT 100000 int4:
# two queryids). What is stable is the statement's shape: pglast's fingerprint ignores comments, constants
# and parameter numbers, and matches every queryid of one statement. So the tool's own statements are those
# whose fingerprint is that of a statement the tool sends: every statement in sql/, every SQL string in the
# ops package's source, the statements the diagnosis composes (ops.safety's probe and SET LOCAL ROLE), and
# the queries the deployed postgres_exporter runs (generated from sql/queries/ by ops.monitor.exporter).
# Transaction control (BEGIN, COMMIT, ROLLBACK...) is shared with the application and stays listed.


def is_own(text: str, pgss_schema: str = "public") -> bool:
    """Whether pg_stat_statements' text is one of the tool's own statements (see above)."""
    try:
        fingerprint = pglast.fingerprint(text)
    except (pglast.parser.ParseError, ValueError):
        return False
    if fingerprint in own_fingerprints() or fingerprint in exporter_fingerprints(pgss_schema):
        return True
    return PROBE_NAME in text and bool(re.search(rf"\bpg_temp\.\"?{PROBE_NAME}\b", text))


@functools.cache
def own_fingerprints() -> frozenset[str]:
    """Fingerprints of every statement the tool sends (as psycopg sends them: %(name)s and %s become $n)."""
    texts = [path.read_text().replace("{schema}", "public") for path in sorted(SQL_DIR.rglob("*.sql"))]
    texts += python_sql_strings()
    texts.append(f"SET LOCAL ROLE {DIAGNOSIS_ROLE}")
    found: set[str] = set()
    for text in texts:
        text = re.sub(r"%\(\w+\)s|%s", "$1", text).replace("%%", "%")
        with contextlib.suppress(pglast.parser.ParseError, ValueError):
            for statement in pglast.split(text):
                [raw] = pglast.parse_sql(statement)
                if not isinstance(raw.stmt, ast.TransactionStmt):
                    found.add(pglast.fingerprint(statement))
    return frozenset(found)


@functools.cache
def exporter_fingerprints(pgss_schema: str) -> frozenset[str]:
    """Fingerprints of the queries the deployed postgres_exporter runs (ops.monitor.exporter, from sql/queries/).

    Their parameters are literals, which fingerprints ignore; the extension's schema is part of them.
    """
    from ops.monitor.exporter import exporter_queries, query_sql
    from ops.monitor.settings import MonitorSettings

    settings = MonitorSettings(pgss_schema=pgss_schema)
    found = set()
    for q in exporter_queries(settings):
        with contextlib.suppress(pglast.parser.ParseError, ValueError, KeyError):
            found.add(pglast.fingerprint(query_sql(q, settings)))
    return frozenset(found)


def python_sql_strings() -> list[str]:
    """String constants in the ops package's source that PostgreSQL's parser takes as statements."""
    import ast as pyast

    package = Path(__file__).resolve().parent.parent
    out = []
    for path in sorted(package.rglob("*.py")):
        if path.relative_to(package).parts[0] == "local":
            continue  # the embedded demo stack plays the app (its workload is the app's queries), not the tool
        for node in pyast.walk(pyast.parse(path.read_text())):
            if isinstance(node, pyast.Constant) and isinstance(node.value, str) and STATEMENT_START.match(node.value):
                out.append(node.value)
    return out


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
