"""ops playbook index-health on a real PostgreSQL: one screen, each finding with its fix, read-only."""

from __future__ import annotations

import json


def health(ops, *args: str):
    proc = ops("playbook", "index-health", "--json", *args)
    return proc, json.loads(proc.stdout)


def checks(report: dict, check: str) -> list[dict]:
    return [f for f in report["findings"] if f["check"] == check]


def test_the_seeds_set_names_its_redundant_indexes_and_stale_statistics(db, ops):
    ops("migrate", "apply", check=True)
    proc, report = health(ops)
    assert proc.returncode == 1 and report["status"] == "WARNING"
    redundant = {f["message"].split(" ")[0] for f in checks(report, "redundant")}
    assert redundant == {"users.ix_users_id", "sessions.ix_sessions_id", "content_jobs.idx_content_jobs_user_id"}
    fixes = {f["message"].split(" ")[0]: f["fix"] for f in checks(report, "redundant")}
    # the app's own copies of its primary keys: plain DDL; the one a migration builds: a drop migration
    assert fixes["users.ix_users_id"].startswith("DROP INDEX CONCURRENTLY public.ix_users_id;")
    assert "DROP INDEX" not in fixes["content_jobs.idx_content_jobs_user_id"].split("(")[0]
    assert "0607bc5b853a_01_drop_idx_content_jobs_user_id.sql" in fixes["content_jobs.idx_content_jobs_user_id"]
    stale = checks(report, "stale-statistics")
    assert stale and all(f["fix"].startswith("ANALYZE ") for f in stale)
    assert checks(report, "unused-not-judged"), "young counters: unused is not judged"


def test_invalid_index_is_critical_with_its_repair(db, ops):
    db.execute("INSERT INTO users (email) VALUES ('a@example.com'), ('a@example.com')")
    try:
        db.execute("CREATE UNIQUE INDEX CONCURRENTLY ix_users_email ON users (email)")
    except Exception:  # noqa: BLE001 - the failed build is the point: it leaves an INVALID index
        pass
    proc, report = health(ops)
    assert proc.returncode == 2 and report["status"] == "CRITICAL"
    (invalid,) = checks(report, "invalid")
    assert "users.ix_users_email" in invalid["message"] and "REINDEX INDEX CONCURRENTLY" in invalid["fix"]
    human = ops("playbook", "index-health")
    assert human.stdout.splitlines()[0].startswith("CRITICAL: users.ix_users_email")


def test_bloat_is_reported_with_the_reindex_to_run_and_nothing_changes(bloated, ops):
    before = bloated.fetchall("SELECT relname, relfilenode FROM pg_class WHERE relkind = 'i' ORDER BY 1")
    proc, report = health(ops, "--exact")
    assert proc.returncode in (1, 2)
    bloat = checks(report, "bloat")
    assert bloat and all("content_jobs." in f["message"] for f in bloat)
    assert all("REINDEX INDEX CONCURRENTLY" in f["fix"] for f in bloat)
    after = bloated.fetchall("SELECT relname, relfilenode FROM pg_class WHERE relkind = 'i' ORDER BY 1")
    assert after == before  # a diagnosis changes nothing


def test_a_healthy_database_is_ok(db, ops):
    ops("migrate", "apply", check=True)
    db.execute(
        "DROP INDEX ix_users_id; DROP INDEX ix_sessions_id; DROP INDEX idx_content_jobs_user_id;"
        "INSERT INTO users (email) SELECT 'u' || g FROM generate_series(1, 100) g"
    )
    db.execute("ANALYZE")  # its own transaction: the insert's counters are flushed before
    proc, report = health(ops)
    assert proc.returncode == 0, report
    assert report["summary"].startswith("OK: ")


def test_unreachable_is_unknown(db, ops):
    from tests.conftest import run_ops

    proc = run_ops("playbook", "index-health", env=dict(db.env, PGHOST="127.0.0.1", PGPORT="1"))
    assert proc.returncode == 3
    # a check: its verdict on stdout, where monitoring reads it; said once
    assert proc.stdout.startswith("UNKNOWN: cannot connect") and len(proc.stdout.strip().splitlines()) == 1
    assert "cannot connect" not in proc.stderr
