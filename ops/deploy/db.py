"""pyinfra fact and operation for the index migrations: they run the same ``ops migrate`` code."""

from __future__ import annotations

import hashlib
import json
import shlex
from functools import cache
from typing import Any

from pyinfra import host, logger
from pyinfra.api import FactBase, FunctionCommand, operation

from ops.deploy import fail_command
from ops.settings import DbSettings
from ops.sqlfiles import query


def ops_command(settings: DbSettings, *args: str) -> str:
    """``env PG...=... /path/ops <args>``: libpq settings, never a password, on the command line."""
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(settings.pg_env.items()))
    cmd = " ".join(shlex.quote(a) for a in (settings.ops_bin, *args))
    return f"env {env} {cmd}" if env else cmd


class MigrationState(FactBase[dict[str, Any]]):
    """
    What ``ops migrate status --json`` reports on the host: applied and pending migrations,
    INVALID / drifted / missing indexes of applied ones, tampered files, and whether the
    database is a replica.
    """

    def command(self, settings: DbSettings) -> str:  # type: ignore[override]
        # status exits 1 when something needs applying, 3 when the database is unreachable; with
        # --json either way stdout carries the state or {"error": ...}, which the operation reports.
        missing = json.dumps({"error": f"ops is not installed on this host at {settings.ops_bin} (db_ops_bin)"})
        return (
            f"if [ -x {shlex.quote(settings.ops_bin)} ]; then "
            f"{ops_command(settings, 'migrate', 'status', '--json')} || true; "
            f"else echo {shlex.quote(missing)}; fi"
        )

    def process(self, output: list[str]) -> dict[str, Any]:  # type: ignore[override]
        text = "\n".join(output)
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return {"error": f"unexpected output from ops migrate status: {text[:200]!r}"}


@operation()
def indexes_migrated(settings: DbSettings, fresh_ops: bool = False, quick_ok: bool = False):
    """
    Bring the database to the index set in sql/migrations/, online.

    + settings: validated ``DbSettings`` (ops_bin, pg_env, lock_timeout, retries)
    + fresh_ops: this deploy installs or replaces ops first, so the state cannot be asked now:
      ``ops migrate apply`` runs (it is safe to rerun and does nothing when nothing is pending)
    + quick_ok: the ``QuickState`` check (psql, no Python on the host) found the ledger equal to this
      checkout's migrations, every declared index present and none INVALID: nothing to do

    Runs ``ops migrate apply`` only when the ``MigrationState`` fact shows pending migrations
    or broken indexes, so ``--dry`` shows what would run and a second deploy changes nothing.

    **Example:**

    .. code:: python

        indexes_migrated(name="S10 indexes", settings=db_settings)
    """
    if fresh_ops:
        yield _apply(settings)
        return
    if quick_ok:
        host.noop("migrations ledger matches this checkout; every declared index present and valid")
        return
    state = host.get_fact(MigrationState, settings=settings)
    # Failures are reported as a failing command, so this host shows one clear error line
    # (and other hosts carry on) instead of a traceback from inside the operation.
    if "error" in state:
        yield fail_command(state["error"])
        return
    if state["in_recovery"]:
        yield fail_command(
            "the database in db_primary is a replica (pg_is_in_recovery() is true): migrations run on the primary only"
        )
        return
    if state["tampered"]:
        names = ", ".join(t["migration"] for t in state["tampered"])
        yield fail_command(f"refusing to run: applied migration(s) changed on disk since they ran: {names}")
        return
    if not state["needs_apply"]:
        host.noop(f"{len(state['applied'])} migrations applied, every index valid and exact")
        return
    yield _apply(settings)


def _apply(settings: DbSettings) -> str:
    build = []  # sized for the server unless the inventory says otherwise
    if settings.maintenance_work_mem:
        build += ["--maintenance-work-mem", settings.maintenance_work_mem]
    if settings.parallel_workers is not None:
        build += ["--parallel-workers", str(settings.parallel_workers)]
    return ops_command(
        settings,
        "migrate",
        "apply",
        "--lock-timeout",
        str(settings.lock_timeout),
        "--retries",
        str(settings.retries),
        *build,
    )


class ProvisionState(FactBase[dict[str, Any]]):
    """``ops provision --dry-run --json``: what would be done and what could not (rolled back, no change)."""

    @staticmethod
    def default() -> dict[str, Any]:
        return {}

    def command(self, command: str) -> str:  # type: ignore[override]
        return f"{command} --dry-run --json 2>/dev/null || true"

    def process(self, output: list[str]) -> dict[str, Any]:  # type: ignore[override]
        try:
            return json.loads("\n".join(output))
        except json.JSONDecodeError:
            return {}


def _fatal(could_not: list[str]) -> list[str]:
    """On a server the deploy manages, a missing extension fails the host (the tools need them); role
    problems are named as warnings, since the roles' grants come from ``ops roles apply``."""
    return [item for item in could_not if item.startswith("extension ")]


def _run_provision(state: Any, host: Any, command: str, strict: bool) -> None:
    """At execute time: run ``ops provision --json``, name each thing it could not do, fail only where it must."""
    from pyinfra.api import StringCommand
    from pyinfra.api.exceptions import OperationError

    _ok, out = host.run_shell_command(StringCommand(f"{command} --json"), print_output=False)
    try:
        answer = json.loads(out.stdout)
    except json.JSONDecodeError:
        raise OperationError(
            f"ops provision failed: {(out.stderr.strip().splitlines() or ['no output'])[-1]}"
        ) from None
    could_not = answer.get("could_not", [])
    for item in could_not:
        logger.warning(f"{host.name}: ops provision could not: {item}")
    if answer.get("status") not in ("OK", "FAILED") or (strict and _fatal(could_not)):
        raise OperationError(f"ops provision: {answer.get('summary')}; could not: {'; '.join(could_not)}")


@operation()
def provisioned(command: str, fresh_ops: bool, strict: bool, quick_ok: bool = False):
    """
    Extensions and roles in the app database through ``ops provision`` (the command a person runs).

    + command: the ``ops provision`` command line for this host (as postgres on a managed server,
      with the inventory's libpq environment against a managed database)
    + fresh_ops: ops is installed or replaced by this deploy, so its dry run cannot be asked now
    + strict: a managed server: anything it could not do fails the host; a managed database: each
      is named (a warning) and the deploy goes on
    + quick_ok: the ``QuickState`` check saw the four extensions and the three roles: nothing to do

    Nothing to do (the dry run's ``todo`` is empty) is no change; what it could not do is named
    on every deploy.
    """
    if quick_ok and not fresh_ops:
        host.noop("extensions and roles in place")
        return
    if not fresh_ops:
        state = host.get_fact(ProvisionState, command=command)
        if state and not state.get("todo"):
            for item in state.get("could_not", []):
                logger.warning(f"{host.name}: ops provision could not: {item}")
            if strict and _fatal(state.get("could_not", [])):
                yield fail_command("ops provision could not: " + "; ".join(_fatal(state["could_not"])))
                return
            host.noop(f"extensions and roles in place ({len(state.get('already', []))} checked)")
            return
    yield FunctionCommand(_run_provision, (command, strict), {})


class QuickState(FactBase[dict[str, Any]]):
    """sql/queries/deploy_state.sql through psql: the no-change check that starts no Python on the host ({} on any error)."""

    @staticmethod
    def default() -> dict[str, Any]:
        return {}

    def command(self, settings: DbSettings, names: list[str]) -> str:  # type: ignore[override]
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(settings.pg_env.items()))
        array = shlex.quote("{" + ",".join(names) + "}")
        ledger = shlex.quote(settings.pg_env.get("S10_LEDGER_SCHEMA") or "public")
        return (
            f"env {env} psql -X -A -t -q -F '|' -v ON_ERROR_STOP=1 -v names={array} -v ledger_schema={ledger} "
            f"2>/dev/null <<'S10SQL' || true\n"
            f"{query('deploy_state')}\nS10SQL"
        )

    def process(self, output: list[str]) -> dict[str, Any]:  # type: ignore[override]
        fields = (output[0] if output else "").split("|")
        if len(fields) != 5:
            return {}
        return {
            "ledger": fields[0],
            "invalid": int(fields[1]),
            "present": int(fields[2]),
            "extensions": [e for e in fields[3].split(",") if e],
            "roles": int(fields[4]),
        }


@cache
def expected_state() -> tuple[str, list[str]]:
    """This checkout's ledger digest (md5 of id:sha256, ',' joined, bytewise order) and declared index names."""
    from ops.migrations import MIGRATIONS_DIR, declared_indexes, load_all

    migrations = load_all()
    text = ",".join(
        f"{p.stem}:{hashlib.sha256(p.read_bytes()).hexdigest()}" for p in sorted(MIGRATIONS_DIR.glob("*.sql"))
    )
    return hashlib.md5(text.encode()).hexdigest(), sorted(declared_indexes(migrations))


def quick_state(settings: DbSettings) -> dict[str, Any]:
    """The quick check's answer, with whether migrations and provisioning are already as this checkout wants."""
    digest, names = expected_state()
    state = host.get_fact(QuickState, settings=settings, names=names)
    if not state:
        return {"migrations_ok": False, "provision_ok": False}
    return {
        "migrations_ok": state["ledger"] == digest and state["invalid"] == 0 and state["present"] == len(names),
        "provision_ok": len(state["extensions"]) == 4 and state["roles"] == 3,
    }
