"""A diagnosis has no effect outside its own rolled-back transaction (issue 10), on a real PostgreSQL.

Each drill hands ``ops playbook slow-query`` a statement that would act outside the transaction (directly,
through a user function, a view, an operator, a domain, SECURITY DEFINER, with and without
--analyze-writes), and compares the database before and after: replication slots, a victim session,
row counts, table statistics, settings, sequences, large objects and files.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.conftest import Database, run_ops
from tests.playbook_data import grant_diagnosis_role


@pytest.fixture
def drill(db: Database, tmp_path: Path) -> Iterator[dict]:
    """A database with some rows, dblink, the diagnosis role, a victim session and the drills' objects."""
    victim = psycopg.connect(db.dsn, autocommit=True, application_name="victim")
    pid = victim.info.backend_pid
    exported = tmp_path / "exported"
    with db.connect() as conn:
        conn.execute("CREATE EXTENSION dblink")
        conn.execute("CREATE TABLE drill_log (n int)")
        conn.execute("INSERT INTO users (email) SELECT 'u' || g || '@example.test' FROM generate_series(1, 50) g")
        conn.execute("INSERT INTO organizations (name, owner_id) VALUES ('org', 1)")
        conn.execute("INSERT INTO memberships (org_id, user_id) SELECT 1, g FROM generate_series(1, 50) g")
        conn.execute("SELECT * FROM users")  # some counters to lose
        for volatility in ("VOLATILE", "IMMUTABLE"):
            conn.execute(
                f"CREATE FUNCTION kill_{volatility.lower()}() RETURNS boolean LANGUAGE plpgsql {volatility} "
                f"AS $$ BEGIN RETURN pg_terminate_backend({pid}); END $$"
            )
        conn.execute(
            "CREATE FUNCTION kill_definer() RETURNS boolean LANGUAGE sql SECURITY DEFINER "
            f"AS $$ SELECT pg_terminate_backend({pid}) $$"
        )
        conn.execute(
            f"CREATE VIEW victims AS SELECT pid, pg_terminate_backend(pid) AS gone FROM pg_stat_activity WHERE pid = {pid}"
        )
        conn.execute("CREATE VIEW victims_again AS SELECT * FROM victims")
        conn.execute("CREATE OPERATOR !!! (FUNCTION = pg_terminate_backend, LEFTARG = integer, RIGHTARG = bigint)")
        conn.execute("CREATE DOMAIN checked_int AS integer CHECK (kill_immutable())")
        conn.execute("SELECT pg_stat_force_next_flush()")
    grant_diagnosis_role(db.dsn)
    yield {"db": db, "pid": pid, "victim": victim, "file": exported}
    victim.close()


def state(d: dict) -> dict:
    """What a diagnosis must leave exactly as it was."""
    db: Database = d["db"]
    with db.connect() as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        return {
            "slots": conn.execute("SELECT slot_name FROM pg_replication_slots ORDER BY 1").fetchall(),
            "victim": conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (d["pid"],)).fetchone(),
            "rows": conn.execute(
                "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM memberships), "
                "(SELECT count(*) FROM drill_log)"
            ).fetchone(),
            "stats": conn.execute(
                "SELECT relname, n_tup_ins, n_tup_del, n_live_tup FROM pg_stat_user_tables ORDER BY relname"
            ).fetchall(),
            "settings": conn.execute("SELECT name, setting FROM pg_settings ORDER BY name").fetchall(),
            "sequence": conn.execute(
                "SELECT last_value FROM pg_sequences WHERE sequencename = 'users_id_seq'"
            ).fetchone(),
            "large_objects": conn.execute("SELECT count(*) FROM pg_largeobject_metadata").fetchone(),
            "file": d["file"].exists(),
        }


def refused(d: dict, statement: str, *args: str) -> dict:
    before = state(d)
    proc = run_ops("playbook", "slow-query", statement, *args, "--json", env=d["db"].env)
    assert "Traceback" not in proc.stderr, proc.stderr
    report = json.loads(proc.stdout)
    assert proc.returncode == 3 and report["status"] == "UNKNOWN", proc.stdout
    assert report["summary"].startswith("UNKNOWN: refused, not planned, not run: "), report["summary"]
    assert "\n" not in report["summary"]
    assert state(d) == before
    d["victim"].execute("SELECT 1")  # the victim session is still alive
    return report


def test_a_replication_slot_is_never_created(drill):
    report = refused(drill, "SELECT pg_create_physical_replication_slot('drill', true)")
    assert "pg_create_physical_replication_slot(name,boolean,boolean) is a volatile built-in" in report["summary"]


def test_dblink_never_reaches_another_session(drill):
    conninfo = drill["db"].dsn
    report = refused(
        drill,
        f"SELECT dblink_connect('d', '{conninfo}'), dblink_send_query('d', 'INSERT INTO drill_log VALUES (1)')",
    )
    assert "public.dblink_connect(text, text) is user-defined code (c, VOLATILE, schema public)" in report["summary"]


@pytest.mark.parametrize("function", ["kill_volatile", "kill_immutable", "kill_definer"])
@pytest.mark.parametrize("analyze_writes", [False, True])
def test_a_user_function_is_never_run_nor_planned(drill, function, analyze_writes):
    args = ["--analyze-writes"] if analyze_writes else []
    report = refused(drill, f"SELECT {function}()", *args)
    assert f"public.{function}() is user-defined code" in report["summary"]
    report = refused(drill, f"DELETE FROM drill_log WHERE {function}()", *args)
    assert f"public.{function}() is user-defined code" in report["summary"]
    if function == "kill_immutable":
        assert "plpgsql, IMMUTABLE" in report["summary"]
    if function == "kill_definer":
        assert "SECURITY DEFINER" in report["summary"]


def test_statistics_are_never_reset(drill):
    report = refused(drill, "SELECT pg_stat_reset_single_table_counters('users'::regclass)")
    assert "pg_stat_reset_single_table_counters(oid)" in report["summary"]


def test_a_view_that_hides_a_dangerous_function_is_looked_into(drill):
    for view in ("victims", "victims_again"):
        report = refused(drill, f"SELECT * FROM {view}")
        assert "pg_terminate_backend(integer,bigint) (reached through view public.victims)" in report["summary"]


def test_an_operator_whose_function_is_dangerous_is_refused(drill):
    report = refused(drill, f"SELECT {drill['pid']} !!! 0")
    assert "(reached through operator !!!(integer,bigint)" in report["summary"]


def test_a_domain_check_that_calls_user_code_is_refused(drill):
    report = refused(drill, "SELECT 1::checked_int")
    assert "public.kill_immutable() (reached through type public.checked_int" in report["summary"]


@pytest.mark.parametrize(
    ("statement", "says"),
    [
        ("SELECT lo_export(lo_from_bytea(0, 'x'), '{file}')", "lo_export(oid,text)"),
        ("SELECT set_config('work_mem', '1MB', false)", "set_config(text,text,boolean)"),
        ("SELECT nextval('users_id_seq')", "nextval(regclass)"),
        ("SELECT pg_advisory_lock(42)", "pg_advisory_lock(bigint)"),
        ("SELECT pg_reload_conf()", "pg_reload_conf()"),
        ("SELECT * FROM users WHERE id = (SELECT txid_current())", "txid_current() assigns a transaction id"),
        ("WITH x AS (SELECT pg_catalog.pg_terminate_backend({pid})) SELECT * FROM x", "pg_terminate_backend"),
    ],
)
def test_built_ins_with_effects_are_refused(drill, statement, says):
    report = refused(drill, statement.format(file=drill["file"], pid=drill["pid"]))
    assert says in report["summary"]


def test_a_safe_select_still_gets_explain_analyze_numbers_as_the_diagnosis_role(drill):
    before = state(drill)
    proc = run_ops(
        "playbook",
        "slow-query",
        "SELECT * FROM users WHERE email = $1",
        "-p",
        "u7@example.test",
        "--json",
        env=drill["db"].env,
    )
    report = json.loads(proc.stdout)
    assert proc.returncode in (0, 1), proc.stdout
    assert report["safety"]["analyze"] is True and report["safety"]["role"] == "s10_diagnosis"
    assert report["safety"]["checked"] == "server parse tree"
    assert report["execution_ms"] is not None and report["plan"]["Plan"]["Actual Rows"] == 1
    after = state(drill)
    assert after["rows"] == before["rows"] and after["slots"] == before["slots"]


def test_a_write_whose_trigger_runs_user_code_is_explained_without_running(drill):
    db = drill["db"]
    db.execute(
        "CREATE FUNCTION kill_trigger() RETURNS trigger LANGUAGE plpgsql "
        f"AS $$ BEGIN PERFORM pg_terminate_backend({drill['pid']}); RETURN OLD; END $$"
    )
    db.execute("CREATE TRIGGER drill_kill BEFORE DELETE ON drill_log FOR EACH ROW EXECUTE FUNCTION kill_trigger()")
    db.execute("INSERT INTO drill_log VALUES (1)")
    before = state(drill)
    proc = run_ops("playbook", "slow-query", "DELETE FROM drill_log", "--analyze-writes", "--json", env=db.env)
    report = json.loads(proc.stdout)
    assert report["safety"]["analyze"] is False
    [note] = [f for f in report["findings"] if f["check"] == "not-executed"]
    assert (
        "public.kill_trigger() (reached through trigger drill_kill on public.drill_log) is user-defined code"
        in (note["message"])
    )
    assert state(drill) == before
    drill["victim"].execute("SELECT 1")


def test_a_login_that_cannot_switch_to_the_role_gets_estimates_and_unsafe_statements_are_still_refused(drill):
    db = drill["db"]
    db.execute("DROP ROLE IF EXISTS drill_login")
    db.execute("CREATE ROLE drill_login LOGIN")
    db.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO drill_login")
    env = {**db.env, "PGUSER": "drill_login"}
    try:
        proc = run_ops("playbook", "slow-query", "SELECT count(*) FROM users", env=env)
        assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
        assert "EXPLAIN without ANALYZE (not executed)" in proc.stdout
        assert "this login may not SET ROLE s10_diagnosis" in proc.stdout
        proc = run_ops("playbook", "slow-query", "SELECT pg_terminate_backend(1)", env=env)
        assert proc.returncode == 3 and proc.stdout.startswith("UNKNOWN: refused")
    finally:
        db.execute("DROP OWNED BY drill_login")
        db.execute("DROP ROLE drill_login")


def test_without_the_servers_parser_names_are_resolved_and_the_drills_still_refused(drill):
    """default_transaction_read_only (as on a read-only server or a hot standby): no temporary function."""
    db: Database = drill["db"]
    db.execute(f'ALTER DATABASE "{db.name}" SET default_transaction_read_only = on')
    for statement, says in [
        ("SELECT pg_terminate_backend(1)", "pg_terminate_backend(integer,bigint)"),
        ("SELECT kill_immutable()", "public.kill_immutable() (reached through the name kill_immutable)"),
        ("SELECT * FROM victims_again", "(reached through view public.victims)"),
        (f"SELECT {drill['pid']} !!! 0", "(reached through operator !!!(integer,bigint)"),
        (f"SELECT 1 WHERE {drill['pid']} !!! ANY (SELECT 0::bigint)", "(reached through operator !!!(integer,bigint)"),
        ("SELECT 1::checked_int", "public.kill_immutable() (reached through type public.checked_int"),
    ]:
        report = refused(drill, statement)
        assert says in report["summary"]
    proc = run_ops("playbook", "slow-query", "SELECT count(*) FROM users", "--json", env=db.env)
    report = json.loads(proc.stdout)
    assert report["safety"]["checked"].startswith("names on the search_path (default_transaction_read_only is on)")
    assert report["safety"]["analyze"] is True and report["execution_ms"] is not None


def test_the_role_resolves_names_as_the_check_did(drill):
    """A schema named like the diagnosis role comes first in "$user", public once the role is switched to."""
    db: Database = drill["db"]
    with db.connect() as conn:
        conn.execute("CREATE SCHEMA s10_diagnosis")
        pid = drill["pid"]
        conn.execute(
            f"CREATE VIEW s10_diagnosis.users AS SELECT u.*, pg_terminate_backend({pid}) AS gone FROM public.users u"
        )
        conn.execute("GRANT USAGE ON SCHEMA s10_diagnosis TO s10_diagnosis")
        conn.execute("GRANT SELECT ON s10_diagnosis.users TO s10_diagnosis")
    before = state(drill)
    proc = run_ops("playbook", "slow-query", "SELECT count(*) FROM users", "--json", env=db.env)
    report = json.loads(proc.stdout)
    assert report["safety"]["role"] == "s10_diagnosis" and report["safety"]["analyze"] is True
    assert "Seq Scan on users" in "\n".join(report["plan_lines"])
    assert state(drill) == before
    drill["victim"].execute("SELECT 1")


def test_a_held_lock_ends_the_check_in_one_line_within_the_lock_timeout(drill):
    db: Database = drill["db"]
    with db.connect(autocommit=False) as holder:
        holder.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        proc = run_ops("playbook", "slow-query", "SELECT count(*) FROM users", "--lock-timeout", "0.2", env=db.env)
        holder.rollback()
    assert proc.returncode == 3 and "Traceback" not in proc.stderr
    assert proc.stdout.count("\n") == 1 and "(--lock-timeout)" in proc.stdout, proc.stdout  # the UNKNOWN verdict


def test_more_ways_in_are_looked_into(drill):
    """postgres_fdw, a row-level security policy, a cast, a default: each reaches what it hides."""
    db: Database = drill["db"]
    cluster = db.cluster
    with db.connect() as conn:
        conn.execute("CREATE EXTENSION postgres_fdw")
        conn.execute(
            "CREATE SERVER loop FOREIGN DATA WRAPPER postgres_fdw "
            f"OPTIONS (host '{cluster.host}', port '{cluster.port}', dbname '{db.name}')"
        )
        conn.execute("CREATE USER MAPPING FOR CURRENT_USER SERVER loop OPTIONS (user 'postgres')")
        conn.execute("CREATE FOREIGN TABLE remote_log (n int) SERVER loop OPTIONS (table_name 'drill_log')")
        conn.execute("CREATE TABLE guarded (n int)")
        conn.execute("ALTER TABLE guarded ENABLE ROW LEVEL SECURITY")
        conn.execute("CREATE POLICY kill ON guarded USING (kill_volatile())")
        conn.execute("CREATE TYPE drill_enum AS ENUM ('a')")
        conn.execute(
            "CREATE FUNCTION to_drill_enum(integer) RETURNS drill_enum LANGUAGE plpgsql "
            "AS $$ BEGIN PERFORM kill_volatile(); RETURN 'a'; END $$"
        )
        conn.execute("CREATE CAST (integer AS drill_enum) WITH FUNCTION to_drill_enum(integer)")
        conn.execute("CREATE TABLE defaulted (n int, killed boolean DEFAULT kill_volatile())")
    grant_diagnosis_role(db.dsn)
    for statement, args, says in [
        ("SELECT * FROM remote_log", [], "foreign table public.remote_log"),
        ("INSERT INTO remote_log VALUES (1)", ["--analyze-writes"], "foreign table public.remote_log"),
        ("SELECT * FROM guarded", [], "(reached through a row-level security policy of public.guarded)"),
        ("SELECT 1::drill_enum", [], "public.to_drill_enum(integer) is user-defined code"),
        ("INSERT INTO defaulted (n) VALUES (1)", [], "(reached through the default of killed on public.defaulted)"),
    ]:
        report = refused(drill, statement, *args)
        assert says in report["summary"], report["summary"]


def test_an_event_trigger_does_not_run_on_the_check(drill):
    """The check's temporary function is DDL: with an event trigger on DDL it resolves names instead."""
    db: Database = drill["db"]
    db.execute(
        "CREATE FUNCTION kill_on_ddl() RETURNS event_trigger LANGUAGE plpgsql "
        f"AS $$ BEGIN PERFORM pg_terminate_backend({drill['pid']}); END $$"
    )
    db.execute("CREATE EVENT TRIGGER drill_ddl ON ddl_command_end EXECUTE FUNCTION kill_on_ddl()")
    try:
        before = state(drill)
        proc = run_ops("playbook", "slow-query", "SELECT count(*) FROM users", "--json", env=db.env)
        report = json.loads(proc.stdout)
        assert report["safety"]["checked"].startswith("names on the search_path (event trigger drill_ddl")
        assert state(drill) == before
        drill["victim"].execute("SELECT 1")
        refused(drill, "SELECT kill_volatile()")
    finally:
        db.execute("DROP EVENT TRIGGER drill_ddl")
