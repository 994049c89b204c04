"""Online DDL with lock retries: the one place that decides how we wait, retry and give up.

In the spirit of GitLab's ``with_lock_retries``: a short ``lock_timeout`` on every attempt, a
pre-flight wait for old transactions that would stall the build, bounded retries with backoff,
and, when we give up, the blocking backends named. Concurrent builds (CREATE INDEX / REINDEX
CONCURRENTLY) run outside transactions on an autocommit connection.
"""

from __future__ import annotations

import random
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import errors, sql

from ops.db import connect, first_line, set_timeouts
from ops.errors import OpsError
from ops.output import err_console
from ops.sqlfiles import query

# Waits that another session caused, so another attempt may succeed: lock_timeout, a cancel, and a
# deadlock (e.g. a build beside ``maintain reindex``: the server aborts one of the two; its INVALID
# leftover is dropped by ``cleanup`` before the retry).
RETRIED = (errors.LockNotAvailable, errors.QueryCanceled, errors.DeadlockDetected)


@dataclass(frozen=True)
class RetryPolicy:
    lock_timeout: float = 3.0  # seconds each attempt may wait for a lock
    retries: int = 5  # attempts after the first
    max_backoff: float = 30.0

    def backoff(self, attempt: int) -> float:
        """Seconds to sleep after failed attempt number ``attempt`` (0-based), with jitter."""
        base = min(self.max_backoff, self.lock_timeout * (2**attempt) / 2)
        return base * random.uniform(0.8, 1.2)


class Blocked(OpsError):
    """Gave up waiting for locks; carries the backends that were in the way."""

    def __init__(self, what: str, blockers: list[dict[str, Any]], attempts: int, extra: str = ""):
        self.blockers = blockers
        names = "; ".join(describe_backend(b) for b in blockers) or "no blocker seen (lock_timeout hit)"
        super().__init__(f"{what}: gave up after {attempts} attempts, blocked by {names}{extra}")


def describe_backend(b: dict[str, Any]) -> str:
    return f"pid {b['pid']} ({b.get('state') or '?'}, xact {b.get('xact_age_s') or '?'}s, {b.get('usename') or '?'}: {b.get('query') or ''!r})"


def table_blockers(conn: psycopg.Connection[Any], table: str, min_age: float) -> list[dict[str, Any]]:
    return conn.execute(query("table_blockers"), {"table": table, "min_age": min_age}).fetchall()


def describe_pids(conn: psycopg.Connection[Any], pids: set[int]) -> list[dict[str, Any]]:
    if not pids:
        return []
    return conn.execute(query("backends"), {"pids": list(pids)}).fetchall()


@dataclass
class BuildWatch:
    """Watches a backend's index build from a second connection: progress, and who blocks it."""

    dsn: str | None
    pid: int
    label: str
    show: bool = field(default_factory=lambda: sys.stderr.isatty())
    interval: float = 0.2  # a phase of a short build still shows on a terminal
    blockers: dict[int, dict[str, Any]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> BuildWatch:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        try:
            conn = connect(self.dsn)
        except OpsError:
            return
        progress = None
        try:
            if self.show:
                from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

                progress = Progress(
                    TextColumn("{task.description}"),
                    BarColumn(),
                    TextColumn("{task.fields[phase]}"),
                    TimeElapsedColumn(),
                    console=err_console,  # stdout stays clean for --json
                    transient=True,
                )
                progress.start()
                task = progress.add_task(self.label, total=None, phase="starting")
            while not self._stop.wait(self.interval):
                row = conn.execute(query("create_index_progress"), {"pid": self.pid}).fetchone()
                if not row:
                    continue
                waits_for = set(row["blocking_pids"] or ()) | ({row["current_locker_pid"]} - {0, None})
                if waits_for:
                    for b in describe_pids(conn, waits_for):
                        self.blockers[b["pid"]] = b
                if progress is not None:
                    done, total = row["blocks_done"], row["blocks_total"]
                    if not total:
                        done, total = row["tuples_done"], row["tuples_total"]
                    if row["lockers_total"]:
                        done, total = row["lockers_done"], row["lockers_total"]
                    progress.update(task, completed=done, total=total or None, phase=row["phase"])
        except psycopg.Error:
            pass
        finally:
            if progress is not None:
                progress.stop()
            conn.close()


def run_online(
    conn: psycopg.Connection[Any],
    statement: sql.SQL | sql.Composed | str,
    *,
    table: str,
    what: str,
    policy: RetryPolicy,
    dsn: str | None,
    cleanup: Callable[[], None] | None = None,
    watch: bool = True,
    log: Callable[[str], None] = lambda _m: None,
) -> None:
    """Run one online DDL statement with lock_timeout, pre-flight waits and bounded retries.

    ``cleanup`` runs after every failed attempt (e.g. drop the INVALID index a failed
    concurrent build leaves). Lock timeouts, cancels and deadlocks are retried; other errors are not.
    """
    attempts = policy.retries + 1
    seen: dict[int, dict[str, Any]] = {}
    min_age = min(1.0, policy.lock_timeout)
    for attempt in range(attempts):
        # Pre-flight: wait (bounded) for old transactions that would stall the build half-way.
        deadline = time.monotonic() + policy.lock_timeout
        blockers = table_blockers(conn, table, min_age)
        while blockers and time.monotonic() < deadline:
            time.sleep(0.1)
            blockers = table_blockers(conn, table, min_age)
        if blockers:
            seen.update({b["pid"]: b for b in blockers})
            log(f"  {what}: waiting for {len(blockers)} old transaction(s) (attempt {attempt + 1}/{attempts})")
        else:
            set_timeouts(conn, lock_timeout=policy.lock_timeout)
            try:
                if watch:
                    with BuildWatch(dsn, conn.info.backend_pid, what) as watcher:
                        try:
                            conn.execute(statement)
                        finally:
                            seen.update(watcher.blockers)
                else:
                    conn.execute(statement)
                return
            except RETRIED as exc:
                log(f"  {what}: {first_line(exc)} (attempt {attempt + 1}/{attempts})")
                if cleanup:
                    cleanup()
                seen.update({b["pid"]: b for b in table_blockers(conn, table, 0)})
            except psycopg.Error:
                if cleanup:
                    cleanup()
                raise
            finally:
                set_timeouts(conn, lock_timeout=0)
        if attempt + 1 < attempts:
            time.sleep(policy.backoff(attempt))
    live = {pid: b for pid, b in seen.items() if describe_pids(conn, {pid})}
    raise Blocked(what, list(live.values()) or list(seen.values()), attempts)


#: An object's name: ``(schema, name)`` as the catalog spells them, or ``"schema.name"`` / ``"name"``
#: when no part holds a dot (a schema may be called "Odd.Schema": pass the pair then).
Name = str | tuple[str, str]


def display(name: Name) -> str:
    return ".".join(name) if isinstance(name, tuple) else name


def drop_index_concurrently(
    conn: psycopg.Connection[Any],
    index: Name,
    *,
    table: str,
    policy: RetryPolicy,
    dsn: str | None,
    log: Callable[[str], None] = lambda _m: None,
) -> None:
    """DROP INDEX CONCURRENTLY IF EXISTS, with the same lock retries."""
    stmt = sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(qualified(index))
    run_online(conn, stmt, table=table, what=f"drop {display(index)}", policy=policy, dsn=dsn, watch=False, log=log)


def qualified(name: Name) -> sql.Composable:
    """A possibly schema-qualified name as a safely quoted identifier (the one quoting helper)."""
    if isinstance(name, tuple):
        return sql.Identifier(*name)
    return sql.Identifier(*name.split(".", 1))
