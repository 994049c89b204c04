"""ops playbook locks against a real PostgreSQL with a staged lock chain: A idle in transaction
holds a row lock, B waits for A, C waits for B. The playbook names A as the root with its age and
state, hangs B and C under it, prints the fix for A and executes nothing."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import psycopg
import pytest

from tests.conftest import run_ops

UPDATE = "UPDATE users SET email = email WHERE id = 1"


@dataclass
class Chain:
    a: int
    b: int
    c: int
    conns: list[psycopg.Connection] = field(default_factory=list)

    def alive(self) -> set[int]:
        with psycopg.connect(self.conns[0].info.dsn, autocommit=True) as probe:
            rows = probe.execute(
                "SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s)", ([self.a, self.b, self.c],)
            ).fetchall()
        return {r[0] for r in rows}


def _wait_for(db, pid: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if db.fetchall("SELECT 1 FROM pg_stat_activity WHERE pid = %s AND wait_event_type = 'Lock'", (pid,)):
            return
        time.sleep(0.05)
    raise AssertionError(f"pid {pid} never waited for a lock")


@pytest.fixture
def chain(db) -> Iterator[Chain]:
    db.execute("INSERT INTO users (email) VALUES ('a@example.test')")
    a = psycopg.connect(db.dsn, application_name="session-a")
    a.execute(UPDATE)  # a transaction stays open: idle in transaction, holding the row lock
    conns, threads = [a], []
    pids = [a.info.backend_pid]
    for name in ("session-b", "session-c"):
        conn = psycopg.connect(db.dsn, autocommit=True, application_name=name)
        conns.append(conn)
        pids.append(conn.info.backend_pid)
        t = threading.Thread(target=conn.execute, args=(UPDATE,), daemon=True)
        t.start()
        threads.append(t)
        _wait_for(db, pids[-1])
    yield Chain(*pids, conns=conns)
    a.rollback()
    for t in threads:
        t.join(timeout=10)
    for conn in conns:
        conn.close()


def test_no_waiters_is_ok(db):
    proc = run_ops("playbook", "locks", env=db.env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("OK: no session waits for a lock")
    data = json.loads(run_ops("playbook", "locks", "--json", env=db.env).stdout)
    assert data["status"] == "OK" and data["exit_code"] == 0 and data["tree"] == []


def test_the_chain_shows_the_root_its_waiters_and_the_fix_without_running_it(db, chain):
    time.sleep(1.1)  # so that waits and ages are at least a second
    proc = run_ops("playbook", "locks", "--warning", "1s", "--critical", "1h", env=db.env)
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    assert out.startswith(f"WARNING: pid {chain.a} (idle in transaction for "), out
    assert "blocks 2 session(s)" in out.splitlines()[0]
    tree = out[out.index("lock tree") : out.index("findings:")]
    lines = tree.splitlines()
    root = next(i for i, ln in enumerate(lines) if ln.startswith(f"root pid {chain.a}, idle in transaction"))
    b = next(i for i, ln in enumerate(lines) if ln.startswith(f"  └ pid {chain.b}, active, waiting"))
    c = next(i for i, ln in enumerate(lines) if ln.startswith(f"    └ pid {chain.c}, active, waiting"))
    assert root < b < c, tree
    assert "app session-a" in lines[root] and "transaction" in lines[root]
    assert f"query: {UPDATE}" in lines[root + 1]
    assert f"fix: SELECT pg_catalog.pg_terminate_backend({chain.a});" in out
    assert "pg_cancel_backend" not in out.split("fix:")[1].splitlines()[0]

    data = json.loads(run_ops("playbook", "locks", "--json", "--warning", "1s", env=db.env).stdout)
    assert data["status"] == "WARNING" and data["exit_code"] == 1 and data["roots"] == [chain.a]
    [a] = data["tree"]
    assert a["state"] == "idle in transaction" and a["xact_age_s"] >= 1 and a["query"] == UPDATE
    [b] = a["waiters"]
    [c] = b["waiters"]
    assert (b["pid"], c["pid"]) == (chain.b, chain.c) and c["blocked_by"] == [chain.b]
    assert b["wait_s"] >= 1 and b["wait_mode"] == "ShareLock"

    # printed, never executed: all three sessions are still there, still waiting
    assert chain.alive() == {chain.a, chain.b, chain.c}
    assert db.fetchall("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")[0][0] == 2


def test_thresholds_decide_the_verdict(db, chain):
    under = run_ops("playbook", "locks", "--warning", "1h", "--critical", "2h", env=db.env)
    assert under.returncode == 0 and under.stdout.startswith("OK: 2 session(s) wait for a lock, none longer than")
    assert f"root pid {chain.a}" in under.stdout  # the tree is shown all the same
    time.sleep(1.1)
    over = run_ops("playbook", "locks", "--warning", "0.5s", "--critical", "1s", env=db.env)
    assert over.returncode == 2 and over.stdout.startswith(f"CRITICAL: pid {chain.a} ")


def test_an_active_root_is_cancelled_not_terminated(db):
    a = psycopg.connect(db.dsn, application_name="locker")
    b = psycopg.connect(db.dsn, autocommit=True)
    pid = a.info.backend_pid
    a.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
    sleeper = threading.Thread(target=lambda: _quietly(a, "SELECT pg_sleep(30)"), daemon=True)
    sleeper.start()  # the root is active: running a statement with the lock held
    reader = threading.Thread(target=lambda: _quietly(b, "SELECT count(*) FROM users"), daemon=True)
    reader.start()
    try:
        _wait_for(db, b.info.backend_pid)
        proc = run_ops("playbook", "locks", "--warning", "1h", "--critical", "2h", env=db.env)
    finally:
        db.execute("SELECT pg_cancel_backend(%s)", (pid,))  # the test's own clean-up
        sleeper.join(10)
        reader.join(10)
        a.close()
        b.close()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"fix: SELECT pg_catalog.pg_cancel_backend({pid});" in proc.stdout, proc.stdout
    assert f"still there a few seconds later: SELECT pg_catalog.pg_terminate_backend({pid});" in proc.stdout
    assert "for AccessShareLock on public.users" in proc.stdout


def _quietly(conn: psycopg.Connection, statement: str) -> None:
    try:
        conn.execute(statement)
    except psycopg.errors.QueryCanceled:
        pass


def test_bad_thresholds_are_one_line(db):
    for args, word in (
        (["--warning", "soon"], "--warning"),
        (["--critical", "0"], "--critical"),
        (["--warning", "2m", "--critical", "1m"], "--critical"),
    ):
        proc = run_ops("playbook", "locks", *args, env=db.env)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert word in proc.stderr and "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_a_role_that_cannot_see_other_sessions_still_gets_the_tree_and_is_told_why_it_is_thin(db, chain):
    db.execute("DROP ROLE IF EXISTS locks_nobody; CREATE ROLE locks_nobody LOGIN")
    try:
        proc = run_ops(
            "playbook", "locks", "--warning", "1h", "--critical", "2h", env={**db.env, "PGUSER": "locks_nobody"}
        )
    finally:
        db.execute("DROP ROLE locks_nobody")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    assert f"root pid {chain.a}, state not visible" in proc.stdout
    assert f"fix: SELECT pg_catalog.pg_cancel_backend({chain.a});" in proc.stdout
    assert "[INFO] hidden: this role may not see the state and query of pid" in proc.stdout
    assert "GRANT pg_read_all_stats TO" in proc.stdout


def _row(pid: int, blocked_by: list[int], state: str = "active", wait_s: float | None = None) -> dict:
    return {"pid": pid, "blocked_by": blocked_by, "state": state, "wait_s": wait_s, "query": "SELECT 1"}


def test_the_tree_hangs_a_waiter_under_the_deepest_of_its_blockers_and_survives_odd_shapes():
    from ops.playbook.locks import Options, build_tree, judge

    # C waits for both A and B (B is queued behind A): C belongs under B, the end of the chain
    [a] = build_tree([_row(1, [], "idle in transaction"), _row(2, [1], wait_s=5), _row(3, [1, 2], wait_s=3)])
    assert a.pid == 1 and [w.pid for w in a.waiters] == [2] and [w.pid for w in a.waiters[0].waiters] == [3]
    # a prepared transaction (pid 0) holding the lock is a root with its own fix
    [prepared] = build_tree([_row(7, [0], wait_s=120)])
    report = judge([prepared], Options(warning_s=10, critical_s=60))
    assert report.exit_code == 2 and "ROLLBACK PREPARED" in report.findings[0].fix
    # a wait cycle the deadlock detector has not broken yet: shown, never an endless loop
    roots = build_tree([_row(1, [2], wait_s=1), _row(2, [1], wait_s=1)])
    assert {r.pid for r in roots} | {w.pid for r in roots for w in r.walk()} == {1, 2}
