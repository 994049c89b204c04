"""Other people's schemas: a schema named like the connecting role, and a schema first in search_path,
each holding tables and indexes named like the app's. Every ops command must read and act on the
declared (public) objects only, and leave the other schema exactly as it was."""

from __future__ import annotations

import json

import psycopg
import pytest
from psycopg import sql

from tests.test_migrate import S10_NAMED

SHADOW_TABLES = ("users", "sessions")


def make_shadow(db, schema: str) -> None:
    """``schema`` gets users/sessions like the app's, an index named ix_users_email of another definition,
    an INVALID and a redundant index, bloat-estimable statistics, and a never-analyzed table."""
    s = sql.Identifier(schema)
    with db.connect() as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(s))
        conn.execute(
            sql.SQL("CREATE TABLE {}.users (id bigint PRIMARY KEY, email text, deleted_at timestamptz)").format(s)
        )
        conn.execute(sql.SQL("CREATE TABLE {}.sessions (id bigint PRIMARY KEY, token text, user_id bigint)").format(s))
        conn.execute(
            sql.SQL("ALTER TABLE {}.sessions SET (autovacuum_enabled = false)").format(s)
        )  # stays never analyzed unless someone ANALYZEs it
        conn.execute(
            sql.SQL("INSERT INTO {}.users SELECT g, 'dup' || (g % 50), NULL FROM generate_series(1, 2000) g").format(s)
        )
        conn.execute(sql.SQL("INSERT INTO {}.sessions SELECT g, 't' || g, g FROM generate_series(1, 2000) g").format(s))
        conn.execute(sql.SQL("CREATE INDEX ix_users_email ON {}.users (id, email)").format(s))
        conn.execute(sql.SQL("CREATE INDEX shadow_only_redundant ON {}.users (id)").format(s))
        with pytest.raises(
            psycopg.errors.UniqueViolation
        ):  # duplicates: the failed build leaves an INVALID index behind
            conn.execute(sql.SQL("CREATE UNIQUE INDEX CONCURRENTLY shadow_only_invalid ON {}.users (email)").format(s))
        conn.execute(sql.SQL("ANALYZE {}.users").format(s))


def snapshot(db, schema: str) -> dict[str, tuple]:
    """Every relation of the schema: oid, file, definition, validity; and when each table was analyzed."""
    rows = db.fetchall(
        """SELECT c.relname, c.oid::bigint, c.relfilenode::bigint, c.relkind::text,
                  CASE WHEN c.relkind = 'i' THEN pg_get_indexdef(c.oid) END,
                  (SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = c.oid),
                  s.last_analyze
           FROM pg_class c LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
           WHERE c.relnamespace = %s::regnamespace""",
        (schema,),
    )
    return {r[0]: r[1:] for r in rows}


@pytest.fixture(params=["role-named", "first-in-path"])
def shadowed(request, db):
    """(db, schema): a schema that shadows public through the default search_path."""
    if request.param == "role-named":
        schema = db.fetchall("SELECT current_user")[0][0]  # "$user" comes first in the default search_path
    else:
        schema = "other"
        db.execute(sql.SQL("ALTER DATABASE {} SET search_path = other, public").format(sql.Identifier(db.name)))
    make_shadow(db, schema)
    resolved = db.fetchall("SELECT relnamespace::regnamespace::text FROM pg_class WHERE oid = to_regclass('users')")
    assert resolved == [(schema,)], "the shadow is in effect: 'users' means the other schema's table"
    return db, schema


def _json(proc) -> dict:
    assert "Traceback" not in proc.stderr, proc.stderr
    return json.loads(proc.stdout)


def test_migrate_touches_and_reports_only_the_declared_objects(shadowed, ops):
    db, schema = shadowed
    before = snapshot(db, schema)

    ops("migrate", "apply", check=True)
    public = db.fetchall("SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace")
    assert S10_NAMED <= {r[0] for r in public}
    assert db.fetchall("SELECT count(*) FROM pg_class WHERE relname = 'ops_migrations'") == [(1,)], "one ledger"
    assert db.fetchall("SELECT to_regclass('public.ops_migrations') IS NOT NULL") == [(True,)]
    st = ops("migrate", "status", "--json")
    assert st.returncode == 0, st.stdout + st.stderr
    assert len(_json(st)["applied"]) == 15 and _json(st)["pending"] == []
    ver = ops("migrate", "verify", "--json")
    assert ver.returncode == 0 and _json(ver)["ok"], ver.stdout
    again = ops("migrate", "apply", check=True)
    assert "nothing to do" in again.stderr
    assert snapshot(db, schema) == before, f"schema {schema} was changed"


def test_maintain_and_index_health_read_and_act_on_the_app_schema_only(shadowed, ops):
    db, schema = shadowed
    before = snapshot(db, schema)
    db.execute(
        "INSERT INTO public.users (email, name, created_at) SELECT 'u' || g, 'U', now() FROM generate_series(1, 500) g"
    )
    db.execute("ANALYZE public.users; ANALYZE public.sessions")
    usage = ops("maintain", "usage", "--json")
    rep = _json(usage)
    assert usage.returncode in (0, 1), usage.stdout  # not CRITICAL: the INVALID index is not ours
    assert rep["indexes"] and {ix["schema"] for ix in rep["indexes"]} == {"public"}
    assert "shadow_only" not in usage.stdout
    bloat = ops("maintain", "bloat", "--json", "--min-size", "0")
    assert bloat.returncode in (0, 1, 2) and {ix["schema"] for ix in _json(bloat)["indexes"]} == {"public"}
    health = ops("playbook", "index-health", "--json")
    assert health.returncode in (0, 1), health.stdout
    assert "shadow_only" not in health.stdout and f'"{schema}"' not in health.stdout

    reindex = ops("maintain", "reindex", "--min-bloat", "0", "--min-size", "0", "--estimate-only", "--json")
    assert reindex.returncode == 0, reindex.stdout + reindex.stderr
    assert _json(reindex)["rebuilt"], "public indexes were rebuilt"
    analyze = ops("maintain", "analyze", "--json")
    assert analyze.returncode == 0, analyze.stdout + analyze.stderr

    assert snapshot(db, schema) == before, f"schema {schema} was changed"


def test_a_foreign_ops_migrations_table_is_refused_in_one_line(db, ops):
    db.execute("CREATE TABLE public.ops_migrations (name text, ran_at timestamptz)")
    for args in (("migrate", "apply"), ("migrate", "status")):
        proc = ops(*args)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
        assert "public.ops_migrations exists but is not ops's ledger" in proc.stderr
    assert db.fetchall("SELECT count(*) FROM pg_indexes WHERE indexname = 'ix_users_email'") == [(0,)]


def test_the_ledger_lives_in_the_configured_schema(db, ops):
    db.execute("CREATE SCHEMA ops")
    ops("migrate", "apply", "--ledger-schema", "ops", check=True)
    assert db.fetchall("SELECT count(*) FROM ops.ops_migrations") == [(15,)]
    assert db.fetchall("SELECT to_regclass('public.ops_migrations')") == [(None,)]
    assert ops("migrate", "status", "--ledger-schema", "ops").returncode == 0
    assert ops("migrate", "status").returncode == 1  # the public ledger is empty: all pending


def test_a_migration_that_names_its_schema_changes_only_that_schema(db, ops, tmp_path):
    db.execute(
        "CREATE SCHEMA app; CREATE TABLE app.t (x int, y int); CREATE INDEX ix_old ON app.t (y);"
        "CREATE TABLE public.t (x int, y int); CREATE INDEX ix_t_x ON public.t (y); CREATE INDEX ix_old ON public.t (x)"
    )
    (tmp_path / "aaaaaaaaaaaa_01_ix_t_x.sql").write_text("CREATE INDEX CONCURRENTLY ix_t_x ON app.t (x);\n")
    (tmp_path / "aaaaaaaaaaab_01_drop_ix_old.sql").write_text("DROP INDEX CONCURRENTLY app.ix_old;\n")
    public_before = snapshot(db, "public")
    ops("migrate", "apply", "--migrations-dir", str(tmp_path), check=True)
    assert db.fetchall("SELECT indexdef FROM pg_indexes WHERE schemaname = 'app' ORDER BY 1") == [
        ("CREATE INDEX ix_t_x ON app.t USING btree (x)",)
    ]
    ours = {"ops_migrations", "ops_migrations_pkey"}  # the ledger, which lives in public
    assert {k: v for k, v in snapshot(db, "public").items() if k not in ours} == public_before
    assert ops("migrate", "verify", "--migrations-dir", str(tmp_path)).returncode == 0
    assert ops("migrate", "status", "--migrations-dir", str(tmp_path)).returncode == 0
