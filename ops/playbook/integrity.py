"""``ops playbook integrity``: are the app's btree indexes intact? amcheck's ``bt_index_check``.

Safe on a busy primary: ``bt_index_check`` takes only an AccessShareLock on the index and its
table (what a SELECT takes), so writes go on; ``bt_index_parent_check`` (ShareLock, blocks
writes) is never run. With ``heapallindexed`` it also proves every table row has its index
entry (it reads the whole table: slower, same lock). Bounded in time: no check starts after
``max_duration``, and the running one is cancelled at it (statement_timeout), so the whole run
ends on time; what was not checked is listed. Each check waits at most ``LOCK_TIMEOUT_S`` for its
lock. The session is read-only: nothing is written.

Which indexes: every valid btree index outside the system schemas and extensions (``schemas``
narrows it); INVALID ones (a failed build: index-health reports them), temporary ones (other
sessions' cannot be read) and unlogged ones on a standby are skipped and counted.

Verdict: CRITICAL when an index is corrupt (its name and the fix: REINDEX INDEX CONCURRENTLY, then
find the cause); UNKNOWN when amcheck is not installed or may not be called (the one line that
fixes it); OK otherwise.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import errors, sql

from ops.db import connect, first_line, set_timeouts
from ops.errors import CRITICAL, UNKNOWN
from ops.maintain.units import human_bytes, human_duration
from ops.playbook.report import INFO, Report
from ops.sqlfiles import query

LOCK_TIMEOUT_S = 5.0
#: SQLSTATEs amcheck (and reading a damaged page) raise for corruption: data_corrupted,
#: index_corrupted, io_error.
CORRUPTION = {"XX001", "XX002", "58030"}
INSTALL_FIX = "CREATE EXTENSION amcheck;  (as a superuser, in this database; it ships with PostgreSQL's contrib)"
PACKAGE_FIX = "install PostgreSQL's contrib modules on the server (Debian: postgresql-contrib), then " + INSTALL_FIX


@dataclass
class Options:
    heapallindexed: bool = False
    max_duration: float = 600.0
    schemas: list[str] = field(default_factory=list)


def grant_fix(state: dict[str, Any]) -> str:
    """The GRANT that lets the current role call bt_index_check (amcheck revokes it from PUBLIC)."""
    return f"GRANT EXECUTE ON FUNCTION {state['function_sql']}(regclass, boolean) TO {state['role_sql']};"


def corruption_fix(qualified: str) -> str:
    return (
        f"REINDEX INDEX CONCURRENTLY {qualified};  (as its owner, e.g. a member of s10_maintenance)\n"
        "then find the cause before it spreads: the server log around the error (I/O errors), the disks and "
        "memory, SHOW data_checksums; check the table too (pg_amcheck --heapallindexed --table ...): "
        "a corrupt table needs a restore from backup, not a REINDEX"
    )


def integrity(dsn: str | None, opts: Options) -> Report:
    """Check the indexes one by one within the time budget. Changes nothing."""
    started = time.monotonic()
    report = Report(ok_summary="")
    with connect(dsn) as conn:
        try:
            conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
            state = conn.execute(query("amcheck_state")).fetchone() or {}
            if not _usable(report, state):
                return report
            rows = conn.execute(query("amcheck_indexes"), {"schemas": opts.schemas or None}).fetchall()
        except psycopg.Error as exc:
            report.add(UNKNOWN, "amcheck", f"cannot list the indexes to check: {first_line(exc)}")
            return report
        fn = sql.Identifier(state["schema"], "bt_index_check")
        results = _check_all(conn, fn, rows, opts, started)
    for name in sorted(set(opts.schemas) - {r["schema"] for r in rows}):
        report.add(INFO, "schema", f"schema {name!r} has no btree index to check: is the name right?")
    results["seconds"] = time.monotonic() - started
    return _judge(report, results, opts, state)


def _usable(report: Report, state: dict[str, Any]) -> bool:
    """amcheck installed and callable; otherwise an UNKNOWN finding with the one fix."""
    if not state.get("schema"):
        report.add(
            UNKNOWN,
            "amcheck",
            "amcheck is not installed in this database: no index can be checked",
            INSTALL_FIX if state.get("available") else PACKAGE_FIX,
        )
        return False
    if not state.get("can_execute"):
        report.add(
            UNKNOWN,
            "amcheck",
            f"role {state['role']} may not execute {state['function_sql']}: no index can be checked",
            grant_fix(state),
        )
        return False
    return True


def _check_all(
    conn: psycopg.Connection[dict[str, Any]],
    fn: sql.Identifier,
    rows: list[dict[str, Any]],
    opts: Options,
    started: float,
) -> dict[str, Any]:
    out: dict[str, list[dict[str, Any]]] = {
        "checked": [],
        "corrupt": [],
        "failed": [],
        "not_checked": [],
        "skipped": [],
    }
    stmt = sql.SQL("SELECT {}(%s::oid::regclass, %s)").format(fn)
    for ix in rows:
        entry = {k: ix[k] for k in ("schema", "table", "index", "qualified", "bytes")}
        if ix["skip"]:
            out["skipped"].append({**entry, "reason": ix["skip"]})
            continue
        left = opts.max_duration - (time.monotonic() - started)
        if left <= 0:
            out["not_checked"].append({**entry, "reason": "not started: over --max-duration"})
            continue
        # the running check ends at the budget too: statement_timeout is what is left of it
        set_timeouts(conn, lock_timeout=LOCK_TIMEOUT_S, statement_timeout=max(left, 0.01))
        t0 = time.monotonic()
        try:
            conn.execute(stmt, (ix["oid"], opts.heapallindexed))
        except errors.QueryCanceled:
            out["not_checked"].append({**entry, "reason": "cancelled at --max-duration"})
            continue
        except errors.LockNotAvailable:
            out["not_checked"].append({**entry, "reason": f"its table stayed locked for {LOCK_TIMEOUT_S:g}s"})
            continue
        except psycopg.Error as exc:
            if conn.broken:  # the server process ended while reading it: a crash there is a sign of damage
                out["corrupt"].append({**entry, "error": f"the server process checking it ended: {first_line(exc)}"})
                break
            kind = "corrupt" if exc.sqlstate in CORRUPTION else "failed"
            out[kind].append({**entry, "error": first_line(exc), "sqlstate": exc.sqlstate})
            continue
        out["checked"].append({**entry, "seconds": round(time.monotonic() - t0, 3)})
    return out


def _judge(report: Report, r: dict[str, Any], opts: Options, state: dict[str, Any]) -> Report:
    for c in r["corrupt"]:
        report.add(
            CRITICAL,
            "corrupt",
            f"index {c['qualified']} on table {c['table']} is corrupt: {c['error']}",
            corruption_fix(c["qualified"]),
        )
    for f in r["failed"]:
        report.add(UNKNOWN, "not-checked", f"could not check {f['qualified']}: {f['error']}")
    if r["not_checked"]:
        names = ", ".join(n["qualified"] for n in r["not_checked"][:10])
        more = f" (+{len(r['not_checked']) - 10} more)" if len(r["not_checked"]) > 10 else ""
        report.add(
            INFO,
            "time-budget",
            f"{len(r['not_checked'])} index(es) not checked within --max-duration "
            f"{human_duration(opts.max_duration)}: {names}{more}",
            "run again with a longer --max-duration, or --schema to check a part at a time",
        )
    skipped: dict[str, list[str]] = {}
    for s in r["skipped"]:
        skipped.setdefault(s["reason"], []).append(s["qualified"])
    for reason, which in skipped.items():
        why = {"invalid": "ops playbook index-health reports them with their fix"}.get(
            reason, "amcheck cannot read them"
        )
        report.add(INFO, "skipped", f"{len(which)} {reason} index(es) skipped ({why}): {', '.join(which)}")
    how = "bt_index_check" + (" with heapallindexed" if opts.heapallindexed else "")
    total = len(r["checked"]) + len(r["not_checked"]) + len(r["corrupt"]) + len(r["failed"])
    checked = f"{len(r['checked'])} of {total}" if total != len(r["checked"]) else f"{total}"
    report.ok_summary = f"{checked} btree index(es) checked with {how} in {r['seconds']:.1f}s, no corruption found" + (
        f"; {len(r['not_checked'])} not checked within --max-duration {human_duration(opts.max_duration)}"
        if r["not_checked"]
        else ""
    )
    report.details.update(
        {
            **r,
            "heapallindexed": opts.heapallindexed,
            "max_duration_s": opts.max_duration,
            "amcheck_schema": state["schema"],
            "amcheck_version": state["version"],
        }
    )
    return report


def render(report: Report) -> list[str]:
    """One line per index checked, then the findings."""
    d = report.details
    lines = [f"  ok  {c['qualified']} ({human_bytes(c['bytes'])}, {c['seconds']:.2f}s)" for c in d.get("checked", [])]
    lines += [f"  !!  {c['qualified']}: CORRUPT" for c in d.get("corrupt", [])]
    lines += [f"  ??  {c['qualified']}: {c['error']}" for c in d.get("failed", [])]
    lines += [f"  --  {n['qualified']}: {n['reason']}" for n in d.get("not_checked", [])]
    if lines:
        lines.insert(0, "indexes:")
    if report.findings:
        lines.append("findings:")
    return lines
