"""ops maintain analyze: ANALYZE only the tables whose statistics are stale, one at a time.

Stale: never analyzed, or more rows modified since the last (auto)analyze than
``min_rows + fraction x rows`` (the rule autovacuum uses, with our own settings). Each ANALYZE runs
with lock_timeout and statement_timeout; a table that fails is reported and the run carries on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from ops.db import (
    MAINTENANCE_ROLE,
    advisory_lock,
    app_schemas,
    connect,
    first_line,
    require_owner,
    require_primary,
    set_timeouts,
)
from ops.errors import OK, WARNING
from ops.maintain import LOCK_NAME
from ops.sqlfiles import query

Log = Callable[[str], None]


@dataclass
class AnalyzeOptions:
    fraction: float = 0.1
    min_rows: int = 50
    lock_timeout: float = 3.0
    statement_timeout: float = 600.0
    dry_run: bool = False
    lock_wait: float = 60.0
    schemas: list[str] | None = None  # the app's (ops.db.app_schemas)


def stale(
    conn: psycopg.Connection[Any], fraction: float = 0.1, min_rows: int = 50, schemas: list[str] | None = None
) -> list[dict[str, Any]]:
    params = {"fraction": fraction, "min_rows": min_rows, "schemas": app_schemas(schemas)}
    rows = conn.execute(query("stale_statistics"), params).fetchall()
    return [dict(r) for r in rows]


def findings(
    conn: psycopg.Connection[Any], fraction: float = 0.1, min_rows: int = 50, schemas: list[str] | None = None
) -> dict[str, Any]:
    """Tables with stale statistics, each with the command that refreshes it."""
    tables = [
        {
            "table": r["table"],
            "schema": r["schema"],
            "rows_estimate": r["rows_estimate"],
            "modified_since_analyze": r["modified_since_analyze"],
            "last_analyzed": r["last_analyzed"],
            "reason": r["reason"],
            "fix": f"ANALYZE {r['qualified']};  (or: ops maintain analyze)",
        }
        for r in stale(conn, fraction, min_rows, schemas)
    ]
    status = WARNING if tables else OK
    label = "WARNING" if tables else "OK"
    return {
        "stale": tables,
        "status": status,
        "summary": f"{label}: {len(tables)} table(s) with stale statistics | stale={len(tables)}",
    }


def run(dsn: str | None, opts: AnalyzeOptions, log: Log) -> dict[str, Any]:
    """ANALYZE each stale table; returns ``analyzed``, ``failed`` (with the error), ``fresh`` count."""
    started = time.monotonic()
    conn = connect(dsn, grant_role=MAINTENANCE_ROLE)
    try:
        require_primary(conn, "ops maintain analyze")
        with advisory_lock(conn, LOCK_NAME, opts.lock_wait):
            todo = stale(conn, opts.fraction, opts.min_rows, opts.schemas)
            # ANALYZE of a table we may not analyze only warns and skips it: refuse up front instead
            tables = [(t["schema"], t["table"]) for t in todo]
            require_owner(conn, tables, "ops maintain analyze", MAINTENANCE_ROLE, right="may_analyze")
            total = conn.execute(
                "SELECT count(*) AS n FROM pg_stat_user_tables WHERE schemaname = ANY (%s::text[])",
                (app_schemas(opts.schemas),),
            ).fetchone()["n"]  # type: ignore[index]
            summary: dict[str, Any] = {
                "dry_run": opts.dry_run,
                "analyzed": [],
                "failed": [],
                "fresh": total - len(todo),
                "thresholds": {"fraction": opts.fraction, "min_rows": opts.min_rows},
            }
            for t in todo:
                entry = {"table": t["table"], "schema": t["schema"], "reason": t["reason"]}
                if opts.dry_run:
                    log(f"would analyze {t['qualified']} ({t['reason']})")
                    summary["analyzed"].append(entry)
                    continue
                t0 = time.monotonic()
                try:
                    set_timeouts(conn, lock_timeout=opts.lock_timeout, statement_timeout=opts.statement_timeout)
                    conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(t["schema"], t["table"])))
                except psycopg.Error as exc:
                    entry["error"] = first_line(exc)
                    summary["failed"].append(entry)
                    log(f"FAILED  {t['qualified']}: {entry['error']}")
                    continue
                finally:
                    set_timeouts(conn, lock_timeout=0)
                entry["seconds"] = round(time.monotonic() - t0, 3)
                summary["analyzed"].append(entry)
                log(f"analyzed {t['qualified']} in {entry['seconds']:.2f}s ({t['reason']})")
    finally:
        conn.close()
    summary["seconds"] = round(time.monotonic() - started, 3)
    return summary
