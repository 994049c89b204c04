"""ops maintain reindex: REINDEX INDEX CONCURRENTLY only where it pays, largest gain first.

Guard clauses first: a replica is refused; the ``maintain`` advisory lock is taken so two runs
never overlap; leftovers of interrupted runs (INVALID ``*_ccnew*`` / ``*_ccold*``) are dropped
first, never one a running build is still making. Then each index whose measured bloat and size
reach the thresholds is rebuilt through ``ops.online.run_online`` (lock_timeout, retries with
backoff, blockers named, progress on a terminal), unless the disk cannot hold a second copy of
it or the time budget is spent. Bytes before and after are reported per index.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from ops.db import (
    MAINTENANCE_ROLE,
    advisory_lock,
    app_schemas,
    concurrent_build_warning,
    connect,
    first_line,
    require_owner,
    require_primary,
)
from ops.errors import OpsError
from ops.maintain import LOCK_NAME, bloat
from ops.maintain.units import human_bytes
from ops.online import RetryPolicy, drop_index_concurrently, run_online
from ops.sqlfiles import query

Log = Callable[[str], None]


@dataclass
class ReindexOptions:
    min_bloat: float = 40.0  # percent over a fresh build
    min_size: int = 1024 * 1024  # bytes
    max_duration: float | None = None  # seconds; no new rebuild starts after it
    min_free: int = 0  # bytes that must stay free on the disk after the second copy
    dry_run: bool = False
    use_exact: bool = True
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    lock_wait: float = 60.0
    schemas: list[str] | None = None  # the app's (ops.db.app_schemas): nothing elsewhere is rebuilt or dropped


def leftovers(
    conn: psycopg.Connection[Any], table: str | None = None, schemas: list[str] | None = None
) -> list[dict[str, Any]]:
    rows = [dict(r) for r in conn.execute(query("reindex_leftovers"), {"schemas": app_schemas(schemas)}).fetchall()]
    return [r for r in rows if table is None or r["qualified_table"] == table]


def candidates(conn: psycopg.Connection[Any], opts: ReindexOptions) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Indexes worth rebuilding (measured bloat and size at or over the thresholds), largest gain first."""
    m = bloat.measure(
        conn, threshold=opts.min_bloat, min_size=opts.min_size, use_exact=opts.use_exact, schemas=opts.schemas
    )
    chosen = [
        ix
        for ix in m["indexes"]
        if ix["is_valid"]
        and ix["bytes"] >= opts.min_size
        and ix["bloat_pct"] is not None
        and ix["bloat_pct"] >= opts.min_bloat
        and not _is_leftover_name(ix["index"])
    ]
    chosen.sort(key=lambda ix: -(ix["bloat_bytes"] or 0))
    return chosen, m


def _is_leftover_name(name: str) -> bool:
    import re

    return re.search(r"_cc(new|old)[0-9]*$", name) is not None


def free_space(conn: psycopg.Connection[Any], index: str) -> tuple[int | None, str | None]:
    """Free bytes on the disk that holds the index, when this process can see that directory."""
    row = conn.execute(query("index_storage"), {"index": index}).fetchone()
    directory = row["directory"] if row else None
    if not directory:
        return None, None
    try:
        return shutil.disk_usage(directory).free, directory
    except OSError:
        return None, directory


def storage(conn: psycopg.Connection[Any], index: str) -> dict[str, Any]:
    return dict(conn.execute(query("index_storage"), {"index": index}).fetchone() or {})


def plan(conn: psycopg.Connection[Any], opts: ReindexOptions) -> dict[str, Any]:
    """What a run would do, without doing it: leftovers to drop (or leave), indexes to rebuild."""
    lo = leftovers(conn, schemas=opts.schemas)
    chosen, m = candidates(conn, opts)
    return {
        "leftovers": [
            {
                "index": r["index"],
                "table": r["table"],
                "kind": r["kind"],
                "bytes": r["bytes"],
                "in_progress": r["in_progress"],
                "fix": "left alone: a build is making it now"
                if r["in_progress"]
                else f"DROP INDEX CONCURRENTLY {r['qualified']};",
            }
            for r in lo
        ],
        "rebuild": [
            {
                "index": ix["index"],
                "table": ix["table"],
                "bytes": ix["bytes"],
                "bloat_pct": ix["bloat_pct"],
                "bloat_bytes": ix["bloat_bytes"],
                "measured_by": ix["measured_by"],
                "fix": f"REINDEX INDEX CONCURRENTLY {ix['qualified']};",
            }
            for ix in chosen
        ],
        "exact_available": m["exact_available"],
        "notes": m["notes"],
    }


def run(dsn: str | None, opts: ReindexOptions, log: Log) -> dict[str, Any]:
    """Drop leftovers, then rebuild the bloated indexes. Returns the summary; raises OpsError when
    it could not start. Per-index failures are collected in ``failed`` and the run carries on."""
    started = time.monotonic()
    conn = connect(dsn, grant_role=MAINTENANCE_ROLE)
    try:
        require_primary(conn, "ops maintain reindex")
        warning = concurrent_build_warning(conn)
        if warning:
            log(warning)
        with advisory_lock(conn, LOCK_NAME, opts.lock_wait):
            summary = _run_locked(conn, dsn, opts, log, started)
    finally:
        conn.close()
    summary["seconds"] = round(time.monotonic() - started, 3)
    return summary


def _run_locked(
    conn: psycopg.Connection[Any], dsn: str | None, opts: ReindexOptions, log: Log, started: float
) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "dry_run": opts.dry_run,
        "dropped_leftovers": [],
        "rebuilt": [],
        "skipped": [],
        "failed": [],
        "notes": [],
    }
    # 0. what there is to do, and whether this role may do it (before anything changes; also in a dry run)
    found = leftovers(conn, schemas=opts.schemas)
    chosen, m = candidates(conn, opts)
    tables = {(r["schema"], r["table"]) for r in [*found, *chosen] if not r.get("in_progress")}
    require_owner(conn, sorted(tables), "ops maintain reindex", MAINTENANCE_ROLE)

    # 1. leftovers of interrupted runs
    for lo in found:
        if lo["in_progress"]:
            log(f"leave   {lo['index']}: a running build is making it")
            summary["skipped"].append({"index": lo["index"], "reason": "leftover in use by a running build"})
            continue
        if opts.dry_run:
            log(f"would drop leftover {lo['index']} ({lo['kind']}, {human_bytes(lo['bytes'])})")
            summary["dropped_leftovers"].append({"index": lo["index"], "bytes": lo["bytes"], "kind": lo["kind"]})
            continue
        log(f"drop    leftover {lo['index']} ({lo['kind']}, {human_bytes(lo['bytes'])})")
        try:
            drop_index_concurrently(
                conn, (lo["schema"], lo["index"]), table=lo["qualified_table"], policy=opts.policy, dsn=dsn, log=log
            )
            summary["dropped_leftovers"].append({"index": lo["index"], "bytes": lo["bytes"], "kind": lo["kind"]})
        except (OpsError, psycopg.Error) as exc:
            summary["failed"].append({"index": lo["index"], "error": f"drop leftover: {first_line(exc)}"})

    # 2. what is worth rebuilding
    summary["notes"].extend(m["notes"])
    summary["exact_available"] = m["exact_available"]
    chosen_names = {ix["qualified"] for ix in chosen}
    for ix in m["indexes"]:
        if ix["qualified"] not in chosen_names and ix["bytes"] >= opts.min_size and ix["is_valid"]:
            summary["skipped"].append(
                {"index": ix["index"], "reason": f"healthy ({_pct(ix['bloat_pct'])} bloat, {ix['measured_by']})"}
            )

    # 3. rebuild, largest gain first, within the budget
    rate: float | None = None  # bytes per second seen so far
    for ix in chosen:
        elapsed = time.monotonic() - started
        if opts.max_duration is not None:
            left = opts.max_duration - elapsed
            predicted = ix["bytes"] / rate if rate else 0.0
            if left <= 0 or predicted > left:
                summary["skipped"].append({"index": ix["index"], "reason": "over the time budget (--max-duration)"})
                log(f"skip    {ix['index']}: over the time budget")
                continue
        free, where = free_space(conn, ix["qualified"])
        if free is None:
            if not any("free space" in n for n in summary["notes"]):
                summary["notes"].append("free space not checked: the database's directory is not visible from here")
        elif free < ix["bytes"] + opts.min_free:
            reason = (
                f"refused: {human_bytes(free)} free on the disk of {where}, a second copy needs "
                f"{human_bytes(ix['bytes'] + opts.min_free)}"
            )
            summary["failed"].append({"index": ix["index"], "error": reason})
            log(f"skip    {ix['index']}: {reason}")
            continue
        entry = {
            "index": ix["index"],
            "table": ix["table"],
            "bloat_pct": ix["bloat_pct"],
            "measured_by": ix["measured_by"],
            "bytes_before": ix["bytes"],
        }
        if opts.dry_run:
            log(
                f"would reindex {ix['index']} ({human_bytes(ix['bytes'])}, {_pct(ix['bloat_pct'])} bloat, "
                f"{ix['measured_by']})"
            )
            summary["rebuilt"].append(entry)
            continue
        t0 = time.monotonic()
        try:
            _reindex_one(conn, dsn, ix, opts.policy, log)
        except (OpsError, psycopg.Error) as exc:
            summary["failed"].append({"index": ix["index"], "error": first_line(exc)})
            log(f"FAILED  {ix['index']}: {first_line(exc)}")
            continue
        seconds = time.monotonic() - t0
        after = storage(conn, ix["qualified"])
        entry.update(
            bytes_after=after.get("bytes"),
            bytes_reclaimed=ix["bytes"] - (after.get("bytes") or 0),
            seconds=round(seconds, 3),
        )
        rate = ix["bytes"] / seconds if seconds > 0 else rate
        summary["rebuilt"].append(entry)
        log(f"done    {ix['index']}: {human_bytes(ix['bytes'])} -> {human_bytes(after.get('bytes'))} in {seconds:.2f}s")
    summary["bytes_before"] = sum(e["bytes_before"] for e in summary["rebuilt"])
    summary["bytes_reclaimed"] = sum(e.get("bytes_reclaimed", 0) for e in summary["rebuilt"]) + sum(
        d["bytes"] for d in summary["dropped_leftovers"] if not opts.dry_run
    )
    return summary


def _reindex_one(
    conn: psycopg.Connection[Any], dsn: str | None, ix: dict[str, Any], policy: RetryPolicy, log: Log
) -> None:
    log(f"reindex {ix['index']} ({human_bytes(ix['bytes'])}, {_pct(ix['bloat_pct'])} bloat, {ix['measured_by']})")
    stmt = sql.SQL("REINDEX INDEX CONCURRENTLY {}").format(sql.Identifier(ix["schema"], ix["index"]))

    def cleanup() -> None:
        # a failed attempt leaves <index>_ccnew: drop it before the retry
        for lo in leftovers(conn, ix["qualified_table"], [ix["schema"]]):
            if lo["index"].startswith(ix["index"]) and not lo["in_progress"]:
                log(f"        dropping {lo['index']} left by the failed attempt")
                drop_index_concurrently(
                    conn, (lo["schema"], lo["index"]), table=lo["qualified_table"], policy=policy, dsn=dsn, log=log
                )

    run_online(
        conn,
        stmt,
        table=ix["qualified_table"],
        what=f"reindex {ix['index']}",
        policy=policy,
        dsn=dsn,
        cleanup=cleanup,
        log=log,
    )


def _pct(value: float | None) -> str:
    return "?%" if value is None else f"{value:.0f}%"
