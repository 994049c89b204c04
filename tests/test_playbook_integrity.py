"""ops playbook integrity against real PostgreSQL: amcheck over the app's btree indexes.

The corruption is real: on a throwaway cluster of its own, a copy of users' email index has two
index entries swapped on disk (the server stopped, so no buffer hides it), and bt_index_check
must find it. Healthy databases, a missing extension, a role without the GRANT, an INVALID index
and the time budget run on the session's cluster."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

from ops import SQL_DIR
from ops.local.pg import Cluster, free_port, load_schema
from tests.conftest import OPS_BIN, run_ops

PAGE = 8192


def btree_indexes(db) -> int:
    return db.fetchall(
        "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam "
        "WHERE am.amname = 'btree' AND c.relnamespace = 'public'::regnamespace"
    )[0][0]


def swap_first_entries(path: Path, block: int = 1) -> None:
    """Swap the line pointers of two neighbouring entries on a btree leaf page: keys out of order."""
    with open(path, "r+b") as fh:
        fh.seek(block * PAGE)
        page = bytearray(fh.read(PAGE))
        (pd_lower,) = struct.unpack_from("<H", page, 12)
        assert (pd_lower - 24) // 4 >= 3, "the page holds too few entries to swap"
        first, second = 24 + 4 * 1, 24 + 4 * 2  # line pointers 2 and 3 (1 may be the high key)
        page[first : first + 4], page[second : second + 4] = page[second : second + 4], page[first : first + 4]
        fh.seek(block * PAGE)
        fh.write(page)


@pytest.fixture
def corrupt_cluster():
    """A cluster of its own with the app's tables, 2,000 users and a corrupted copy of the email index."""
    cluster = Cluster(root=Path(tempfile.mkdtemp(prefix="s10pg-corrupt-")), port=free_port())
    try:
        cluster.init(fsync=False)
        cluster.start()
        load_schema(cluster.dsn(), SQL_DIR / "schema")
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            conn.execute(
                "INSERT INTO users (email) SELECT 'user' || g || '@example.test' FROM generate_series(1, 2000) g"
            )
            conn.execute("CREATE INDEX idx_users_email_copy ON users (email)")
            conn.execute("CREATE EXTENSION amcheck")
            conn.execute("CHECKPOINT")
            (rel,) = conn.execute("SELECT pg_relation_filepath('idx_users_email_copy')").fetchone()  # type: ignore[misc]
        cluster.stop()  # shared buffers go with it: the next read comes from the file
        swap_first_entries(cluster.data / rel)
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


def test_a_corrupt_index_is_critical_named_with_its_fix_and_the_fix_works(corrupt_cluster):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")} | corrupt_cluster.env()
    proc = run_ops("playbook", "integrity", env=env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    first = proc.stdout.splitlines()[0]
    assert first.startswith("CRITICAL: index public.idx_users_email_copy on table users is corrupt: "), first
    assert "fix: REINDEX INDEX CONCURRENTLY public.idx_users_email_copy;" in proc.stdout
    data = json.loads(run_ops("playbook", "integrity", "--json", env=env).stdout)
    assert data["status"] == "CRITICAL" and data["exit_code"] == 2
    [bad] = data["corrupt"]
    assert bad["qualified"] == "public.idx_users_email_copy" and bad["sqlstate"] == "XX002"
    assert "public.users_pkey" in {c["qualified"] for c in data["checked"]}

    with psycopg.connect(corrupt_cluster.dsn(), autocommit=True) as conn:
        conn.execute("REINDEX INDEX CONCURRENTLY public.idx_users_email_copy")
    again = run_ops("playbook", "integrity", "--heapallindexed", env=env)
    assert again.returncode == 0 and again.stdout.startswith("OK: "), again.stdout + again.stderr


def test_without_amcheck_it_says_how_to_install_it(db):
    proc = run_ops("playbook", "integrity", env=db.env)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert proc.stdout.startswith("UNKNOWN: amcheck is not installed in this database")
    assert "fix: CREATE EXTENSION amcheck;" in proc.stdout


def test_a_healthy_database_is_ok_with_amcheck_in_its_own_schema(db):
    db.execute("CREATE SCHEMA tools; CREATE EXTENSION amcheck SCHEMA tools")
    db.execute("INSERT INTO users (email) SELECT 'u' || g || '@example.test' FROM generate_series(1, 500) g")
    n = btree_indexes(db)
    proc = run_ops("playbook", "integrity", "--heapallindexed", env=db.env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith(f"OK: {n} btree index(es) checked with bt_index_check with heapallindexed in ")
    data = json.loads(run_ops("playbook", "integrity", "--json", env=db.env).stdout)
    assert data["status"] == "OK" and data["amcheck_schema"] == "tools" and len(data["checked"]) == n
    assert all(c["qualified"].startswith("public.") for c in data["checked"])
    narrowed = run_ops("playbook", "integrity", "--schema", "tools", "--schema", "pubic", env=db.env)
    assert narrowed.returncode == 0 and narrowed.stdout.startswith("OK: 0 btree index(es) checked")
    assert "schema 'pubic' has no btree index to check: is the name right?" in narrowed.stdout
    # diagnosis has no effect: no parent check ran, nothing was written
    assert not db.fetchall("SELECT 1 FROM pg_stat_user_tables WHERE n_tup_ins + n_tup_upd + n_tup_del > 500")


def test_a_role_without_the_grant_gets_one_line_with_the_grant(db):
    db.execute("CREATE EXTENSION amcheck")
    db.execute("DROP ROLE IF EXISTS amcheck_nobody; CREATE ROLE amcheck_nobody LOGIN")
    try:
        proc = run_ops("playbook", "integrity", env={**db.env, "PGUSER": "amcheck_nobody"})
        assert proc.returncode == 3, proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr
        assert proc.stdout.startswith("UNKNOWN: role amcheck_nobody may not execute public.bt_index_check")
        assert "fix: GRANT EXECUTE ON FUNCTION public.bt_index_check(regclass, boolean) TO amcheck_nobody;" in (
            proc.stdout
        )
    finally:
        db.execute("DROP ROLE amcheck_nobody")


def test_invalid_indexes_are_skipped_and_said_so(db):
    db.execute("CREATE EXTENSION amcheck")
    db.execute("CREATE TABLE scratch (v int); INSERT INTO scratch VALUES (1), (1)")
    with pytest.raises(psycopg.errors.UniqueViolation):  # a failed concurrent build leaves it INVALID
        db.execute("CREATE UNIQUE INDEX CONCURRENTLY ix_scratch_broken ON scratch (v)")
    with db.connect() as other:  # another session's temporary table: amcheck cannot read it
        other.execute("CREATE TEMP TABLE mine (v int PRIMARY KEY)")
        data = json.loads(run_ops("playbook", "integrity", "--json", env=db.env).stdout)
    assert data["status"] == "OK"
    skipped = {s["qualified"]: s["reason"] for s in data["skipped"]}
    assert skipped.pop("public.ix_scratch_broken") == "invalid"
    [(temp, reason)] = skipped.items()
    assert temp.startswith("pg_temp_") and temp.endswith(".mine_pkey") and reason == "temporary"
    assert "public.ix_scratch_broken" not in {c["qualified"] for c in data["checked"]}
    text = run_ops("playbook", "integrity", env=db.env).stdout
    assert "1 invalid index(es) skipped (ops playbook index-health reports them with their fix)" in text


def test_the_time_budget_is_kept(db):
    """A table held locked makes its check wait: the run still ends at --max-duration and lists the rest."""
    db.execute("CREATE EXTENSION amcheck")
    with psycopg.connect(db.dsn) as locker:
        locker.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        t0 = time.monotonic()
        proc = run_ops("playbook", "integrity", "--json", "--max-duration", "2s", env=db.env)
        wall = time.monotonic() - t0
    data = json.loads(proc.stdout)
    assert proc.returncode == 0 and data["status"] == "OK", proc.stdout + proc.stderr
    assert data["seconds"] < 2.5 and wall < 6, (data["seconds"], wall)
    users = [n for n in data["not_checked"] if n["table"] == "users"]
    assert len(users) == len(data["not_checked"]) >= 2, data["not_checked"]
    assert users[0]["reason"] == "cancelled at --max-duration"
    assert {n["reason"] for n in users[1:]} == {"not started: over --max-duration"}
    assert data["checked"] and all(c["table"] != "users" for c in data["checked"])
    reasons = data["not_checked"]
    assert data["summary"].endswith(f"; {len(reasons)} not checked within --max-duration 2s")


def test_bad_max_duration_is_one_line(db):
    for value in ("0", "soon", "-5"):
        proc = run_ops("playbook", "integrity", "--max-duration", value, env=db.env)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "--max-duration" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_a_check_whose_server_process_dies_is_critical_and_the_run_stops(db):
    """A crash while reading an index is a sign of damage: said so, CRITICAL, nothing checked after it."""
    db.execute("CREATE EXTENSION amcheck")
    with psycopg.connect(db.dsn) as locker:
        locker.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")  # the check of users' indexes waits here
        proc = subprocess.Popen(
            [str(OPS_BIN), "playbook", "integrity", "--json"], env=db.env, stdout=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 20
        while not (
            pids := db.fetchall(
                "SELECT pid FROM pg_stat_activity WHERE query LIKE %s AND wait_event_type = 'Lock'",
                ("%bt_index_check%",),
            )
        ):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        db.execute("SELECT pg_terminate_backend(%s)", (pids[0][0],))
        out, _ = proc.communicate(timeout=30)
    data = json.loads(out)
    assert proc.returncode == 2 and data["status"] == "CRITICAL", out
    [dead] = data["corrupt"]
    assert dead["table"] == "users" and "the server process checking it ended" in dead["error"]
    assert not any(c["table"] == "users" for c in data["checked"])


def test_writes_go_on_while_it_checks(db):
    """Safe on a primary: while bt_index_check (heapallindexed) reads content_jobs' indexes, the checker
    holds nothing stronger than AccessShareLock, and an INSERT and an UPDATE there go through at once."""
    from tests.playbook_data import load_jobs

    load_jobs(db.dsn, jobs=100_000)
    db.execute("CREATE EXTENSION amcheck")
    proc = subprocess.Popen(
        [str(OPS_BIN), "playbook", "integrity", "--heapallindexed", "--schema", "public"],
        env=db.env,
        stdout=subprocess.PIPE,
        text=True,
    )
    modes, writes = set(), []
    with db.connect() as writer:
        writer.execute("SET lock_timeout = '1s'")
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            held = db.fetchall(
                "SELECT l.mode, c.relname FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "JOIN pg_class c ON c.oid = l.relation WHERE a.query LIKE %s AND a.pid <> pg_backend_pid() "
                "AND a.state = 'active'",
                ("%bt_index_check%",),
            )
            modes |= {m for m, _ in held}
            if any(rel.startswith("content_jobs") or rel.startswith("idx_content_jobs") for _, rel in held):
                t0 = time.monotonic()
                writer.execute("INSERT INTO content_jobs (org_id, user_id, status) VALUES (1, 1, 'queued')")
                writer.execute("UPDATE content_jobs SET status = 'done' WHERE id = 1")
                writes.append(time.monotonic() - t0)
            time.sleep(0.01)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and out.startswith("OK: "), out
    assert modes == {"AccessShareLock"}, modes
    assert writes and max(writes) < 0.5, writes  # each write went through during a check, none waited
