"""``ops roles``: the three group roles of sql/roles.sql (s10_maintenance, s10_monitoring, s10_diagnosis).

show  - print the SQL for an app schema (what apply runs; run it with psql by hand if you prefer)
apply - create the roles and grant them exactly what their commands need; safe to rerun. Exit 0 when
        everything was done, 1 with one line per statement it could not run (e.g. CREATE ROLE on a
        managed database), 2 for bad input.

The SQL lives once in sql/roles.sql; this module only fills in the schema names and the owners of the
app's tables, and runs each statement on its own so that one refusal does not hide the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import pglast
import psycopg
import typer
from psycopg import sql

from ops import SQL_DIR
from ops.db import (
    DIAGNOSIS_ROLE,
    MAINTENANCE_ROLE,
    MONITORING_ROLE,
    check_dsn,
    connect,
    first_line,
    require_primary,
)
from ops.errors import FAILED, OK, OpsError, UsageError
from ops.output import emit_json, info, line
from ops.sqlfiles import query

ROLES_FILE = SQL_DIR / "roles.sql"
ROLES = (MAINTENANCE_ROLE, MONITORING_ROLE, DIAGNOSIS_ROLE)
OWNER_PLACEHOLDER = ':"owner"'
WHEN_LEDGER = "-- when: ledger exists"
SHOW_OWNER = "<owner of the app's tables>"


@dataclass(frozen=True)
class Statement:
    text: str  # with the psql variables :"schema", :"ledger_schema", :"owner"
    per_owner: bool
    needs_ledger: bool

    @property
    def sql_only(self) -> str:
        """The statement without the comment lines that precede it in the file."""
        return "\n".join(ln for ln in self.text.splitlines() if not ln.lstrip().startswith("--")).strip()


def statements() -> list[Statement]:
    """The statements of sql/roles.sql, in order (split by PostgreSQL's own scanner)."""
    out = []
    for text in pglast.split(ROLES_FILE.read_text(), with_parser=False):
        lines = [ln.strip() for ln in text.splitlines()]
        code = "\n".join(ln for ln in lines if not ln.startswith("--"))
        out.append(Statement(text=text, per_owner=OWNER_PLACEHOLDER in code, needs_ledger=WHEN_LEDGER in lines))
    return out


def render(text: str, schema: str, ledger_schema: str, owner: str | None = None) -> str:
    """Fill in the psql variables as quoted identifiers (psql's :"name" does the same)."""

    def ident(name: str) -> str:
        return sql.Identifier(name).as_string(None)

    def fill(ln: str) -> str:
        if ln.lstrip().startswith("--"):
            return ln  # the comments speak of the variables themselves
        ln = ln.replace(':"schema"', ident(schema)).replace(':"ledger_schema"', ident(ledger_schema))
        return ln.replace(OWNER_PLACEHOLDER, ident(owner) if owner is not None else ident(SHOW_OWNER))

    return "\n".join(fill(ln) for ln in text.split("\n"))


def show(schema: str, ledger_schema: str) -> str:
    return render(ROLES_FILE.read_text(), schema, ledger_schema)


@dataclass
class Outcome:
    done: list[str]
    failed: list[dict[str, str]]
    skipped: list[dict[str, str]]

    def as_json(self) -> dict[str, Any]:
        return {"done": self.done, "failed": self.failed, "skipped": self.skipped}


def _plan(conn: psycopg.Connection[Any], schema: str, ledger_schema: str, out: Outcome) -> list[str]:
    """The statements to run here: per owner of the app's tables, the ledger's only once it exists."""
    exists = conn.execute("SELECT to_regnamespace(%s) IS NOT NULL AS ok", (schema,)).fetchone()
    if not (exists and exists["ok"]):
        raise UsageError(f"schema {schema!r} does not exist in this database (--schema names the app's schema)")
    owners = conn.execute(query("table_owners"), {"schema": schema, "ledger_schema": ledger_schema}).fetchall()
    ledger = conn.execute(query("ledger_state"), {"schema": ledger_schema, "table": "ops_migrations"}).fetchone()
    todo = []
    for st in statements():
        if st.needs_ledger and not (ledger and ledger["exists"]):
            out.skipped.append({"statement": st.sql_only, "reason": "no ledger yet (ops migrate apply creates it)"})
            continue
        if not st.per_owner:
            todo.append(render(st.sql_only, schema, ledger_schema))
            continue
        for row in owners:
            if row["owner"] in ROLES:
                continue
            if row["superuser"]:
                out.failed.append(
                    {
                        "statement": render(st.sql_only, schema, ledger_schema, row["owner"]),
                        "error": f"superuser {row['owner']} owns tables in {schema}: {MAINTENANCE_ROLE} is never "
                        f"made a member of a superuser; give the app's tables their own owner role (ALTER TABLE ... "
                        f"OWNER TO app_owner), then rerun",
                    }
                )
                continue
            todo.append(render(st.sql_only, schema, ledger_schema, row["owner"]))
    return todo


def _check_diagnosis(conn: psycopg.Connection[Any], out: Outcome) -> None:
    """s10_diagnosis must not be able to reach outside its transaction, however it came to be."""
    for r in conn.execute(query("role_state"), {"roles": [DIAGNOSIS_ROLE]}).fetchall():
        if not r["exists"]:
            continue
        bad = [k for k in ("superuser", "replication", "bypassrls", "signal_backend") if r[k]]
        if bad:
            out.failed.append(
                {
                    "statement": f"check {DIAGNOSIS_ROLE}",
                    "error": f"{DIAGNOSIS_ROLE} has {', '.join(bad)} (member of {', '.join(r['member_of']) or 'no role'}):"
                    f" ALTER ROLE {DIAGNOSIS_ROLE} NOSUPERUSER NOREPLICATION NOBYPASSRLS, and revoke those roles",
                }
            )


def apply(dsn: str | None, schema: str, ledger_schema: str, dry_run: bool = False) -> Outcome:
    """Run sql/roles.sql statement by statement; collect what could not be done."""
    out = Outcome(done=[], failed=[], skipped=[])
    with connect(dsn) as conn:
        require_primary(conn, "ops roles apply")
        for stmt in _plan(conn, schema, ledger_schema, out):
            if dry_run:
                out.done.append(stmt)
                continue
            try:
                conn.execute(stmt)  # type: ignore[arg-type]  # from our own file, identifiers quoted
            except (psycopg.Error, OpsError) as exc:
                out.failed.append({"statement": stmt, "error": first_line(exc)})
                continue
            out.done.append(stmt)
        if not dry_run:
            _check_diagnosis(conn, out)
    return out


def _one_line(stmt: str) -> str:
    return " ".join(stmt.split())


# ---------------------------------------------------------------- CLI

roles_app = typer.Typer(help=__doc__, no_args_is_help=True)

DsnOpt = Annotated[
    str | None,
    typer.Option("--dsn", help="libpq connection string without a password (default: the PG* environment)."),
]
SchemaOpt = Annotated[
    str, typer.Option("--schema", envvar="S10_SCHEMA", help="The app's schema: its tables are what the roles get.")
]
LedgerOpt = Annotated[
    str,
    typer.Option("--ledger-schema", envvar="S10_LEDGER_SCHEMA", help="Schema of the ledger table ops_migrations."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]


@roles_app.command("show")
def show_cmd(schema: SchemaOpt = "public", ledger_schema: LedgerOpt = "public", json: JsonOpt = False) -> None:
    """Print the roles and their grants (sql/roles.sql for this schema); connects to nothing."""
    if json:
        stmts = [render(s.sql_only, schema, ledger_schema) for s in statements()]
        emit_json(OK, f"{len(ROLES)} roles, {len(stmts)} statements", {"roles": list(ROLES), "statements": stmts})
    else:
        print(show(schema, ledger_schema), end="")


@roles_app.command("apply")
def apply_cmd(
    dsn: DsnOpt = None,
    schema: SchemaOpt = "public",
    ledger_schema: LedgerOpt = "public",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the statements it would run; run none.")] = False,
    json: JsonOpt = False,
) -> None:
    """Create s10_maintenance, s10_monitoring and s10_diagnosis and grant what their commands need.

    Idempotent. Exit 0 all done, 1 with one line per thing it could not do, 2 bad input.
    """
    out = apply(check_dsn(dsn), schema, ledger_schema, dry_run)
    code = FAILED if out.failed else OK
    verb = "would run" if dry_run else "ran"
    summary = f"{'dry run' if dry_run else 'done'}: {verb} {len(out.done)} statement(s), {len(out.failed)} not done"
    if out.failed:
        first = out.failed[0]
        summary = (
            f"roles: {len(out.failed)} thing(s) not done, first: {_one_line(first['statement'])}: {first['error']}"
        )
    if json:
        emit_json(code, summary, out.as_json(), kind="action")
    else:
        for stmt in out.done:
            (line if dry_run else info)(f"{'would run' if dry_run else 'ok'}: {_one_line(stmt)}")
        for s in out.skipped:
            info(f"skipped: {_one_line(s['statement'])} ({s['reason']})")
        for f in out.failed:
            info(f"NOT DONE: {_one_line(f['statement'])}: {f['error']}")
        info(summary)
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add ``ops roles`` to the main CLI."""
    app.add_typer(roles_app, name="roles", help="The s10 roles (sql/roles.sql): show them, apply them.")
