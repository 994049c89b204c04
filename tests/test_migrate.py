"""ops migrate against a real PostgreSQL: fresh, rerun, adopt, repair, drift, blocked, concurrent,
tampered, duplicates, unreachable, bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from pathlib import Path

import psycopg
import pytest

from ops import SQL_DIR
from tests.conftest import OPS_BIN

MIGRATIONS = SQL_DIR / "migrations"
S10_NAMED = {  # the 15 indexes of the seed's set that the migrations declare
    "ix_users_email",
    "idx_users_deleted_at",
    "ix_sessions_token",
    "idx_sessions_user_id",
    "idx_organizations_owner_id",
    "idx_memberships_org_user",
    "idx_subscriptions_org_status",
    "idx_usage_counters_org_period",
    "idx_content_jobs_org_created_desc",
    "idx_content_jobs_status",
    "idx_content_jobs_user_id",
    "idx_content_jobs_user_created_desc",
    "idx_content_artifacts_job_type",
    "idx_content_artifacts_created_desc",
    "uq_billing_events_provider_event_id_composite",
}


def index_oids(db) -> dict[str, int]:
    rows = db.fetchall(
        "SELECT c.relname, c.relfilenode FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'"
    )
    return dict(rows)


def invalid_indexes(db) -> list[str]:
    return [r[0] for r in db.fetchall("SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid")]


def status(ops) -> dict:
    proc = ops("migrate", "status", "--json")
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout)


def test_fresh_database_gets_every_index_valid_and_exact(db, ops):
    assert status(ops)["pending"], "a fresh database has pending migrations"
    proc = ops("migrate", "apply", check=True)
    assert "done: 14 built, 1 adopted" in proc.stderr  # idx_content_artifacts_job_type came with the app
    st = status(ops)
    assert st["pending"] == [] and st["problems"] == [] and len(st["applied"]) == 15
    assert S10_NAMED <= set(index_oids(db))
    verify = ops("migrate", "verify", "--json")
    assert verify.returncode == 0 and json.loads(verify.stdout)["ok"]
    rows = db.fetchall("SELECT id, checksum, duration_ms, applied_by, outcome FROM ops_migrations")
    assert len(rows) == 15 and all(len(r[1]) == 64 and r[2] >= 0 and "@" in r[3] for r in rows)
    con = db.fetchall(
        "SELECT contype FROM pg_constraint WHERE conname = 'uq_billing_events_provider_event_id_composite'"
    )
    assert con == [("u",)]


def test_rerun_rebuilds_nothing(db, ops):
    ops("migrate", "apply", check=True)
    before = index_oids(db)
    proc = ops("migrate", "apply", check=True)
    assert "nothing to do" in proc.stderr
    assert index_oids(db) == before
    assert ops("migrate", "status").returncode == 0


def test_adopts_what_the_app_already_built(db, ops):
    db.execute((Path(__file__).parent / "data" / "app_indexes_up_to_0607bc5b8537.sql").read_text())
    before = index_oids(db)
    proc = ops("migrate", "apply", "--json", check=True)
    summary = json.loads(proc.stdout)
    assert sorted(summary["applied"]) == sorted(
        m for m in status(ops)["applied"] if m.startswith(("0607bc5b8538", "0607bc5b8539"))
    )
    assert len(summary["adopted"]) == 9  # 0607bc5b8535 (2) and 0607bc5b8537 (7, with the app-model index)
    after = index_oids(db)
    for name, filenode in before.items():
        assert after[name] == filenode, f"{name} was rebuilt"
    assert S10_NAMED <= set(after)
    assert ops("migrate", "verify").returncode == 0


def test_invalid_index_is_rebuilt_not_kept(db, ops):
    db.execute("INSERT INTO users (email) VALUES ('dup@example.com'), ('dup@example.com')")
    with pytest.raises(psycopg.errors.UniqueViolation):
        db.execute("CREATE UNIQUE INDEX CONCURRENTLY ix_users_email ON users (email)")
    assert invalid_indexes(db) == ["ix_users_email"]
    db.execute("DELETE FROM users WHERE id = (SELECT max(id) FROM users)")
    st = status(ops)
    assert "0607bc5b8535_01_ix_users_email" in st["pending"]
    proc = ops("migrate", "apply", check=True)
    assert "rebuild ix_users_email: INVALID" in proc.stderr
    assert invalid_indexes(db) == []
    assert ops("migrate", "verify").returncode == 0


def test_drifted_definition_is_rebuilt(db, ops):
    ops("migrate", "apply", check=True)
    # Someone "fixed" it by hand without DESC; IF NOT EXISTS would call this done.
    db.execute("DROP INDEX idx_content_jobs_user_created_desc")
    db.execute("CREATE INDEX idx_content_jobs_user_created_desc ON content_jobs (user_id, created_at)")
    verify = ops("migrate", "verify", "--json")
    assert verify.returncode == 2
    problems = json.loads(verify.stdout)["problems"]
    assert [p["index"] for p in problems] == ["idx_content_jobs_user_created_desc"]
    assert "definition differs" in problems[0]["problem"]
    st = status(ops)
    assert st["needs_apply"] and st["problems"]
    ops("migrate", "apply", check=True)
    (indexdef,) = db.fetchall("SELECT pg_get_indexdef('idx_content_jobs_user_created_desc'::regclass)")[0]
    assert "created_at DESC" in indexdef
    assert ops("migrate", "verify").returncode == 0


def _hold_write_lock(db, seconds_old: float = 1.2):
    """An open transaction that wrote to content_jobs (what a stuck app request looks like)."""
    conn = db.connect(autocommit=False)
    conn.execute("INSERT INTO users (email) VALUES ('blocker@example.com')")
    conn.execute("INSERT INTO organizations (name, owner_id) SELECT 'o', max(id) FROM users")
    conn.execute("INSERT INTO content_jobs (org_id, user_id) SELECT max(o.id), max(o.owner_id) FROM organizations o")
    pid = conn.info.backend_pid
    time.sleep(seconds_old)
    return conn, pid


def test_blocked_build_gives_up_names_blocker_and_leaves_no_invalid_index(db, ops):
    ops("migrate", "apply", "--to", "0607bc5b8538", check=True)
    blocker, pid = _hold_write_lock(db)
    try:
        t0 = time.monotonic()
        proc = ops("migrate", "apply", "--lock-timeout", "0.5", "--retries", "1")
        elapsed = time.monotonic() - t0
        assert proc.returncode == 1
        assert f"pid {pid}" in proc.stderr and "idle in transaction" in proc.stderr
        assert "gave up after 2 attempts" in proc.stderr
        assert "Traceback" not in proc.stderr
        assert elapsed < 15
        assert invalid_indexes(db) == []
        assert any(m.startswith("0607bc5b8539") for m in status(ops)["pending"])
    finally:
        blocker.rollback()
        blocker.close()
    ops("migrate", "apply", "--lock-timeout", "0.5", check=True)
    assert status(ops)["pending"] == []
    assert invalid_indexes(db) == []


def test_two_runs_never_overlap(db, ops):
    blocker, pid = _hold_write_lock(db)
    first = subprocess.Popen(
        [str(OPS_BIN), "migrate", "apply", "--lock-timeout", "1", "--retries", "20"],
        env=db.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.5)  # the first run holds the advisory lock and waits for the blocker
        second = ops("migrate", "apply", "--wait", "1")
        assert second.returncode == 1
        assert "another 'migrate' run holds the lock" in second.stderr
        assert "s10-ops" in second.stderr
    finally:
        blocker.rollback()
        blocker.close()
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert status(ops)["pending"] == []
    third = ops("migrate", "apply", "--wait", "1", check=True)
    assert "nothing to do" in third.stderr


def test_concurrent_runs_serialise_and_both_succeed(db, ops):
    results = []

    def run() -> None:
        results.append(ops("migrate", "apply", "--wait", "60"))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
    assert sum("nothing to do" in r.stderr for r in results) == 1
    assert len(db.fetchall("SELECT id FROM ops_migrations")) == 15


def test_tampered_migration_is_refused(db, ops, tmp_path):
    ops("migrate", "apply", check=True)
    changed = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, changed)
    target = changed / "0607bc5b8539_05_idx_content_artifacts_created_desc.sql"
    target.write_text(target.read_text().replace("(created_at DESC)", "(created_at)"))
    before = index_oids(db)
    proc = ops("migrate", "apply", "--migrations-dir", str(changed))
    assert proc.returncode == 1
    assert "changed on disk since they ran: 0607bc5b8539_05_idx_content_artifacts_created_desc" in proc.stderr
    assert index_oids(db) == before
    st = json.loads(ops("migrate", "status", "--json", "--migrations-dir", str(changed)).stdout)
    assert st["tampered"][0]["migration"] == "0607bc5b8539_05_idx_content_artifacts_created_desc"


def test_duplicate_rows_name_the_key_and_leave_nothing_behind(db, ops):
    db.execute(
        "INSERT INTO billing_events (provider, provider_event_id) VALUES ('stripe', 'evt_1'), ('stripe', 'evt_1')"
    )
    proc = ops("migrate", "apply")
    assert proc.returncode == 1
    assert "uq_billing_events_provider_event_id_composite" in proc.stderr
    assert "Key (provider, provider_event_id)=(stripe, evt_1) is duplicated" in proc.stderr
    assert len(proc.stderr.strip().splitlines()[-1]) > 0 and "Traceback" not in proc.stderr
    assert invalid_indexes(db) == []
    assert "uq_billing_events_provider_event_id_composite" not in index_oids(db)
    st = status(ops)
    assert "0607bc5b8537_07_uq_billing_events_provider_event_id_composite" in st["pending"]
    assert db.fetchall("SELECT count(*) FROM billing_events")[0][0] == 2  # no data touched


def test_unreachable_database_is_one_clear_line(db, ops):
    env = dict(db.env, PGHOST="127.0.0.1", PGPORT="1")
    from tests.conftest import run_ops

    # the action says it on stderr; the checks give their verdict on stdout, where monitoring reads it
    for args, out in (
        (("migrate", "apply"), "stderr"),
        (("migrate", "status"), "stdout"),
        (("migrate", "verify"), "stdout"),
    ):
        proc = run_ops(*args, env=env)
        assert proc.returncode == 3
        said, other = (proc.stderr, proc.stdout) if out == "stderr" else (proc.stdout, proc.stderr)
        lines = said.strip().splitlines()
        want = (
            "ops: error: cannot connect to the database"
            if out == "stderr"
            else "UNKNOWN: cannot connect to the database"
        )
        assert len(lines) == 1 and lines[0].startswith(want), proc
        assert "cannot connect" not in other


@pytest.mark.parametrize(
    "args, message",
    [
        (("migrate", "apply", "--to", "deadbeef0000"), "unknown revision 'deadbeef0000'"),
        (("migrate", "apply", "--lock-timeout", "soon"), "--lock-timeout: 'soon' is not a number from 0.05 to 600"),
        (("migrate", "apply", "--frobnicate"), "No such option: --frobnicate"),
        (("migrate", "status", "--dsn", "host=x password=hunter2"), "--dsn must not contain a password"),
        (("migrate", "status", "--dsn", "nonsense"), "bad --dsn"),
    ],
)
def test_bad_input_is_one_line(db, ops, args, message):
    proc = ops(*args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert "hunter2" not in proc.stderr
    assert db.fetchall("SELECT to_regclass('ops_migrations')")[0][0] is None


@pytest.mark.parametrize(
    "content, message",
    [
        ("CREATE INDEX CONCURRENTLY idx_x ON users (;", "malformed SQL"),
        ("CREATE INDEX idx_x ON users (email);", "must be CONCURRENTLY"),
        ("CREATE INDEX CONCURRENTLY ON users (email);", "explicit index name"),
        ("DROP TABLE users;", "unsupported statement"),
        ("CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_x ON users (email);", "IF NOT EXISTS"),
    ],
)
def test_malformed_migration_applies_nothing(db, ops, tmp_path, content, message):
    bad = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, bad)
    (bad / "0607bc5b8540_01_idx_x.sql").write_text(content)
    proc = ops("migrate", "apply", "--migrations-dir", str(bad))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "0607bc5b8540_01_idx_x.sql" in lines[0] and message in lines[0], proc.stderr
    assert db.fetchall("SELECT to_regclass('ops_migrations')")[0][0] is None
    assert "ix_users_email" not in index_oids(db)


def test_dry_run_changes_nothing(db, ops):
    proc = ops("migrate", "apply", "--dry-run", check=True)
    assert "would build   idx_content_jobs_user_created_desc" in proc.stderr
    assert "would keep    idx_content_artifacts_job_type" in proc.stderr
    assert db.fetchall("SELECT to_regclass('ops_migrations')")[0][0] is None
    assert "idx_content_jobs_user_created_desc" not in index_oids(db)


def test_long_build_shows_progress_on_a_terminal(db, tmp_path):
    """On a tty, ops reads pg_stat_progress_create_index and shows the build's phase as it goes."""
    import os
    import pty

    db.execute(
        "INSERT INTO users (email) SELECT 'u' || g || '@example.com' FROM generate_series(1, 1000) g;"
        "INSERT INTO organizations (name, owner_id) SELECT 'org', id FROM users;"
        "SET session_replication_role = replica;"  # bulk load: skip the FK triggers
        "INSERT INTO content_jobs (org_id, user_id, created_at) "
        "SELECT 1 + g % 1000, 1 + g % 1000, now() - g * interval '1 second' FROM generate_series(1, 1000000) g"
    )
    primary, replica = pty.openpty()
    proc = subprocess.Popen(
        [str(OPS_BIN), "migrate", "apply"],
        env=db.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=replica,
        text=True,
    )
    os.close(replica)
    chunks = []
    while True:
        try:
            data = os.read(primary, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=300)
    os.close(primary)
    screen = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0, screen
    assert "build idx_content_jobs_user_created_desc" in screen
    assert "building index" in screen  # a phase name read from pg_stat_progress_create_index
