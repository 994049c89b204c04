"""ops playbook slow-query against a real PostgreSQL: the diagnosis, and that nothing ever changes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from ops.playbook.sqlshape import analyse
from tests.conftest import TEMPLATE_DB, Database, run_ops
from tests.playbook_data import (
    SEED_SLOW_QUERY,
    bulk_load_for_user,
    grant_diagnosis_role,
    hypopg_available,
    load_jobs,
)

JOBS_TEMPLATE = "s10_jobs_template"


@pytest.fixture(scope="module")
def jobs_template(pg_cluster) -> Iterator[str]:
    """A template database with the app's tables and 200k content_jobs, loaded once per module."""
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(JOBS_TEMPLATE)))
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(JOBS_TEMPLATE), sql.Identifier(TEMPLATE_DB))
        )
    load_jobs(pg_cluster.dsn(JOBS_TEMPLATE))
    grant_diagnosis_role(pg_cluster.dsn(JOBS_TEMPLATE))
    yield JOBS_TEMPLATE
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(JOBS_TEMPLATE)))


@pytest.fixture
def jobs_db(pg_cluster, jobs_template) -> Iterator[Database]:
    """A fresh copy of the loaded database, before the S10 indexes, freshly analyzed."""
    name = f"t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(jobs_template))
        )
    database = Database(pg_cluster, name)
    database.execute("ANALYZE")  # statistics counters are per database: start this one fresh
    yield database
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def slow_query(database: Database, *args: str) -> tuple[int, dict]:
    proc = run_ops("playbook", "slow-query", *args, "--json", env=database.env)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.stdout, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def checks(report: dict) -> dict[str, dict]:
    return {f["check"]: f for f in report["findings"]}


def job_count(database: Database) -> int:
    return database.fetchall("SELECT count(*) FROM content_jobs")[0][0]


def index_names(database: Database) -> set[str]:
    return {r[0] for r in database.fetchall("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")}


# ----------------------------------------------------------------------------------------- the diagnosis


def test_seed_query_before_s10_indexes_is_a_seq_scan_and_hypopg_proves_the_index(jobs_db):
    if not hypopg_available(jobs_db.cluster.dsn()):
        pytest.skip("postgresql-15-hypopg is not installed (scripts/system-packages.sh installs it)")
    jobs_db.execute("CREATE EXTENSION hypopg")
    before = index_names(jobs_db)

    code, report = slow_query(jobs_db, SEED_SLOW_QUERY, "--params", "42")

    assert code == 1 and report["status"] == "WARNING"
    found = checks(report)
    assert "seq-scan" in found and "content_jobs" in found["seq-scan"]["message"]
    assert report["summary"].startswith("WARNING: sequential scan of content_jobs")
    assert "CREATE INDEX CONCURRENTLY" in found["seq-scan"]["fix"]
    assert 'ON "public"."content_jobs" ("user_id", "created_at" DESC);' in found["seq-scan"]["fix"]
    [suggestion] = report["suggestions"]
    assert suggestion["columns"] == ["user_id", "created_at DESC"]
    assert suggestion["covered_by"] is None
    hypo = suggestion["hypopg"]
    assert hypo["planner_uses_it"] and hypo["proven"]
    assert hypo["cost_after"] * 2 <= hypo["cost_before"]
    assert report["safety"] == {**report["safety"], "analyze": True, "read_only": True, "rolled_back": True}
    assert index_names(jobs_db) == before  # hypothetical: nothing was built

    human = run_ops("playbook", "slow-query", SEED_SLOW_QUERY, "-p", "42", env=jobs_db.env)
    assert human.returncode == 1
    assert human.stdout.startswith("WARNING: sequential scan of content_jobs")
    assert "hypopg: plan cost" in human.stdout and "(the planner uses it)" in human.stdout
    assert "READ ONLY transaction, rolled back" in human.stdout


def test_after_the_migrations_the_seed_query_is_healthy(jobs_db):
    run_ops("migrate", "apply", env=jobs_db.env, check=True)

    code, report = slow_query(jobs_db, SEED_SLOW_QUERY, "--params", "42")

    assert code == 0, report["findings"]
    assert report["status"] == "OK" and not [f for f in report["findings"] if f["severity"] != "INFO"]
    assert "uses idx_content_jobs_user_created_desc" in report["summary"]
    assert report["suggestions"] == []


def test_an_index_the_planner_cannot_use_because_of_the_type_is_named(jobs_db):
    jobs_db.execute("CREATE INDEX idx_jobs_user_created ON content_jobs (user_id, created_at)")
    # user_id is bigint; comparing it with a numeric makes the index unusable.
    code, report = slow_query(jobs_db, "SELECT * FROM content_jobs WHERE user_id = 42.0")
    assert code == 1
    found = checks(report)
    assert "seq-scan" in found
    assert "idx_jobs_user_created" in found["index-exists"]["message"]
    assert "leads with the filtered column user_id" in found["index-not-matched"]["message"]
    assert report["suggestions"][0]["covered_by"] == "idx_jobs_user_created"


def test_a_function_around_the_column_is_named_with_the_expression_index(jobs_db):
    jobs_db.execute("CREATE INDEX idx_jobs_topic ON content_jobs (topic)")
    code, report = slow_query(jobs_db, "SELECT id FROM content_jobs WHERE lower(topic) = $1", "-p", "topic 42")
    found = checks(report)
    assert code == 1 and "seq-scan" in found
    assert "wraps topic in lower()" in found["index-not-matched"]["message"]
    assert '(lower("topic"))' in found["index-not-matched"]["fix"]


def test_a_scan_that_keeps_most_of_the_table_is_not_blamed(jobs_db):
    code, report = slow_query(jobs_db, "SELECT count(*) FROM content_jobs WHERE user_id > $1", "-p", "10")
    assert code == 0 and "seq-scan" not in checks(report), report["findings"]


def test_a_bulk_load_without_analyze_is_diagnosed_as_stale_statistics(jobs_db):
    bulk_load_for_user(jobs_db.dsn, user_id=7, rows=300_000)

    code, report = slow_query(jobs_db, SEED_SLOW_QUERY, "--params", "7")

    assert code == 1
    found = checks(report)
    assert "stale-statistics" in found, report["findings"]
    stale = found["stale-statistics"]
    assert stale["severity"] == "WARNING"
    assert "stale" in stale["message"] and "300,000 rows changed since" in stale["message"]
    analyze = stale["fix"].splitlines()[0]
    assert analyze == "ANALYZE content_jobs;"
    assert "ops maintain analyze" in stale["fix"]

    jobs_db.execute(analyze)  # the printed fix, run as printed
    code, report = slow_query(jobs_db, SEED_SLOW_QUERY, "--params", "7")
    assert "stale-statistics" not in checks(report) and "row-estimate" not in checks(report)


def test_a_statement_that_outlives_the_timeout_is_cancelled_and_explained_without_analyze(jobs_db):
    code, report = slow_query(jobs_db, "SELECT pg_sleep(5)", "--timeout", "0.3")
    assert code == 1
    assert "timeout" in checks(report)
    assert report["safety"]["analyze"] is False


# ----------------------------------------------------------------------------------------- never change data


def test_a_delete_leaves_every_row(jobs_db):
    rows = job_count(jobs_db)

    code, report = slow_query(jobs_db, "DELETE FROM content_jobs WHERE user_id = $1", "-p", "42")
    assert report["safety"]["analyze"] is False and report["safety"]["read_only"] is True
    assert "not-executed" in checks(report)
    assert "seq-scan" in checks(report) and code == 1
    assert job_count(jobs_db) == rows

    code, report = slow_query(jobs_db, "DELETE FROM content_jobs", "--analyze-writes")
    assert report["safety"]["analyze"] is True and report["safety"]["rolled_back"] is True
    delete_node = report["plan"]["Plan"]
    assert delete_node["Operation"] == "Delete" and delete_node["Plans"][0]["Actual Rows"] == rows
    assert job_count(jobs_db) == rows


@pytest.mark.parametrize(
    "statement",
    [
        "WITH gone AS (DELETE FROM content_jobs RETURNING id) SELECT count(*) FROM gone",
        "SELECT * FROM content_jobs WHERE user_id = 1 FOR UPDATE",
        "UPDATE content_jobs SET status = 'failed'",
        "INSERT INTO content_jobs (org_id, user_id) SELECT org_id, user_id FROM content_jobs",
    ],
)
def test_every_data_modifying_form_is_explained_without_running(jobs_db, statement):
    rows = job_count(jobs_db)
    failed = jobs_db.fetchall("SELECT count(*) FROM content_jobs WHERE status = 'failed'")[0][0]
    code, report = slow_query(jobs_db, statement)
    assert report["safety"]["kind"] == "write" and report["safety"]["analyze"] is False
    assert "Actual Rows" not in report["plan"]["Plan"]
    assert job_count(jobs_db) == rows
    assert jobs_db.fetchall("SELECT count(*) FROM content_jobs WHERE status = 'failed'")[0][0] == failed


def test_a_select_whose_function_writes_is_refused_before_planning(jobs_db):
    jobs_db.execute(
        "CREATE FUNCTION purge_jobs() RETURNS bigint LANGUAGE sql AS "
        "$$ WITH d AS (DELETE FROM content_jobs RETURNING 1) SELECT count(*) FROM d $$"
    )
    rows = job_count(jobs_db)
    code, report = slow_query(jobs_db, "SELECT purge_jobs()")
    assert analyse("SELECT purge_jobs()").kind == "read"  # the parser cannot see inside the function...
    assert code == 3  # ...the catalog can: user code is never run nor planned (ops.safety)
    assert "public.purge_jobs() is user-defined code (sql, VOLATILE" in checks(report)["unsafe-statement"]["message"]
    assert job_count(jobs_db) == rows


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["SELECT 1; DELETE FROM content_jobs"], "exactly one statement"),
        (["DELETE FROM content_jobs; SELECT 1"], "exactly one statement"),
        (["EXPLAIN ANALYZE DELETE FROM content_jobs"], "without EXPLAIN"),
        (["TRUNCATE content_jobs"], "not Truncate"),
        (["SELEC * FROM content_jobs"], "cannot parse"),
        ([SEED_SLOW_QUERY], "uses 1 parameter(s)"),
        (["SELECT 1", "-p", "3"], "no $n parameters"),
    ],
)
def test_bad_statements_are_refused_in_one_line_and_nothing_runs(jobs_db, args, says):
    rows = job_count(jobs_db)
    proc = run_ops("playbook", "slow-query", *args, env=jobs_db.env)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and says in proc.stderr and "Traceback" not in proc.stderr
    assert job_count(jobs_db) == rows


def test_errors_from_the_database_are_unknown_in_one_line(jobs_db):
    proc = run_ops("playbook", "slow-query", "SELECT * FROM no_such_table", env=jobs_db.env)
    assert proc.returncode == 3
    assert proc.stdout.startswith("UNKNOWN: ") and proc.stdout.count("\n") == 1
    assert 'relation "no_such_table" does not exist' in proc.stdout


def test_hypopg_load_proves_the_index_and_leaves_no_extension(jobs_db):
    if not hypopg_available(jobs_db.cluster.dsn()):
        pytest.skip("postgresql-15-hypopg is not installed")
    code, report = slow_query(jobs_db, SEED_SLOW_QUERY, "-p", "42")
    assert report["suggestions"][0]["hypopg"] is None and "hypopg" in checks(report)

    code, report = slow_query(jobs_db, SEED_SLOW_QUERY, "-p", "42", "--hypopg-load")
    assert report["hypopg"]["loaded_for_this_run"] is True
    assert report["suggestions"][0]["hypopg"]["proven"] is True
    assert jobs_db.fetchall("SELECT count(*) FROM pg_extension WHERE extname = 'hypopg'") == [(0,)]


# ----------------------------------------------------------------------------------------- triggers, quoting


def test_a_foreign_key_trigger_that_dominates_a_delete_names_the_missing_index(db):
    with db.connect() as conn:
        conn.execute("INSERT INTO users (email) SELECT 'u' || g || '@example.test' FROM generate_series(1, 1000) g")
        conn.execute("INSERT INTO organizations (name, owner_id) VALUES ('org', 2)")
        conn.execute(
            "INSERT INTO memberships (org_id, user_id) SELECT 1, 1 + g % 1000 FROM generate_series(1, 100000) g"
        )
        conn.execute("ANALYZE")
    grant_diagnosis_role(db.dsn)
    users = db.fetchall("SELECT count(*) FROM users")[0][0]

    code, report = slow_query(db, "DELETE FROM users WHERE id = $1", "-p", "1", "--analyze-writes")

    assert report["safety"]["analyze"] is True, report["findings"]
    assert code == 1 and report["summary"].startswith("WARNING: ")
    fk = checks(report)["fk-trigger"]
    assert "memberships_user_id_fkey" in fk["message"] and "public.memberships by (user_id)" in fk["message"]
    assert fk["fix"].startswith(
        'CREATE INDEX CONCURRENTLY "idx_memberships_user_id" ON "public"."memberships" ("user_id");'
    )
    [trigger] = [t for t in report["triggers"] if t["constraint"] == "memberships_user_id_fkey"]
    assert trigger["time_ms"] > 0.5 * report["execution_ms"] and trigger["calls"] == 1
    assert report["trigger_ms"] >= trigger["time_ms"]
    assert db.fetchall("SELECT count(*) FROM users")[0][0] == users  # rolled back

    human = run_ops(
        "playbook", "slow-query", "DELETE FROM users WHERE id = $1", "-p", "1", "--analyze-writes", env=db.env
    )
    assert "ms in triggers" in human.stdout and "trigger RI_ConstraintTrigger_a_" in human.stdout

    db.execute(fk["fix"].splitlines()[0])  # the printed fix, run as printed
    code, report = slow_query(db, "DELETE FROM users WHERE id = $1", "-p", "3", "--analyze-writes")
    assert "fk-trigger" not in checks(report)


def test_identifiers_that_need_quotes_are_quoted_in_the_suggested_index(db):
    with db.connect() as conn:
        conn.execute('CREATE TABLE "Mixed Tab" (id int, "Mixed Col" int)')
        conn.execute('INSERT INTO "Mixed Tab" SELECT g, g FROM generate_series(1, 20000) g')
        conn.execute('ANALYZE "Mixed Tab"')
    grant_diagnosis_role(db.dsn)
    code, report = slow_query(db, 'SELECT * FROM "Mixed Tab" WHERE "Mixed Col" = 5')
    assert code == 1
    fix = checks(report)["seq-scan"]["fix"].splitlines()[0]
    assert fix == 'CREATE INDEX CONCURRENTLY "idx_Mixed Tab_Mixed Col" ON "public"."Mixed Tab" ("Mixed Col");'
    db.execute(fix)  # it is valid SQL as printed


def test_an_invalid_index_is_named_quoted_in_its_fix(db):
    db.execute(
        "INSERT INTO users (email, name) SELECT 'u' || g || '@example.test', 'same' FROM generate_series(1, 3) g"
    )
    with pytest.raises(psycopg.errors.UniqueViolation):
        db.execute('CREATE UNIQUE INDEX CONCURRENTLY "Odd Ix" ON users (name)')  # fails, leaves it INVALID
    grant_diagnosis_role(db.dsn)
    code, report = slow_query(db, "SELECT * FROM users WHERE name = 'same'")
    assert code == 1
    assert 'REINDEX INDEX CONCURRENTLY "public"."Odd Ix";' in checks(report)["invalid-index"]["fix"]


def test_hypopg_load_is_not_used_when_an_event_trigger_would_run_on_it(jobs_db):
    if not hypopg_available(jobs_db.cluster.dsn()):
        pytest.skip("postgresql-15-hypopg is not installed")
    with psycopg.connect(jobs_db.dsn, autocommit=True) as victim:
        pid = victim.info.backend_pid
        jobs_db.execute(
            "CREATE FUNCTION kill_on_ddl() RETURNS event_trigger LANGUAGE plpgsql "
            f"AS $$ BEGIN PERFORM pg_terminate_backend({pid}); END $$"
        )
        jobs_db.execute("CREATE EVENT TRIGGER drill_ddl ON ddl_command_end EXECUTE FUNCTION kill_on_ddl()")
        try:
            code, report = slow_query(jobs_db, SEED_SLOW_QUERY, "-p", "42", "--hypopg-load")
            victim.execute("SELECT 1")  # still alive
        finally:
            jobs_db.execute("DROP EVENT TRIGGER drill_ddl")
    assert code == 1 and "seq-scan" in checks(report)
    assert "--hypopg-load not used: event trigger drill_ddl" in checks(report)["hypopg"]["message"]
    assert jobs_db.fetchall("SELECT count(*) FROM pg_extension WHERE extname = 'hypopg'") == [(0,)]
