"""pyinfra fact and operation for the index migrations: they run the same ``ops migrate`` code."""

from __future__ import annotations

import json
import shlex
from typing import Any

from pyinfra import host
from pyinfra.api import FactBase, operation

from ops.deploy import fail_command
from ops.settings import DbSettings


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
def indexes_migrated(settings: DbSettings):
    """
    Bring the database to the index set in sql/migrations/, online.

    + settings: validated ``DbSettings`` (ops_bin, pg_env, lock_timeout, retries)

    Runs ``ops migrate apply`` only when the ``MigrationState`` fact shows pending migrations
    or broken indexes, so ``--dry`` shows what would run and a second deploy changes nothing.

    **Example:**

    .. code:: python

        indexes_migrated(name="S10 indexes", settings=db_settings)
    """
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
    build = []  # sized for the server unless the inventory says otherwise
    if settings.maintenance_work_mem:
        build += ["--maintenance-work-mem", settings.maintenance_work_mem]
    if settings.parallel_workers is not None:
        build += ["--parallel-workers", str(settings.parallel_workers)]
    yield ops_command(
        settings,
        "migrate",
        "apply",
        "--lock-timeout",
        str(settings.lock_timeout),
        "--retries",
        str(settings.retries),
        *build,
    )
