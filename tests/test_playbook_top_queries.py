"""ops playbook top-queries against a real PostgreSQL with pg_stat_statements preloaded."""

from __future__ import annotations

import json
import shlex

from tests.conftest import run_ops
from tests.playbook_data import SEED_SLOW_QUERY, load_jobs


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
