"""Index usage: size, scans since the statistics reset, and the unused / redundant / invalid findings.

Unused: no scans, not unique, not a primary key, not backing a constraint; reported only when the
counters are older than ``min_stats_age`` (a week by default), since a young counter proves nothing.
Each replica keeps its own counters: an index unused here may serve queries on a replica.
Redundant: ops/redundancy.py's rules over sql/queries/index_shapes.sql; each finding names the index to keep.
Invalid: indisvalid = false, minus builds in progress. Nothing is ever dropped here: each finding
carries the command a person may run, and for an index a migration declares that is a drop
migration (the file ``ops advise --drop`` writes), never raw DDL that verify and the next deploy undo.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg

from ops.advise.files import declared, drop_fix
from ops.db import app_schemas
from ops.errors import CRITICAL, OK, WARNING
from ops.redundancy import find_redundant, shapes
from ops.sqlfiles import query

DEFAULT_MIN_STATS_AGE = 7 * 86400.0


def drop_command(qualified: str) -> str:
    return f"DROP INDEX CONCURRENTLY {qualified};"  # replaced by a drop migration for a declared index


def stats_age(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """When the counters started (stats_reset, or at least the server start) and how old they are."""
    row = conn.execute(query("stats_reset")).fetchone() or {}
    return dict(row)


def redundant(conn: psycopg.Connection[Any], schemas: list[str] | None = None) -> list[dict[str, Any]]:
    """One finding per redundant index (ops/redundancy.py's rules), naming the index to keep and why."""
    return [
        {
            "index": f.redundant.index,
            "schema": f.redundant.schema,
            "table": f.redundant.table,
            "bytes": f.redundant.bytes,
            "covered_by": f.keep.index,
            "keep": f.keep.index,
            "definition": f.redundant.definition,
            "covered_by_definition": f.keep.definition,
            "reason": f.reason,
            "fix": drop_command(f.redundant.qualified),
        }
        for f in find_redundant(shapes(conn, app_schemas(schemas)))
    ]


def migration_aware_fixes(found: list[dict[str, Any]], migrations_dir: Path | None = None) -> None:
    """An index a migration declares is never dropped by hand: its fix becomes a drop migration."""
    if not found:
        return
    decls, owner = declared(migrations_dir)
    for f in found:
        f.update(drop_fix(f["schema"], f["index"], decls, owner, migrations_dir))


def invalid(conn: psycopg.Connection[Any], schemas: list[str] | None = None) -> list[dict[str, Any]]:
    """INVALID indexes that no running build is making, with the way to repair each."""
    out = []
    for r in conn.execute(query("invalid_indexes"), {"schemas": app_schemas(schemas)}).fetchall():
        if r["reindex_leftover"]:
            reason = "leftover of an interrupted REINDEX CONCURRENTLY"
            fix = f"ops maintain reindex (drops it), or {drop_command(r['qualified'])}"
        else:
            reason = "INVALID: a failed or interrupted concurrent build; it still slows every write"
            if r["constraint_name"]:
                reason += f" (backs constraint {r['constraint_name']})"
            fix = f"REINDEX INDEX CONCURRENTLY {r['qualified']};  (or 'ops migrate apply' for a migrated index)"
        out.append(
            {
                "index": r["index"],
                "schema": r["schema"],
                "table": r["table"],
                "bytes": r["bytes"],
                "definition": r["definition"],
                "reason": reason,
                "fix": fix,
            }
        )
    return out


def unused(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "index": r["index"],
            "schema": r["schema"],
            "table": r["table"],
            "bytes": r["bytes"],
            "definition": r["definition"],
            "scans_by_node": r.get("scans_by_node", {}),
            "reason": (
                f"no scans on {len(r['scans_by_node'])} node(s) since their statistics resets"
                if len(r.get("scans_by_node", {})) > 1
                else "no scans since the statistics reset (on the primary only: pass --replica for each replica)"
            ),
            "fix": drop_command(r["qualified"]),
        }
        for r in rows
        if r["scans"] == 0 and r["is_valid"] and not r["is_unique"] and not r["is_primary"] and not r["constraint_name"]
    ]


def node_name(conn: psycopg.Connection[Any]) -> str:
    """host:port/dbname of a connection (never its password)."""
    info = conn.info
    return f"{info.host}:{info.port}/{info.dbname}"


def merge_scans(rows: list[dict[str, Any]], primary: str, replicas: dict[str, list[dict[str, Any]]]) -> None:
    """Add each replica's scan counts to the primary's rows: ``scans`` becomes the cluster total and
    ``scans_by_node`` shows where they happened (each replica keeps its own counters)."""
    for row in rows:
        row["scans_by_node"] = {primary: row["scans"]}
    by_name = {r["qualified"]: r for r in rows}
    for node, replica_rows in replicas.items():
        for r in replica_rows:
            match = by_name.get(r["qualified"])
            if match is not None:
                match["scans_by_node"][node] = r["scans"]
                match["scans"] += r["scans"]
                match["tuples_read"] += r["tuples_read"]


def findings(
    conn: psycopg.Connection[Any],
    min_stats_age: float = DEFAULT_MIN_STATS_AGE,
    replicas: list[psycopg.Connection[Any]] | None = None,
    schemas: list[str] | None = None,
    migrations_dir: Path | None = None,
) -> dict[str, Any]:
    """The whole usage report: ``indexes``, ``unused``, ``redundant``, ``invalid``, ``stats``, ``nodes``, ``status``.

    With ``replicas``, scans are counted across the cluster before an index is called unused, and
    the judgement waits until every node's counters are old enough. Only the app's ``schemas``.
    """
    scope = {"schemas": app_schemas(schemas)}
    stats = stats_age(conn)
    rows = [dict(r) for r in conn.execute(query("index_usage"), scope).fetchall()]
    primary = node_name(conn)
    nodes = [{"node": primary, "role": "primary", **stats}]
    replica_rows: dict[str, list[dict[str, Any]]] = {}
    for rep_conn in replicas or []:
        name = node_name(rep_conn)
        nodes.append({"node": name, "role": "replica", **stats_age(rep_conn)})
        replica_rows[name] = [dict(r) for r in rep_conn.execute(query("index_usage"), scope).fetchall()]
    merge_scans(rows, primary, replica_rows)
    youngest = min((n.get("age_s") or 0) for n in nodes)
    meaningful = youngest >= min_stats_age
    stats["min_age_s"] = min_stats_age
    stats["unused_meaningful"] = meaningful
    stats["youngest_node_age_s"] = youngest
    report: dict[str, Any] = {
        "stats": stats,
        "nodes": nodes,
        "indexes": rows,
        "unused": unused(rows) if meaningful else [],
        "redundant": redundant(conn, schemas),
        "invalid": invalid(conn, schemas),
    }
    migration_aware_fixes(report["redundant"] + report["unused"], migrations_dir)
    report["status"] = CRITICAL if report["invalid"] else WARNING if report["unused"] or report["redundant"] else OK
    report["summary"] = summary_line(report)
    return report


def summary_line(report: dict[str, Any]) -> str:
    """check_postgres style: 'WARNING: 3 redundant, 0 unused, 0 invalid | redundant=3;...'."""
    n = {k: len(report[k]) for k in ("invalid", "redundant", "unused")}
    label = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL"}[report["status"]]
    wasted = sum(
        {f"{f['schema']}.{f['index']}": f["bytes"] for k in ("redundant", "unused") for f in report[k]}.values()
    )
    text = f"{n['invalid']} invalid, {n['redundant']} redundant, {n['unused']} unused index(es)"
    if not report["stats"]["unused_meaningful"]:
        text += " (unused not judged: statistics younger than the minimum age)"
    perf = f"invalid={n['invalid']} redundant={n['redundant']} unused={n['unused']} wasted_bytes={wasted}B"
    return f"{label}: {text} | {perf}"
