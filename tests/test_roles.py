"""The s10 roles (sql/roles.sql, `ops roles apply`) and least-privileged login roles, on a real PostgreSQL:
each role can do exactly its commands' work; a role without a privilege gets one line naming it and the
GRANT that gives it, never a traceback, and nothing changes."""

from __future__ import annotations

import json
import uuid

import pytest
from psycopg import sql

from tests.conftest import run_ops

SEED_TABLES = ("users", "sessions", "organizations", "memberships", "content_jobs")


def login_role(db, *grants: str) -> dict[str, str]:
    """A fresh LOGIN role (no password: the test cluster trusts its socket) with the given GRANT statements
    (``{r}`` is the role); returns the environment that runs ops as it."""
    name = f"u_{uuid.uuid4().hex[:8]}"
    db.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name)))
    for grant in grants:
        db.execute(grant.format(r=name))
    return {**db.env, "PGUSER": name}


def one_line_error(proc) -> str:
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.startswith("ops: error")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def relfilenodes(db) -> dict[str, int]:
    return dict(db.fetchall("SELECT relname, relfilenode FROM pg_class WHERE relnamespace = 'public'::regnamespace"))


def fill_some_rows(db) -> None:
    db.execute(
        "INSERT INTO users (email, name, created_at) SELECT 'u' || g || '@x', 'U', now() FROM generate_series(1, 3000) g"
    )


@pytest.fixture
def app_owned(db):
    """The app's tables owned by a NOLOGIN role s10_app (as on a real deploy), not by a superuser."""
    db.execute(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 's10_app') THEN "
        "CREATE ROLE s10_app NOLOGIN; END IF; END $$"
    )
    for (table,) in db.fetchall("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"):
        db.execute(sql.SQL("ALTER TABLE public.{} OWNER TO s10_app").format(sql.Identifier(table)))
    return db


def test_roles_apply_is_idempotent_and_each_role_can_do_its_job(app_owned, ops):
    db = app_owned
    # extensions the commands call, one in a schema of its own (found through extnamespace, USAGE granted)
    db.execute("CREATE SCHEMA ext; CREATE EXTENSION pgstattuple SCHEMA ext; CREATE EXTENSION amcheck")
    first = ops("roles", "apply", "--json")
    assert first.returncode == 0, first.stdout + first.stderr
    second = ops("roles", "apply", "--json")
    assert second.returncode == 0, second.stdout + second.stderr
    assert json.loads(second.stdout)["done"] == json.loads(first.stdout)["done"]
    attrs = db.fetchall(
        "SELECT rolname, rolcanlogin, rolsuper, rolreplication, pg_has_role(oid, 'pg_signal_backend', 'USAGE') "
        "FROM pg_roles WHERE rolname LIKE 's10\\_%%' AND rolname <> 's10_app' ORDER BY 1"
    )
    assert attrs == [
        ("s10_diagnosis", False, False, False, False),
        ("s10_maintenance", False, False, False, False),
        ("s10_monitoring", False, False, False, False),
    ]
    assert db.fetchall("SELECT pg_has_role('s10_maintenance', 's10_app', 'USAGE')") == [(True,)]
    assert db.fetchall(
        "SELECT has_schema_privilege('s10_monitoring', 'ext', 'USAGE'), "
        "has_function_privilege('s10_monitoring', 'public.bt_index_check(regclass, boolean)', 'EXECUTE')"
    ) == [(True, True)]

    maintainer = login_role(db, "GRANT s10_maintenance TO {r}")
    run_ops("migrate", "apply", env=maintainer, check=True)
    assert run_ops("migrate", "status", env=maintainer).returncode == 0
    again = ops("roles", "apply", "--json")  # the ledger exists now: the group role may write it too
    assert again.returncode == 0, again.stdout + again.stderr
    assert any("ops_migrations TO s10_maintenance" in st for st in json.loads(again.stdout)["done"])
    fill_some_rows(db)
    db.execute("ANALYZE public.users")
    reindex = run_ops("maintain", "reindex", "--min-bloat", "0", "--min-size", "0", "--json", env=maintainer)
    assert reindex.returncode == 0, reindex.stdout + reindex.stderr
    assert json.loads(reindex.stdout)["rebuilt"], "the maintenance role may REINDEX the app's indexes"
    analyze = run_ops("maintain", "analyze", "--min-rows", "0", "--json", env=maintainer)
    assert analyze.returncode == 0, analyze.stdout + analyze.stderr

    monitor = login_role(db, "GRANT s10_monitoring TO {r}")
    bloat = run_ops("maintain", "bloat", "--exact", "--min-size", "0", "--json", env=monitor)
    assert bloat.returncode in (0, 1, 2), bloat.stdout + bloat.stderr
    report = json.loads(bloat.stdout)
    assert report["exact_available"] and any(ix["measured_by"] == "pgstatindex" for ix in report["indexes"])
    assert run_ops("maintain", "usage", env=monitor).returncode in (0, 1)

    reader = login_role(db, "GRANT s10_diagnosis TO {r}")
    proc = run_ops("playbook", "index-health", "--json", env=reader)
    assert "Traceback" not in proc.stderr


def test_a_ledger_made_by_a_superuser_is_not_an_app_table(app_owned, ops):
    ops("migrate", "apply", check=True)  # as the cluster's superuser: the ledger is a superuser's table
    proc = ops("roles", "apply")
    assert proc.returncode == 0, proc.stderr  # s10_maintenance joins s10_app, and is never asked to join postgres
    assert app_owned.fetchall("SELECT pg_has_role('s10_maintenance', 'postgres', 'MEMBER')") == [(False,)]


def test_a_select_only_role_gets_one_line_and_changes_nothing(db, ops):
    reader = login_role(db, "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {r}")
    before = relfilenodes(db)

    err = one_line_error(run_ops("migrate", "apply", env=reader))
    assert "ownership" in err and "GRANT s10_maintenance TO" in err, err
    assert relfilenodes(db) == before
    assert db.fetchall("SELECT to_regclass('public.ops_migrations')") == [(None,)], "no ledger was created"

    err = one_line_error(run_ops("maintain", "analyze", env=reader))
    assert "needs ownership" in err and "s10_maintenance" in err, err
    assert db.fetchall("SELECT count(*) FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL") == [(0,)]

    ops("migrate", "apply", check=True)
    fill_some_rows(db)
    db.execute("ANALYZE")
    before = relfilenodes(db)
    for extra in (["--dry-run"], []):
        proc = run_ops(
            "maintain", "reindex", "--min-bloat", "0", "--min-size", "0", "--estimate-only", *extra, env=reader
        )
        err = one_line_error(proc)
        assert "needs ownership of public." in err and "GRANT s10_maintenance TO" in err, err
    assert relfilenodes(db) == before


def test_a_report_without_a_privilege_is_unknown_in_one_line(db):
    db.execute("CREATE SCHEMA app; CREATE TABLE app.t (id int PRIMARY KEY); CREATE EXTENSION pgstattuple")
    monitor = login_role(db, "GRANT pg_monitor TO {r}")  # may run pgstatindex, but not look inside schema app
    proc = run_ops("maintain", "bloat", "--exact", "--schema", "app", "--min-size", "0", env=monitor)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    verdicts = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "permission denied" in ln]
    assert len(verdicts) == 1 and proc.stdout.startswith("UNKNOWN: "), proc.stdout + proc.stderr  # said once
    err = verdicts[0]
    assert "permission denied for schema app" in err and "GRANT USAGE ON SCHEMA app TO" in err, err
    assert "s10_monitoring" in err


def test_bloat_exact_tells_not_installed_from_not_allowed(db):
    nobody = login_role(db)

    def notes() -> str:
        proc = run_ops("maintain", "bloat", "--exact", "--json", env=nobody)
        assert proc.returncode in (0, 1, 2) and "Traceback" not in proc.stderr, proc.stderr
        return " ".join(json.loads(proc.stdout)["notes"])

    assert "pgstattuple is not installed" in notes()
    db.execute("CREATE EXTENSION pgstattuple")
    text = notes()
    assert "not installed" not in text
    assert "installed (schema public) but this role may not execute" in text and "pg_stat_scan_tables" in text


def test_provision_as_a_role_that_may_not_names_each_thing_it_could_not_do(db):
    """A managed database: the connecting role may create neither extensions nor roles. `ops provision`
    tries every step, names each one it could not do (one line each), exits 1, and never stops at the first."""
    env = login_role(db)  # LOGIN, nothing else
    proc = run_ops("provision", "--json", env=env)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    answer = json.loads(proc.stdout)
    assert answer["status"] == "FAILED" and answer["exit_code"] == 1
    names = [item.split(":")[0] for item in answer["could_not"]]
    for ext in ("pg_stat_statements", "pgstattuple", "hypopg", "amcheck"):
        assert f"extension {ext}" in names
    assert any(item.startswith("roles: ") and "CREATEROLE" in item for item in answer["could_not"])
    assert db.fetchall("SELECT extname FROM pg_extension WHERE extname <> 'plpgsql'") == []
