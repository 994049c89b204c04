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
WHEN_LEDGER = "-- when: ledger exists"
# psql variables that stand for several values here: a statement naming one runs once per value
EACH = {
    "owner": "<owner of the app's tables>",
    "extension_schema": "<schema of pg_stat_statements, pgstattuple or amcheck>",
    "amcheck_schema": "<schema of amcheck>",
}
EXTENSIONS = ("pg_stat_statements", "pgstattuple", "amcheck")  # what the commands call into


@dataclass(frozen=True)
class Statement:
    text: str  # with the psql variables :"schema", :"ledger_schema" and those of EACH
    each: str | None  # the EACH variable it names, if any
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
        each = next((name for name in EACH if f':"{name}"' in code), None)
        out.append(Statement(text=text, each=each, needs_ledger=WHEN_LEDGER in lines))
    return out


def render(text: str, schema: str, ledger_schema: str, each: dict[str, str] | None = None) -> str:
    """Fill in the psql variables as quoted identifiers (psql's :"name" does the same)."""

    def ident(name: str) -> str:
        return sql.Identifier(name).as_string(None)

    def fill(ln: str) -> str:
        if ln.lstrip().startswith("--"):
            return ln  # the comments speak of the variables themselves
        ln = ln.replace(':"schema"', ident(schema)).replace(':"ledger_schema"', ident(ledger_schema))
        for name, shown in EACH.items():
            ln = ln.replace(f':"{name}"', ident((each or {}).get(name, shown)))
        return ln

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
    """The statements to run here: those naming an EACH variable once per value, the ledger's once it exists."""
    exists = conn.execute("SELECT to_regnamespace(%s) IS NOT NULL AS ok", (schema,)).fetchone()
    if not (exists and exists["ok"]):
        raise UsageError(f"schema {schema!r} does not exist in this database (--schema names the app's schema)")
    values = _each_values(conn, schema, ledger_schema, out)
    ledger = conn.execute(query("ledger_state"), {"schema": ledger_schema, "table": "ops_migrations"}).fetchone()
    todo = []
    for st in statements():
        if st.needs_ledger and not (ledger and ledger["exists"]):
            out.skipped.append({"statement": st.sql_only, "reason": "no ledger yet (ops migrate apply creates it)"})
        elif st.each is None:
            todo.append(render(st.sql_only, schema, ledger_schema))
        elif not values[st.each]:
            out.skipped.append({"statement": st.sql_only, "reason": f"no {EACH[st.each]} here"})
        else:
            todo += [render(st.sql_only, schema, ledger_schema, {st.each: v}) for v in values[st.each]]
    return todo


def _each_values(conn: psycopg.Connection[Any], schema: str, ledger_schema: str, out: Outcome) -> dict[str, list[str]]:
    """The values of the EACH variables in this database; a superuser owner is refused with its line."""
    owners = []
    for row in conn.execute(query("table_owners"), {"schema": schema, "ledger_schema": ledger_schema}).fetchall():
        if row["owner"] in ROLES:
            continue
        if row["superuser"]:
            out.failed.append(
                {
                    "statement": f"GRANT {sql.Identifier(row['owner']).as_string(None)} TO {MAINTENANCE_ROLE}",
                    "error": f"superuser {row['owner']} owns tables in {schema}: {MAINTENANCE_ROLE} is never "
                    f"made a member of a superuser; give the app's tables their own owner role (ALTER TABLE ... "
                    f"OWNER TO app_owner), then rerun",
                }
            )
            continue
        owners.append(row["owner"])
    ext = {name: conn.execute(query("extension_state"), {"name": name}).fetchone() or {} for name in EXTENSIONS}
    installed = sorted({e["schema"] for e in ext.values() if e.get("schema")})
    amcheck = [ext["amcheck"]["schema"]] if ext["amcheck"].get("schema") else []
    return {"owner": owners, "extension_schema": installed, "amcheck_schema": amcheck}


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
