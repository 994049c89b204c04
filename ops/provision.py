"""``ops provision``: the extensions the tools use and the s10 roles, in the app database.

One command for the deploy (on a server it manages, and from a runner host against a managed
database) and for a person: it does what the connecting role may, and prints one line for each
thing it could not do (exit 1). ``--dry-run`` tries each step inside a transaction that is rolled
back, so it names exactly what would be done and what would fail, and changes nothing.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Annotated, Any

import psycopg
import typer
from psycopg import sql

from ops.db import PrivilegeError, check_dsn, connect, first_line
from ops.errors import OK, WARNING
from ops.output import emit_json, info, line
from ops.sqlfiles import query

EXTENSIONS = ("pg_stat_statements", "pgstattuple", "hypopg", "amcheck")
GROUP_ROLES = ("s10_maintenance", "s10_monitoring", "s10_diagnosis")
#: What the scheduled jobs' login role gets: maintenance (migrate, reindex, analyze) and monitoring (reports).
LOGIN_ROLE_GROUPS = ("s10_maintenance", "s10_monitoring")


@dataclass
class Outcome:
    done: list[str] = field(default_factory=list)
    todo: list[str] = field(default_factory=list)
    ok: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"done": self.done, "todo": self.todo, "already": self.ok, "could_not": self.failed}


def _try(conn: psycopg.Connection[Any], statement: sql.Composed, dry_run: bool) -> str | None:
    """Run one statement in its own transaction (rolled back on a dry run); the error's first line, or None."""
    try:
        with conn.transaction(force_rollback=dry_run):
            conn.execute(statement)
    except (psycopg.Error, PrivilegeError) as exc:  # a permission denied is one thing not done, not the end
        return first_line(exc)
    return None


def extensions(conn: psycopg.Connection[Any], schema: str, dry_run: bool, out: Outcome) -> None:
    for name in EXTENSIONS:
        state = conn.execute(query("extension_available"), {"name": name}).fetchone() or {}
        if state.get("installed_version"):
            out.ok.append(f"extension {name}")
            continue
        if not state.get("available"):
            out.failed.append(
                f"extension {name}: not available on the server (install its package, e.g. postgresql-15-hypopg)"
            )
            continue
        stmt = sql.SQL("CREATE EXTENSION IF NOT EXISTS {} WITH SCHEMA {}").format(
            sql.Identifier(name), sql.Identifier(schema)
        )
        error = _try(conn, stmt, dry_run)
        if error:
            out.failed.append(f"extension {name}: {error}")
        else:
            (out.todo if dry_run else out.done).append(f"extension {name}")


def _roles_apply(dsn: str | None, schema: str | None, out: Outcome) -> None:
    """The three group roles through ``ops roles apply`` (their grants live in sql/roles.sql)."""
    argv = [sys.executable, "-m", "ops", "roles", "apply", "--json"]
    argv += ["--dsn", dsn] if dsn else []
    argv += ["--schema", schema] if schema else []
    proc = subprocess.run(argv, capture_output=True, text=True, env=os.environ.copy(), check=False)
    if "No such command" in proc.stderr:
        out.failed.append("roles: this ops has no 'ops roles apply' yet")
        return
    try:
        answer = json.loads(proc.stdout)
    except json.JSONDecodeError:
        out.failed.append(f"roles: ops roles apply failed: {(proc.stderr.strip().splitlines() or ['no output'])[-1]}")
        return
    if proc.returncode == OK:
        out.done.append(f"roles: {answer.get('summary', 'applied')}")
    else:
        # ops roles apply --json: "failed" is [{"statement": ..., "error": ...}], one per statement not run
        problems = answer.get("failed") or [answer.get("summary", "failed")]
        out.failed += [f"roles: {_one_line(p)}" for p in problems]


def _one_line(problem: Any) -> str:
    if isinstance(problem, dict) and "error" in problem:
        statement = " ".join(str(problem.get("statement", "")).split())
        return f"{statement[:80]}: {problem['error']}"
    return problem if isinstance(problem, str) else json.dumps(problem)


def roles(conn: psycopg.Connection[Any], dsn: str | None, schema: str | None, dry_run: bool, out: Outcome) -> None:
    present = {r["rolname"] for r in conn.execute(query("roles_present"), {"names": list(GROUP_ROLES)}).fetchall()}
    missing = [r for r in GROUP_ROLES if r not in present]
    if importlib.util.find_spec("ops.roles") is None:
        out.failed.append("roles: this ops has no 'ops roles apply' yet")
        return
    if dry_run:
        if missing:
            out.todo.append(f"roles {', '.join(missing)} (ops roles apply)")
        else:
            out.ok.append("roles " + ", ".join(GROUP_ROLES))
        return
    _roles_apply(dsn, schema, out)


def login_role(conn: psycopg.Connection[Any], role: str, dry_run: bool, out: Outcome) -> None:
    """Make ``role`` a member of the maintenance and monitoring roles (the scheduled jobs' login)."""
    rows = conn.execute(query("role_memberships"), {"role": role, "groups": list(LOGIN_ROLE_GROUPS)}).fetchall()
    have = {r["groupname"] for r in rows}
    exists = any(r["role_exists"] for r in rows) if rows else False
    if not rows or not exists:
        out.failed.append(f"login role {role}: does not exist (create it with a password first)")
        return
    for group in LOGIN_ROLE_GROUPS:
        if group in have:
            out.ok.append(f"{role} in {group}")
            continue
        error = _try(conn, sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), sql.Identifier(role)), dry_run)
        if error:
            out.failed.append(f"{role} in {group}: {error}")
        else:
            (out.todo if dry_run else out.done).append(f"{role} in {group}")


def provision(dsn: str | None, schema: str, roles_schema: str | None, grant_to: str | None, dry_run: bool) -> Outcome:
    out = Outcome()
    with connect(dsn) as conn:
        extensions(conn, schema, dry_run, out)
        roles(conn, dsn, roles_schema, dry_run, out)
        if grant_to:
            login_role(conn, grant_to, dry_run, out)
    return out


def register(app: typer.Typer) -> None:
    @app.command("provision")
    def provision_cmd(
        dsn: Annotated[
            str | None, typer.Option("--dsn", help="libpq connection string without a password (default: PG* env).")
        ] = None,
        schema: Annotated[str, typer.Option("--extension-schema", help="Schema the extensions go in.")] = "public",
        roles_schema: Annotated[
            str | None, typer.Option("--schema", help="The app's schema, passed to ops roles apply.")
        ] = None,
        grant_to: Annotated[
            str | None,
            typer.Option(
                "--grant-to", help="Login role that gets s10_maintenance and s10_monitoring (the cron jobs')."
            ),
        ] = None,
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Try each step and roll back: change nothing.")
        ] = False,
        json_out: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
    ) -> None:
        """Extensions (pg_stat_statements, pgstattuple, hypopg, amcheck) and the s10 roles. Exit 0 all done, 1 something could not be done."""
        out = provision(check_dsn(dsn), schema, roles_schema, grant_to, dry_run)
        code = WARNING if out.failed else OK
        verb = "would do" if dry_run else "done"
        summary = f"{len(out.done or out.todo)} {verb}, {len(out.ok)} already in place, {len(out.failed)} could not"
        if json_out:
            emit_json(code, summary, out.as_json(), kind="action")
        else:
            line(f"{'OK' if code == OK else 'FAILED'}: {summary}")
            for item in out.failed:
                line(f"could not: {item}")
            for item in out.done or out.todo:
                info(f"{verb}: {item}")
        raise typer.Exit(code)
