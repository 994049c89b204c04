"""Btree bloat: a cheap estimate for every index, then pgstatindex() for the candidates.

The estimate (sql/queries/bloat_estimate.sql) reads only the catalog and pg_stats, so it runs
over hundreds of indexes in one query; it is rough (it needs a recent ANALYZE). ``pgstatindex``
(extension pgstattuple, sql/queries/bloat_exact.sql) reads the whole index and is exact: it
confirms the candidates whose estimate comes within ``CANDIDATE_MARGIN`` points of the threshold.
When pgstattuple is not installed, the estimate is what we have, and the report says so.

Deduplicated btrees (PostgreSQL 13+, equal keys merged into posting lists) are the exception:
pgstatindex's ``avg_leaf_density`` counts the bytes the leaf tuples use now, and a bloated
deduplicated index holds many duplicates as separate plain tuples (VACUUM shrinks posting lists,
and new duplicates stay plain until the page would split), while a fresh build merges them into
compact posting lists (6 bytes per row instead of a whole tuple). So "density / fillfactor"
predicts a fresh build too large and under-reports the bloat. The estimate models the posting
lists from pg_stats, and is what decides for those indexes; both figures are shown when they
disagree (``exact_pct`` and ``estimate_pct``, ``decided_by``).
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from ops.db import app_schemas, privilege_fix
from ops.errors import CRITICAL, OK, WARNING
from ops.maintain.units import human_bytes
from ops.sqlfiles import query

CANDIDATE_MARGIN = 20.0  # percentage points below the threshold an estimate may be and still be measured
DISAGREE_POINTS = 2.0  # estimate and pgstatindex further apart than this are both shown


def pgstattuple(conn: psycopg.Connection[Any]) -> tuple[str | None, str | None]:
    """(schema of an installed pgstattuple we may call, else None; why not, else None)."""
    ext = conn.execute(query("extension_state"), {"name": "pgstattuple"}).fetchone() or {}
    schema = ext.get("schema")
    if not schema:
        return None, (
            "pgstattuple is not installed in this database (CREATE EXTENSION pgstattuple): "
            "bloat figures are estimates from the statistics only"
        )
    args = {"schema": schema, "function": "pgstatindex(regclass)"}
    row = conn.execute(query("function_privilege"), args).fetchone()
    if not (row and row["may_execute"]):
        fn = f"{sql.Identifier(schema).as_string(None)}.pgstatindex(regclass)"
        return None, (
            f"pgstattuple is installed (schema {schema}) but this role may not execute {fn}: "
            f"{privilege_fix(f'permission denied for function {fn}', conn.info.user, 's10_monitoring')}; "
            "bloat figures are estimates from the statistics only"
        )
    return schema, None


def pgstattuple_schema(conn: psycopg.Connection[Any]) -> str | None:
    """The schema of an installed, callable pgstattuple, or None."""
    return pgstattuple(conn)[0]


def estimate(conn: psycopg.Connection[Any], schemas: list[str] | None = None) -> list[dict[str, Any]]:
    """Every btree index of the app's schemas with its estimated ``bloat_pct`` and ``bloat_bytes``
    (None without statistics)."""
    rows = []
    for r in conn.execute(query("bloat_estimate"), {"schemas": app_schemas(schemas)}).fetchall():
        row = dict(r)
        row["estimate_pct"] = float(r["bloat_pct"]) if r["bloat_pct"] is not None else None
        row["estimate_bytes"] = r["bloat_bytes"]
        rows.append(row)
    return rows


def exact(conn: psycopg.Connection[Any], schema: str, index: str) -> dict[str, Any]:
    """pgstatindex() of one index: leaf density, and bloat against a fresh build."""
    stmt = sql.SQL(query("bloat_exact")).format(schema=sql.Identifier(schema))  # type: ignore[arg-type]
    row = dict(conn.execute(stmt, {"index": index}).fetchone() or {})
    size, expected = row.get("bytes") or 0, row.get("expected_bytes") or 0
    row["bloat_bytes"] = max(0, size - expected)
    row["bloat_pct"] = round(100.0 * row["bloat_bytes"] / size, 1) if size else 0.0
    if row.get("avg_leaf_density") is not None:
        row["avg_leaf_density"] = float(row["avg_leaf_density"])
    return row


def measure(
    conn: psycopg.Connection[Any],
    *,
    threshold: float,
    min_size: int,
    use_exact: bool = True,
    schemas: list[str] | None = None,
) -> dict[str, Any]:
    """Estimate every btree index; confirm with pgstatindex those that may be over ``threshold``.

    Each index gets ``bloat_pct``/``bloat_bytes`` and ``measured_by`` ('pgstatindex' or
    'estimate', None when neither could say). Returns ``{"indexes", "exact_available", "notes"}``.
    """
    schema, why_not = pgstattuple(conn) if use_exact else (None, None)
    notes = [why_not] if why_not else []
    indexes = estimate(conn, schemas)
    for ix in indexes:
        est = ix["estimate_pct"]
        ix["bloat_pct"], ix["bloat_bytes"] = est, ix["estimate_bytes"]
        ix["measured_by"] = "estimate" if est is not None else None
        candidate = ix["bytes"] >= min_size and ix["is_valid"] and (est is None or est >= threshold - CANDIDATE_MARGIN)
        if schema and candidate:
            decide(ix, exact(conn, schema, ix["qualified"]))
    if any(ix["measured_by"] is None for ix in indexes if ix["bytes"] >= min_size):
        notes.append("some indexes have no statistics yet (never analyzed): run ANALYZE ('ops maintain analyze')")
    return {"indexes": indexes, "exact_available": schema is not None, "notes": notes}


def decide(ix: dict[str, Any], ex: dict[str, Any]) -> None:
    """Take pgstatindex's figure, except for a deduplicated btree with an estimate (see the module doc)."""
    est = ix["estimate_pct"]
    ix.update(exact_pct=ex["bloat_pct"], avg_leaf_density=ex["avg_leaf_density"], bytes=ex["bytes"])
    ix["disagree"] = est is not None and abs(est - ex["bloat_pct"]) > DISAGREE_POINTS
    if ix.get("deduplicated") and est is not None:
        ix.update(measured_by="estimate", decided_by="estimate: deduplicated btree, pgstatindex under-reports it")
        ix["bloat_bytes"] = int(ex["bytes"] * est / 100)
        return
    ix.update(bloat_pct=ex["bloat_pct"], bloat_bytes=ex["bloat_bytes"], measured_by="pgstatindex")
    ix["decided_by"] = "pgstatindex"


def figures(ix: dict[str, Any]) -> str:
    """'62% (estimate; pgstatindex says 54%)' where the two disagree, else '62% (estimate)'."""
    text = f"{ix['bloat_pct']:.0f}% ({ix['measured_by']}"
    if ix.get("disagree"):
        other = ix["exact_pct"] if ix["measured_by"] == "estimate" else ix["estimate_pct"]
        text += f"; {'pgstatindex' if ix['measured_by'] == 'estimate' else 'estimate'} says {other:.0f}%"
        if ix.get("deduplicated") and ix["measured_by"] == "estimate":
            text += ", which under-counts a deduplicated btree"
    return text + ")"


def findings(
    conn: psycopg.Connection[Any],
    *,
    warning: float = 40.0,
    critical: float = 60.0,
    min_size: int = 1024 * 1024,
    use_exact: bool = False,
    schemas: list[str] | None = None,
) -> dict[str, Any]:
    """The bloat report: every btree index, the ``bloated`` ones (at or over ``warning`` percent and
    ``min_size`` bytes) with the command that fixes each, ``status`` and a one-line ``summary``."""
    m = measure(conn, threshold=warning, min_size=min_size, use_exact=use_exact, schemas=schemas)
    bloated = []
    for ix in m["indexes"]:
        pct = ix["bloat_pct"]
        if pct is None or ix["bytes"] < min_size or pct < warning:
            continue
        bloated.append(
            {
                "index": ix["index"],
                "schema": ix["schema"],
                "table": ix["table"],
                "bytes": ix["bytes"],
                "bloat_pct": pct,
                "bloat_bytes": ix["bloat_bytes"],
                "measured_by": ix["measured_by"],
                "estimate_pct": ix.get("estimate_pct"),
                "exact_pct": ix.get("exact_pct"),
                "decided_by": ix.get("decided_by", ix["measured_by"]),
                "severity": "critical" if pct >= critical else "warning",
                "reason": f"{figures(ix)} bloat, {human_bytes(ix['bloat_bytes'])} over a fresh build",
                "fix": f"REINDEX INDEX CONCURRENTLY {ix['qualified']};  (or: ops maintain reindex --min-bloat {warning:g})",
            }
        )
    bloated.sort(key=lambda f: -(f["bloat_bytes"] or 0))
    status = CRITICAL if any(f["severity"] == "critical" for f in bloated) else WARNING if bloated else OK
    report = {
        "indexes": m["indexes"],
        "bloated": bloated,
        "exact_available": m["exact_available"],
        "exact_requested": use_exact,
        "notes": m["notes"],
        "thresholds": {"warning_pct": warning, "critical_pct": critical, "min_size_bytes": min_size},
        "status": status,
    }
    report["summary"] = summary_line(report)
    return report


def summary_line(report: dict[str, Any]) -> str:
    label = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL"}[report["status"]]
    total = sum(f["bloat_bytes"] or 0 for f in report["bloated"])
    worst = max((f["bloat_pct"] for f in report["bloated"]), default=0.0)
    n = len(report["bloated"])
    head = f"{n} bloated index(es), {human_bytes(total)} reclaimable" if n else "no bloated index"
    t = report["thresholds"]
    perf = f"bloated={n};;; reclaimable_bytes={total}B worst_pct={worst}%;{t['warning_pct']:g};{t['critical_pct']:g}"
    return f"{label}: {head} | {perf}"
