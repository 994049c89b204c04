"""ops maintain on a real PostgreSQL with real bloat (bulk delete + VACUUM), run as a user would."""

from __future__ import annotations

import json
import subprocess
import threading
import time

import psycopg
import pytest

from ops.db import advisory_lock, connect
from ops.maintain import LOCK_NAME, sample
from tests.conftest import run_ops

SEED_REDUNDANT = {
    "ix_users_id": "users_pkey",
    "ix_sessions_id": "sessions_pkey",
    "idx_content_jobs_user_id": "idx_content_jobs_user_created_desc",
}
JOBS_INDEXES = {
    "content_jobs_pkey",
    "idx_content_jobs_org_created_desc",
    "idx_content_jobs_status",
    "idx_content_jobs_user_id",
    "idx_content_jobs_user_created_desc",
}


def _index_files(db) -> dict[str, tuple[int, int]]:
    rows = db.fetchall(
        "SELECT c.relname, c.relfilenode, pg_relation_size(c.oid) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'i' AND n.nspname = 'public'"
    )
    return {name: (node, size) for name, node, size in rows}


def test_usage_names_the_seeds_redundant_indexes(db, ops):
    ops("migrate", "apply", check=True)
    proc = ops("maintain", "usage", "--json")
    report = json.loads(proc.stdout)
    assert proc.returncode == 1, proc.stderr  # WARNING
    found = {f["index"]: f["covered_by"] for f in report["redundant"]}
    assert found == SEED_REDUNDANT
    fixes = {f["index"]: f for f in report["redundant"]}
    assert fixes["ix_users_id"]["fix"] == "DROP INDEX CONCURRENTLY public.ix_users_id;"  # the app's, no migration
    declared = fixes["idx_content_jobs_user_id"]  # migration 0607bc5b8539_03 builds it: a drop migration instead
    assert declared["declared_by"] == "0607bc5b8539_03_idx_content_jobs_user_id"
    assert declared["drop_migration"] == "sql/migrations/0607bc5b853a_01_drop_idx_content_jobs_user_id.sql"
    # young counters prove nothing: no unused finding until they are old enough
    assert report["unused"] == [] and report["stats"]["unused_meaningful"] is False
    assert report["invalid"] == []

    proc = ops("maintain", "usage", "--json", "--min-stats-age", "0")
    unused = {f["index"] for f in json.loads(proc.stdout)["unused"]}
    assert "idx_users_deleted_at" in unused
    # unique, primary-key and constraint-backed indexes are never "unused"
    assert not unused & {"ix_users_email", "users_pkey", "uq_billing_events_provider_event_id_composite"}

    # nothing was dropped
    names = set(_index_files(db))
    assert set(SEED_REDUNDANT) <= names


def test_usage_reports_invalid_as_critical(db, ops):
    db.execute("INSERT INTO users (email) VALUES ('a@x'), ('a@x')")
    with pytest.raises(psycopg.errors.UniqueViolation):
        db.execute("CREATE UNIQUE INDEX CONCURRENTLY ux_users_email_dup ON users (email)")
    proc = ops("maintain", "usage", "--json")
    report = json.loads(proc.stdout)
    assert proc.returncode == 2
    assert [f["index"] for f in report["invalid"]] == ["ux_users_email_dup"]
    proc = ops("maintain", "usage")
    assert proc.stdout.splitlines()[0].startswith("CRITICAL: 1 invalid")  # the verdict comes first


def test_reindex_rebuilds_exactly_the_bloated_indexes(bloated, ops):
    db = bloated
    db.execute("CREATE EXTENSION pgstattuple")
    proc = ops("maintain", "bloat", "--exact", "--min-size", "64kB", "--json")
    report = json.loads(proc.stdout)
    assert proc.returncode == 2, proc.stderr  # CRITICAL: ~90% bloat
    assert {f["index"] for f in report["bloated"]} == JOBS_INDEXES
    # every candidate is measured with pgstatindex; a deduplicated btree is decided by the estimate
    assert all(f["exact_pct"] is not None for f in report["bloated"])
    by = {f["index"]: f["measured_by"] for f in report["bloated"]}
    assert by["content_jobs_pkey"] == "pgstatindex"  # unique: no posting lists

    before = _index_files(db)
    proc = ops("maintain", "reindex", "--min-size", "64kB", "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    after = _index_files(db)

    rebuilt = {e["index"] for e in summary["rebuilt"]}
    assert rebuilt == JOBS_INDEXES
    changed = {name for name in before if before[name][0] != after[name][0]}
    assert changed == JOBS_INDEXES  # relfilenode changed there and nowhere else
    given_back = sum(before[n][1] - after[n][1] for n in JOBS_INDEXES)
    assert given_back > 0.7 * sum(before[n][1] for n in JOBS_INDEXES)
    assert summary["bytes_reclaimed"] == given_back
    for e in summary["rebuilt"]:
        assert e["bytes_after"] < e["bytes_before"]
    # largest gain first
    gains = [e["bytes_before"] for e in summary["rebuilt"]]
    assert gains == sorted(gains, reverse=True)

    # a second run finds nothing worth doing
    proc = ops("maintain", "reindex", "--min-size", "64kB", "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["rebuilt"] == []
    assert _index_files(db) == after


def _interrupted_reindex(db, index: str) -> tuple[threading.Thread, int, psycopg.Connection]:
    """Start REINDEX INDEX CONCURRENTLY held up by an open writer; return once <index>_ccnew exists."""
    blocker = psycopg.connect(db.dsn)
    blocker.execute("UPDATE content_jobs SET topic = topic WHERE id = (SELECT min(id) FROM content_jobs)")
    reindexer = psycopg.connect(db.dsn, autocommit=True)
    pid = reindexer.info.backend_pid
    errors: list[BaseException] = []

    def go() -> None:
        try:
            reindexer.execute(f"REINDEX INDEX CONCURRENTLY {index}")
        except psycopg.Error as exc:
            errors.append(exc)
        finally:
            reindexer.close()

    t = threading.Thread(target=go, daemon=True)
    t.start()
    deadline = time.monotonic() + 20
    while not db.fetchall("SELECT 1 FROM pg_class WHERE relname = %s", (f"{index}_ccnew",)):
        assert time.monotonic() < deadline, "REINDEX did not start"
        time.sleep(0.05)
    return t, pid, blocker


def test_interrupted_reindex_is_recovered_by_the_next_run(bloated, ops):
    db = bloated
    db.execute("CREATE EXTENSION pgstattuple")
    t, pid, blocker = _interrupted_reindex(db, "idx_content_jobs_status")
    try:
        # while the build runs, its _ccnew is left alone
        proc = ops("maintain", "reindex", "--dry-run", "--min-size", "64kB", "--json", "--lock-timeout", "0.5")
        summary = json.loads(proc.stdout)
        assert proc.returncode == 0, proc.stderr
        assert summary["dropped_leftovers"] == []
        assert {"index": "idx_content_jobs_status_ccnew", "reason": "leftover in use by a running build"} in summary[
            "skipped"
        ]
        # now really interrupt it: cancel the backend while it waits for the writer
        db.execute("SELECT pg_cancel_backend(%s)", (pid,))
        t.join(10)
    finally:
        blocker.rollback()
        blocker.close()
    invalid = db.fetchall("SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid")
    assert invalid == [("idx_content_jobs_status_ccnew",)]
    assert (
        json.loads(ops("maintain", "usage", "--json").stdout)["invalid"][0]["index"] == "idx_content_jobs_status_ccnew"
    )

    proc = ops("maintain", "reindex", "--min-size", "64kB", "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert [d["index"] for d in summary["dropped_leftovers"]] == ["idx_content_jobs_status_ccnew"]
    assert "idx_content_jobs_status" in {e["index"] for e in summary["rebuilt"]}
    assert db.fetchall("SELECT 1 FROM pg_index WHERE NOT indisvalid") == []


def test_without_pgstattuple_falls_back_to_the_estimate(bloated, ops):
    db = bloated
    proc = ops("maintain", "bloat", "--exact", "--min-size", "64kB", "--json")
    report = json.loads(proc.stdout)
    assert report["exact_available"] is False
    assert any("pgstattuple is not installed" in n for n in report["notes"])
    assert {f["index"] for f in report["bloated"]} == JOBS_INDEXES
    assert {f["measured_by"] for f in report["bloated"]} == {"estimate"}
    proc = ops("maintain", "bloat", "--exact", "--min-size", "64kB")
    assert "pgstattuple is not installed" in proc.stderr

    before = _index_files(db)
    proc = ops("maintain", "reindex", "--min-size", "64kB", "--json")
    assert proc.returncode == 0, proc.stderr
    after = _index_files(db)
    assert {n for n in before if before[n][0] != after[n][0]} == JOBS_INDEXES


def test_reindex_refuses_when_the_disk_cannot_hold_a_copy(bloated, ops):
    before = _index_files(bloated)
    proc = ops("maintain", "reindex", "--min-size", "64kB", "--min-free", "1000PB", "--estimate-only")
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ops: error: reindex:") and "free on the disk" in last
    assert _index_files(bloated) == before


def test_analyze_only_stale_tables(db, ops):
    with connect(db.dsn) as conn:
        sample.fill(conn, users=2000, orgs=50, sessions=5000, jobs=3000)  # ends with ANALYZE
        for t in ("users", "sessions", "content_jobs", "organizations"):
            conn.execute(f"ALTER TABLE public.{t} SET (autovacuum_enabled = off)")
    # the loading backend reports its row counts when it ends: analyze after that
    time.sleep(0.5)
    db.execute("ANALYZE")
    db.execute("UPDATE sessions SET expires_at = now() WHERE id % 2 = 0")  # half the table: stale
    db.execute("UPDATE users SET name = name WHERE id <= 10")  # 10 of 2000 rows: fresh
    db.execute("CREATE TABLE audit_log (id bigint)")  # never analyzed
    time.sleep(0.5)
    analyzed_at = dict(db.fetchall("SELECT relname, last_analyze FROM pg_stat_user_tables"))

    proc = ops("maintain", "analyze", "--dry-run", "--json")
    assert {t["table"] for t in json.loads(proc.stdout)["analyzed"]} == {"sessions", "audit_log"}
    proc = ops("maintain", "analyze", "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert {t["table"] for t in summary["analyzed"]} == {"sessions", "audit_log"}
    time.sleep(0.5)
    now = dict(db.fetchall("SELECT relname, last_analyze FROM pg_stat_user_tables"))
    assert now["sessions"] > analyzed_at["sessions"]
    assert now["users"] == analyzed_at["users"]  # fresh ones left alone


def test_analyze_carries_on_past_a_failure(db, ops):
    db.execute("CREATE TABLE t_locked (id int); CREATE TABLE t_free (id int)")
    holder = psycopg.connect(db.dsn)
    holder.execute("LOCK TABLE t_locked IN SHARE UPDATE EXCLUSIVE MODE")
    try:
        proc = ops("maintain", "analyze", "--json", "--lock-timeout", "0.2")
    finally:
        holder.rollback()
        holder.close()
    assert proc.returncode == 1
    summary = json.loads(proc.stdout)
    assert [f["table"] for f in summary["failed"]] == ["t_locked"]
    assert "t_free" in {t["table"] for t in summary["analyzed"]}
    assert (
        proc.stderr.strip().splitlines()[-1].startswith("ops: error: analyze: 1 table(s) failed, first public.t_locked")
    )


def test_metrics_files_pass_promtool(bloated, ops, tmp_path):
    bloated.execute("CREATE EXTENSION pgstattuple")
    runs = {
        "usage": ["maintain", "usage"],
        "bloat": ["maintain", "bloat", "--exact", "--min-size", "64kB"],
        "reindex": ["maintain", "reindex", "--min-size", "64kB"],
        "analyze": ["maintain", "analyze"],
    }
    for job, args in runs.items():
        path = tmp_path / f"s10_{job}.prom"
        proc = ops(*args, "--metrics-file", str(path))
        assert proc.returncode < 3, proc.stderr
        text = path.read_text()
        check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
        assert check.returncode == 0, f"{job}: {check.stdout}{check.stderr}"
        assert f's10_maintenance_exit_code{{job="{job}"}}' in text
        assert not list(tmp_path.glob("*.prom.*")), "temporary file left behind"
    assert "s10_reindex_reclaimed_bytes" in (tmp_path / "s10_reindex.prom").read_text()
    assert 's10_index_findings{kind="redundant"} 3.0' in (tmp_path / "s10_usage.prom").read_text()


def test_overlapping_runs_never_run_together(db, ops):
    with connect(db.dsn) as conn, advisory_lock(conn, LOCK_NAME, 1):
        for args in (["maintain", "reindex"], ["maintain", "analyze"]):
            t0 = time.monotonic()
            proc = ops(*args, "--lock-wait", "0.5")
            assert proc.returncode == 1
            lines = proc.stderr.strip().splitlines()
            assert len(lines) == 1 and "another 'maintain' run holds the lock" in lines[0]
            assert time.monotonic() - t0 < 10


def test_unreachable_database_is_unknown(pg_cluster, tmp_path):
    env = {"PATH": "/usr/bin:/bin", "PGHOST": str(tmp_path), "PGPORT": "1", "PGUSER": "x", "PGDATABASE": "x"}
    for args in (["usage"], ["bloat"]):
        metrics = tmp_path / "m.prom"
        proc = run_ops("maintain", *args, "--metrics-file", str(metrics), env=env)
        assert proc.returncode == 3
        assert proc.stdout.startswith("UNKNOWN: cannot connect to the database")
        assert 's10_maintenance_exit_code{job="' + args[0] + '"} 3.0' in metrics.read_text()
    for args in (["reindex"], ["analyze"]):
        proc = run_ops("maintain", *args, env=env)
        assert proc.returncode == 3
        assert len(proc.stderr.strip().splitlines()) == 1


def test_bad_input_is_one_line(db, ops):
    for args, word in (
        (["reindex", "--min-size", "10XB"], "--min-size"),
        (["reindex", "--max-duration", "soon"], "--max-duration"),
        (["usage", "--min-stats-age", "x"], "--min-stats-age"),
        (["usage", "--metrics-file", "/nonexistent-dir/x.prom"], "--metrics-file"),
        (["bloat", "--warning", "70", "--critical", "50"], "--critical"),
    ):
        proc = ops("maintain", *args)
        assert proc.returncode == 2, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and word in lines[0] and "Traceback" not in proc.stderr


def test_reindex_stays_within_its_time_budget(bloated, ops):
    before = _index_files(bloated)
    proc = ops("maintain", "reindex", "--min-size", "64kB", "--max-duration", "1ms", "--estimate-only", "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["rebuilt"] == []
    over = {s["index"] for s in summary["skipped"] if s["reason"] == "over the time budget (--max-duration)"}
    assert over == JOBS_INDEXES
    assert _index_files(bloated) == before


def test_reindex_gives_up_on_a_blocker_and_names_it(bloated, ops):
    holder = psycopg.connect(bloated.dsn)
    holder.execute("LOCK TABLE content_jobs IN SHARE UPDATE EXCLUSIVE MODE")
    holder_pid = holder.info.backend_pid
    try:
        time.sleep(1.2)  # an old transaction, as the pre-flight check sees one
        proc = ops(
            "maintain", "reindex", "--min-size", "64kB", "--estimate-only", "--lock-timeout", "0.2", "--retries", "1"
        )
    finally:
        holder.rollback()
        holder.close()
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ops: error: reindex: 5 failed") and f"pid {holder_pid}" in last
    assert bloated.fetchall("SELECT 1 FROM pg_index WHERE NOT indisvalid") == []
