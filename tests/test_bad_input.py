"""Bad input gets one line, exit 2, and nothing done; no message prints a password; deadlocks are retried.

Issue 10 (bad input, secrets, deadlock retry, quoted identifiers) and issue 13 (option errors show
the allowed range). Real PostgreSQL throughout: the option matrix runs every numeric option of
every command against a database and checks afterwards that nothing in it changed.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import click
import psycopg
import pytest
from psycopg import sql
from typer.main import get_command

from ops.cli import app, main
from ops.options import Number, Parsed
from tests.conftest import OPS_BIN, TEMPLATE_DB, Database, run_ops

# --------------------------------------------------------------------------- the option table

#: Arguments a command needs besides the option under test (so only that option can be wrong).
REQUIRED = {
    "ops playbook slow-query": ["SELECT 1"],
    "ops playbook cors": ["http://127.0.0.1:9/api", "--origin", "http://localhost:3000"],
}


def _commands(cmd: click.Command, path: str) -> Iterator[tuple[str, click.Command]]:
    if isinstance(cmd, click.Group):
        for name, sub in cmd.commands.items():
            yield from _commands(sub, f"{path} {name}")
    else:
        yield path, cmd


COMMANDS = dict(_commands(get_command(app), "ops"))


def numeric_options() -> list[tuple[str, str, click.ParamType]]:
    """Every (command, option, type) whose value is a number, size or duration, read from the CLI itself."""
    found = []
    for path, cmd in COMMANDS.items():
        for p in cmd.params:
            if isinstance(p, click.Option) and isinstance(p.type, Number | Parsed):
                found.append((path, p.opts[0], p.type))
    return found


def bad_values(kind: click.ParamType) -> list[str]:
    """NaN, both infinities, just below and just above the range."""
    bounds = kind.bounds if isinstance(kind, Parsed) else kind
    assert isinstance(bounds, Number)
    low = str(bounds.low) if bounds.low_open else f"{bounds.low - 1:g}"
    values = ["nan", "inf", "-inf", low, f"{bounds.high * 2 + 1:g}"]
    if isinstance(kind, Parsed):  # a unit keeps the number the same size
        values[3:] = [v + ("s" if kind.name == "duration" else "") for v in values[3:]]
    return values


CASES = [
    pytest.param(path, opt, kind, value, id=f"{path[4:].replace(' ', '-')}{opt}={value}")
    for path, opt, kind in numeric_options()
    for value in bad_values(kind)
]


def test_every_numeric_option_is_bounded() -> None:
    """No option is a bare click int/float (NaN passes FloatRange; 'abc' gets no range): the one mechanism."""
    bare = [
        f"{path} {p.opts[0]}"
        for path, cmd in COMMANDS.items()
        for p in cmd.params
        if isinstance(p.type, click.types.IntParamType | click.types.FloatParamType)
    ]
    assert not bare, f"use ops.options.number/size/duration for: {bare}"
    covered = {(path, opt) for path, opt, _ in numeric_options()}
    for must in [
        ("ops migrate apply", "--lock-timeout"),
        ("ops migrate apply", "--wait"),
        ("ops maintain analyze", "--fraction"),
        ("ops maintain reindex", "--max-duration"),
        ("ops maintain usage", "--lock-wait"),
        ("ops playbook slow-query", "--timeout"),
        ("ops playbook index-health", "--min-bloat"),
        ("ops maintain bloat", "--min-size"),
    ]:
        assert must in covered


@pytest.fixture(scope="module")
def quiet_db(pg_cluster) -> Iterator[Database]:
    """One database for the whole matrix: after every bad option it must be exactly as it was."""
    name = f"t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(TEMPLATE_DB))
        )
    yield Database(pg_cluster, name)
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def db_state(db: Database) -> list[tuple]:
    """What any of the commands could change: indexes, our ledger table, analyze times."""
    return db.fetchall(
        "SELECT c.relname, c.relkind, c.relfilenode, s.last_analyze FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid "
        "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') ORDER BY 1"
    )


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """The CLI's own entry point, in this process (fast enough for a matrix of a hundred cases)."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def one_line_naming(err: str, option: str, kind: click.ParamType) -> str:
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert option in lines[0] and kind.describe() in lines[0], lines[0]  # type: ignore[attr-defined]
    return lines[0]


@pytest.mark.parametrize(("path", "option", "kind", "value"), CASES)
def test_bad_number_is_one_line_exit_2_nothing_done(
    quiet_db: Database,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    path: str,
    option: str,
    kind: click.ParamType,
    value: str,
) -> None:
    for key, val in quiet_db.env.items():
        if key.startswith("PG"):
            monkeypatch.setenv(key, val)
    before = db_state(quiet_db)
    argv = [*path.split()[1:], *REQUIRED.get(path, []), f"{option}={value}"]
    code, out, err = run_main(argv, capsys)
    assert code == 2, (argv, out, err)
    assert out == ""
    one_line_naming(err, option, kind)
    assert db_state(quiet_db) == before


@pytest.mark.parametrize(
    ("args", "option", "expect"),
    [
        # the findings as the issues wrote them, through the installed console script
        (["playbook", "slow-query", "SELECT 1", "--timeout", "nan"], "--timeout", "from 0.1 to 3600"),
        (["migrate", "apply", "--lock-timeout", "nan"], "--lock-timeout", "from 0.05 to 600"),
        (["maintain", "usage", "--lock-wait", "nan"], "--lock-wait", "from 0 to 86400"),
        (["maintain", "analyze", "--fraction", "nan"], "--fraction", "from 0 to 1"),
        (["maintain", "analyze", "--fraction", "2"], "--fraction", "from 0 to 1"),
        (["maintain", "reindex", "--max-duration", "0"], "--max-duration", "above 0"),
        (["maintain", "reindex", "--min-bloat", "abc"], "--min-bloat", "'abc' is not a number from 0 to 100"),
        (["playbook", "top-queries", "--limit", "abc"], "--limit", "whole number from 1 to 500"),
        (["maintain", "bloat", "--min-size", "9" * 400], "--min-size", "from 0 to 1024PB"),
        (["maintain", "usage", "--min-stats-age", "1e999"], "--min-stats-age", "from 0 to 365d"),
    ],
)
def test_issue_findings_one_line(db: Database, ops, args: list[str], option: str, expect: str) -> None:
    proc = ops(*args, timeout=30)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert f"{option}: " in lines[0] and expect in lines[0], lines[0]
    assert db.fetchall("SELECT to_regclass('ops_migrations')") == [(None,)]


def test_bad_number_with_json_is_one_envelope(ops) -> None:
    proc = ops("maintain", "analyze", "--fraction", "inf", "--json")
    assert proc.returncode == 2
    doc = json.loads(proc.stdout)
    assert doc["status"] == "ERROR" and doc["exit_code"] == 2 and "--fraction" in doc["summary"]


def test_help_shows_the_range(ops) -> None:
    text = " ".join(ops("maintain", "reindex", "--help").stdout.split())
    assert "[a number from 0 to 100]" in text and "[a whole number from 0 to 100]" in text


def test_threshold_order_checked_before_work(db: Database, ops) -> None:
    proc = ops("playbook", "index-health", "--min-bloat", "70", "--critical-bloat", "50")
    assert proc.returncode == 2 and "--critical-bloat (50) must not be below --min-bloat (70)" in proc.stderr
    assert proc.stdout == ""


# --------------------------------------------------------------------------- --metrics-file


@pytest.fixture
def bloated_index(db: Database) -> str:
    """A small btree with 90% of its rows deleted, so reindex would rebuild it."""
    db.execute(
        "CREATE TABLE bl (id int); INSERT INTO bl SELECT g FROM generate_series(1, 100000) g; "
        "CREATE INDEX bl_id ON bl (id); DELETE FROM bl WHERE id % 10 <> 0"
    )
    db.execute("VACUUM ANALYZE bl")
    return "bl_id"


def relfilenode(db: Database, index: str) -> int:
    return db.fetchall("SELECT relfilenode FROM pg_class WHERE relname = %s", (index,))[0][0]


@pytest.mark.parametrize(
    ("where", "why"),
    [
        ("/proc/s10_reindex.prom", "is under /proc"),
        ("/sys/s10_reindex.prom", "is under /sys"),
        ("{tmp}", "is a directory"),
        ("{tmp}/missing/s10_reindex.prom", "does not exist"),
        ("/dev/null", "not a regular file"),
        ("{tmp}/fifo", "not a regular file"),
        ("", "empty path"),
    ],
)
def test_metrics_file_checked_before_any_work(
    db: Database, ops, bloated_index: str, tmp_path: Path, where: str, why: str
) -> None:
    os.mkfifo(tmp_path / "fifo")
    path = where.format(tmp=tmp_path)
    before = relfilenode(db, bloated_index)
    proc = ops("maintain", "reindex", "--min-size", "0", "--estimate-only", "--metrics-file", path, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "--metrics-file" in lines[0] and why in lines[0], lines[0]
    assert relfilenode(db, bloated_index) == before  # nothing rebuilt


def test_metrics_file_written_where_allowed(db: Database, ops, bloated_index: str, tmp_path: Path) -> None:
    path = tmp_path / "s10_reindex.prom"
    before = relfilenode(db, bloated_index)
    proc = ops("maintain", "reindex", "--min-size", "0", "--estimate-only", "--metrics-file", str(path), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert relfilenode(db, bloated_index) != before
    assert 's10_reindex_indexes{outcome="rebuilt"} 1.0' in path.read_text()


# --------------------------------------------------------------------------- secrets

SECRET = "s3cr3tPW"
NO_PG = {"PATH": "/usr/bin:/bin", "COLUMNS": "200"}
BAD_DSNS = [
    f"postgresql://postgres:{SECRET}@[::1/app",  # the issue's: a malformed URI
    f"postgresql://postgres:{SECRET}@[::1]:5432/app?sslpassword=%zz{SECRET}",  # libpq quotes the token
    f"postgresql://u@h/db?password={SECRET}=x",
    f"host=127.0.0.1 password={SECRET}",
    f"host=127.0.0.1 password='{SECRET}",  # unterminated quote
    f"host=127.0.0.1 sslpassword={SECRET}",
    f"postgresql://u@h/db?sslpassword={SECRET}",
    f"host=127.0.0.1 password = '{SECRET} x'",
]


@pytest.mark.parametrize("dsn", BAD_DSNS)
@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_no_password_in_any_dsn_error(dsn: str, json_flag: list[str]) -> None:
    proc = run_ops("migrate", "status", "--dsn", dsn, *json_flag, env=NO_PG)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert SECRET not in proc.stdout + proc.stderr
    assert SECRET[2:-2] not in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_sslpassword_refused_like_password() -> None:
    proc = run_ops("maintain", "usage", "--dsn", f"host=127.0.0.1 sslpassword={SECRET}", env=NO_PG)
    assert proc.returncode == 2 and "must not contain a sslpassword" in proc.stderr
    assert SECRET not in proc.stderr


@pytest.mark.parametrize("dsn", BAD_DSNS[:3])
def test_no_password_in_replica_errors(db: Database, ops, dsn: str) -> None:
    proc = ops("maintain", "usage", "--replica", dsn)  # checked before the primary is even reached
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert SECRET not in proc.stdout + proc.stderr and "--replica" in proc.stderr


@pytest.mark.parametrize("dsn", BAD_DSNS)
def test_no_password_in_inventory_replica_check(tmp_path: Path, dsn: str) -> None:
    inventory = tmp_path / "inv.py"
    inventory.write_text(
        f"db_primary = (['@local'], {{'db_ops_bin': '/usr/bin/ops', 'maint_replica_dsns': ['service=r1', {dsn!r}]}})\n"
    )
    proc = run_ops(
        "render", "--inventory", str(inventory), "--out", str(tmp_path / "out"), env={"PATH": "/usr/bin:/bin"}
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "replica DSN #2" in proc.stderr
    assert SECRET not in proc.stdout + proc.stderr


def test_pgpassword_used_but_warned_once(db: Database, tmp_path: Path) -> None:
    """apply opens several connections (the job, the progress watcher, ...): one warning, on stderr only."""
    env = {**db.env, "PGPASSWORD": SECRET}
    proc = run_ops("migrate", "apply", "--json", env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("PGPASSWORD") == 1 and "PGPASSFILE" in proc.stderr
    assert SECRET not in proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["status"] == "OK"
    quiet = run_ops("migrate", "status", env=db.env)
    assert "PGPASSWORD" not in quiet.stderr


# --------------------------------------------------------------------------- deadlock retried


def _wait_for(db_conn: psycopg.Connection, query: str, params: tuple, timeout: float = 20) -> tuple:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = db_conn.execute(query, params).fetchone()
        if row:
            return row
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for: {query}")


def staged_deadlock(db: Database, table: str, args: list[str]) -> tuple[int, str]:
    """Run ``ops *args`` into a real deadlock on ``table``: its concurrent build waits for a snapshot
    held by session B, and B then asks for the SHARE UPDATE EXCLUSIVE lock the build holds. The
    build's deadlock check (1 s) finds the cycle first (B's waits 30 s), so the server aborts the
    build, which leaves an INVALID index behind. Returns the exit code and stderr."""
    watch = db.connect()
    old = db.connect(autocommit=False)  # B1: an old snapshot, so the pre-flight waits (it polls)
    old.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    old.execute("SELECT 1")
    time.sleep(1.2)  # older than the pre-flight's min_age
    job = subprocess.Popen(
        [str(OPS_BIN), *args, "--lock-timeout", "4", "--retries", "3"],
        env=db.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        (pid,) = _wait_for(
            watch,
            "SELECT pid FROM pg_stat_activity WHERE application_name = 's10-ops' AND datname = current_database() "
            "AND query LIKE %s",
            ("-- Client backends that would make%",),
        )
        b = db.connect(autocommit=False)  # B: younger than min_age, so the build starts and then waits for it
        b.execute("SET deadlock_timeout = '30s'")
        b.commit()
        b.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        b.execute("SELECT 1")
        old.commit()
        _wait_for(
            watch, "SELECT 1 FROM pg_locks WHERE pid = %s AND locktype = 'virtualxid' AND NOT granted", (pid,), 15
        )
        b.execute(sql.SQL("LOCK TABLE {} IN SHARE UPDATE EXCLUSIVE MODE").format(sql.Identifier(table)))
        b.commit()  # the LOCK returned: the server has aborted the build
        _out, err = job.communicate(timeout=90)
    finally:
        if job.poll() is None:
            job.kill()
        old.close()
        watch.close()
    return job.returncode, err


def indexes_like(db: Database, pattern: str) -> list[tuple]:
    return db.fetchall(
        "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE c.relname LIKE %s ORDER BY 1",
        (pattern,),
    )


def test_deadlock_in_migrate_apply_is_retried(db: Database, tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "0607bc5b8599_01_idx_users_deadlock.sql").write_text(
        "CREATE INDEX CONCURRENTLY idx_users_deadlock ON users (email);\n"
    )
    db.execute("INSERT INTO users (email) SELECT 'u' || g || '@example.com' FROM generate_series(1, 1000) g")
    code, err = staged_deadlock(db, "users", ["migrate", "apply", "--migrations-dir", str(migrations)])
    assert code == 0, err
    assert "deadlock detected (attempt 1/4)" in err, err
    assert "dropping the INVALID idx_users_deadlock" in err, err
    assert indexes_like(db, "idx_users_deadlock%") == [("idx_users_deadlock", True)]
    assert db.fetchall("SELECT count(*) FROM pg_index WHERE NOT indisvalid") == [(0,)]


def test_deadlock_in_reindex_is_retried(db: Database, bloated_index: str) -> None:
    """REINDEX CONCURRENTLY aborted by a deadlock leaves <index>_ccnew INVALID: dropped, then rebuilt."""
    before = relfilenode(db, bloated_index)
    code, err = staged_deadlock(db, "bl", ["maintain", "reindex", "--min-size", "0", "--estimate-only"])
    assert code == 0, err
    assert "deadlock detected (attempt 1/4)" in err, err
    assert f"dropping {bloated_index}_ccnew left by the failed attempt" in err, err
    assert indexes_like(db, f"{bloated_index}%") == [(bloated_index, True)]
    assert relfilenode(db, bloated_index) != before
    assert db.fetchall("SELECT count(*) FROM pg_index WHERE NOT indisvalid") == [(0,)]


# --------------------------------------------------------------------------- quoted identifiers


def test_printed_sql_quotes_identifiers(db: Database, ops) -> None:
    """Fixes printed by usage, bloat, reindex --dry-run and index-health quote names that need it,
    and reindex really rebuilds an index in a schema whose name holds a dot."""
    db.execute(
        'CREATE SCHEMA "Odd.Schema"; CREATE TABLE "Odd.Schema"."Mixed Table" (id int, "Mixed Col" text); '
        'INSERT INTO "Odd.Schema"."Mixed Table" SELECT g, md5(g::text) FROM generate_series(1, 50000) g; '
        'CREATE INDEX "Mixed Idx" ON "Odd.Schema"."Mixed Table" ("Mixed Col"); '
        'CREATE INDEX "Mixed Idx2" ON "Odd.Schema"."Mixed Table" ("Mixed Col", id); '
        'DELETE FROM "Odd.Schema"."Mixed Table" WHERE id % 10 <> 0'
    )
    db.execute('VACUUM ANALYZE "Odd.Schema"."Mixed Table"')
    db.execute('UPDATE "Odd.Schema"."Mixed Table" SET id = id')  # stale statistics
    qualified = '"Odd.Schema"."Mixed Idx"'
    app = ("--schema", "Odd.Schema")  # maintain reads and acts on the app's schema only (default public)
    usage = ops("maintain", "usage", *app, "--min-stats-age", "0", "--json")
    fixes = [f["fix"] for f in json.loads(usage.stdout)["redundant"]]
    assert f"DROP INDEX CONCURRENTLY {qualified};" in fixes, fixes
    bloat = ops("maintain", "bloat", *app, "--min-size", "0", "--warning", "10", "--critical", "20")
    assert f"REINDEX INDEX CONCURRENTLY {qualified};" in bloat.stderr, bloat.stderr
    plan = ops(
        "maintain", "reindex", *app, "--dry-run", "--min-size", "0", "--min-bloat", "10", "--estimate-only", "--json"
    )
    assert "Mixed Idx" in {e["index"] for e in json.loads(plan.stdout)["rebuilt"]}
    health = ops("playbook", "index-health", *app, "--min-stats-age", "0", "--min-size", "0", "--min-bloat", "10")
    assert f"DROP INDEX CONCURRENTLY {qualified};" in health.stdout, health.stdout
    assert 'ANALYZE "Odd.Schema"."Mixed Table";' in health.stdout, health.stdout
    before = relfilenode(db, "Mixed Idx")
    run = ops("maintain", "reindex", *app, "--min-size", "0", "--min-bloat", "10", "--estimate-only")
    assert run.returncode == 0, run.stderr
    assert relfilenode(db, "Mixed Idx") != before


@pytest.mark.parametrize(
    ("options", "expect"),
    [
        (["--min-bloat", "nan"], "--min-bloat: 'nan' is not a number from 0 to 100"),
        (["--max-duration", "0"], "--max-duration: '0' is not a duration above 0"),
        (["--min-bloat"], "requires an argument"),
    ],
)
def test_inventory_job_options_checked_like_the_cli(tmp_path: Path, options: list[str], expect: str) -> None:
    """A cron job's extra flags in the inventory go through the same option types at render/deploy time."""
    inventory = tmp_path / "inv.py"
    job = {"schedule": "0 3 1-7 * *", "weekday": 7, "options": options}
    inventory.write_text(f"db_primary = (['@local'], {{'db_ops_bin': '/usr/bin/ops', 'maint_reindex': {job!r}}})\n")
    proc = run_ops(
        "render", "--inventory", str(inventory), "--out", str(tmp_path / "out"), env={"PATH": "/usr/bin:/bin"}
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and expect in lines[0], proc.stderr
    assert not (tmp_path / "out").exists()
