"""ops playbook top-queries against a real PostgreSQL with pg_stat_statements preloaded."""

from __future__ import annotations

import json
import shlex

from ops.monitor.exporter import exporter_queries, query_sql
from ops.monitor.settings import MonitorSettings
from tests.conftest import run_ops
from tests.playbook_data import SEED_SLOW_QUERY, grant_diagnosis_role, load_jobs


def test_without_the_extension_it_says_so_and_how_to_fix_it(db):
    proc = run_ops("playbook", "top-queries", env=db.env)
    assert proc.returncode == 3
    assert proc.stdout.startswith("UNKNOWN: pg_stat_statements is not installed in this database")
    assert "fix: CREATE EXTENSION pg_stat_statements;" in proc.stdout


def test_the_seed_query_is_listed_with_the_slow_query_command_that_diagnoses_it(db):
    load_jobs(db.dsn, jobs=20_000)
    db.execute("CREATE EXTENSION pg_stat_statements")
    with db.connect() as conn:
        for user_id in range(1, 21):
            conn.execute(SEED_SLOW_QUERY.replace("$1", "%s"), (user_id,))

    proc = run_ops("playbook", "top-queries", "--json", "--slow-ms", "100000", env=db.env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    [seed] = [s for s in report["statements"] if "FROM content_jobs WHERE user_id" in s["query"]]
    assert seed["calls"] == 20 and seed["mean_ms"] > 0 and seed["total_ms"] >= seed["mean_ms"]
    assert seed["next"].startswith("ops playbook slow-query ") and seed["next"].endswith(
        "--params VALUE_1 --params VALUE_2"
    )

    # The pointer is a real command: fill in the values and it diagnoses the statement.
    argv = shlex.split(seed["next"].replace("VALUE_1", "7").replace("VALUE_2", "50"))
    assert argv[:3] == ["ops", "playbook", "slow-query"]
    follow = run_ops(*argv[1:], env=db.env)
    assert follow.returncode == 1 and follow.stdout.startswith("WARNING: sequential scan of content_jobs"), (
        follow.stdout
    )

    proc = run_ops("playbook", "top-queries", "--slow-ms", "0", env=db.env)
    assert proc.returncode == 1 and proc.stdout.startswith("WARNING: #1 takes")
    assert "next: ops playbook slow-query" in proc.stdout


def test_the_tools_own_statements_are_left_out(db):
    load_jobs(db.dsn, jobs=20_000)
    db.execute("CREATE EXTENSION pg_stat_statements")
    grant_diagnosis_role(db.dsn)
    db.execute("SELECT pg_stat_statements_reset()")
    with db.connect() as conn:
        for user_id in range(1, 6):
            conn.execute(SEED_SLOW_QUERY.replace("$1", "%s"), (user_id,))
    # The tool at work: the diagnosis (probe, role, EXPLAIN), the reports' catalog queries, twice each.
    for _ in range(2):
        run_ops("playbook", "slow-query", SEED_SLOW_QUERY, "-p", "7", env=db.env, check=False)
        run_ops("playbook", "index-health", env=db.env)
        run_ops("maintain", "usage", env=db.env)
        run_ops("playbook", "top-queries", env=db.env)
    settings = MonitorSettings()
    with db.connect() as conn:  # what the deployed postgres_exporter runs, generated from sql/queries/
        exported = [query_sql(q, settings) for q in exporter_queries(settings)]
        for text in exported:
            conn.execute(text)

    proc = run_ops("playbook", "top-queries", "--json", "--limit", "100", env=db.env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    texts = [s["query"] for s in json.loads(proc.stdout)["statements"]]
    assert any("FROM content_jobs WHERE user_id" in t for t in texts)
    ours = [t for t in texts if t.lstrip().startswith("--") or "s10_probe" in t or "set_config" in t]
    assert ours == []
    assert not [t for t in texts if "pg_catalog." in t or "pg_stat_user_indexes" in t]
    assert not [t for t in texts if t.rstrip().endswith(") AS q")], exported[0]


def test_a_select_only_role_gets_one_line_naming_the_privilege(db):
    db.execute("CREATE EXTENSION pg_stat_statements")
    db.execute("DROP ROLE IF EXISTS tq_reader")
    db.execute("CREATE ROLE tq_reader LOGIN")
    db.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO tq_reader")
    try:
        for args in ([], ["--json"]):
            proc = run_ops("playbook", "top-queries", *args, env={**db.env, "PGUSER": "tq_reader"})
            assert proc.returncode == 3 and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
        assert json.loads(proc.stdout)["status"] == "UNKNOWN"
        proc = run_ops("playbook", "top-queries", env={**db.env, "PGUSER": "tq_reader"})
        first = proc.stdout.splitlines()[0]
        assert (
            first.startswith("UNKNOWN: role tq_reader may read only its own statements")
            and "pg_read_all_stats" in first
        )
        assert "GRANT s10_monitoring TO" in proc.stdout
    finally:
        db.execute("DROP OWNED BY tq_reader")
        db.execute("DROP ROLE tq_reader")


def test_the_extension_is_found_in_its_own_schema(db):
    db.execute("CREATE SCHEMA stats")
    db.execute("CREATE EXTENSION pg_stat_statements SCHEMA stats")
    db.execute("SELECT count(*) FROM users")
    proc = run_ops("playbook", "top-queries", "--json", env=db.env)  # stats is not on the search_path
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["statements"]
