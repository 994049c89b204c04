"""ops migrate: bring a database to the index set in sql/migrations/, online.

status  - what is applied, pending, tampered, or broken (invalid / drifted / missing)
apply   - build what is pending and repair what is broken, CONCURRENTLY, with lock retries
verify  - every declared index exists, is valid and has its declared definition

Every lookup and statement names its schema (the one the migration declares, default public);
the ledger is ``<ledger schema>.ops_migrations`` (default public), never found through search_path.
"""

from __future__ import annotations

import getpass
import os
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import errors, sql

from ops import SQL_DIR
from ops.db import (
    MAINTENANCE_ROLE,
    ROLES_HINT,
    PrivilegeError,
    advisory_lock,
    concurrent_build_warning,
    connect,
    first_line,
    in_recovery,
    qualname,
    require_owner,
    require_primary,
)
from ops.errors import FAILED, OpsError, UsageError
from ops.migrations import (
    ConstraintDecl,
    DropDecl,
    IndexDecl,
    Migration,
    canonical_from_indexdef,
    declared_indexes,
    load_all,
    select,
)
from ops.online import RetryPolicy, drop_index_concurrently, run_online
from ops.sqlfiles import query

LOCK_NAME = "migrate"
LEDGER_TABLE = "ops_migrations"
LEDGER_COLUMNS = ("id", "checksum", "applied_at", "duration_ms", "applied_by", "outcome")
Log = Callable[[str], None]


def default_ledger_schema() -> str:
    """Where the ledger lives: S10_LEDGER_SCHEMA, else public."""
    return os.environ.get("S10_LEDGER_SCHEMA") or "public"


# ---------------------------------------------------------------- reading the live state


def index_state(conn: psycopg.Connection[Any], decl: IndexDecl | DropDecl) -> dict[str, Any] | None:
    return conn.execute(query("index_state"), {"schema": decl.schema, "name": decl.name}).fetchone()


def index_problem(conn: psycopg.Connection[Any], decl: IndexDecl) -> str | None:
    """None when the index exists, is valid and has the declared definition; else what is wrong."""
    state = index_state(conn, decl)
    if state is None:
        return "missing"
    if state["table"] != decl.table:
        return f"exists on table {state['table']}, declared on {decl.table}"
    if not state["valid"]:
        return "building (another session)" if state["build_in_progress"] else "INVALID"
    live = canonical_from_indexdef(state["indexdef"])
    if live != decl.canonical:
        return f"definition differs: live {state['indexdef']!r}, declared {decl.sql!r}"
    return None


def constraint_problem(conn: psycopg.Connection[Any], decl: ConstraintDecl) -> str | None:
    row = conn.execute(
        query("constraint_state"), {"schema": decl.schema, "table": decl.table, "name": decl.name}
    ).fetchone()
    if row is None:
        return "constraint missing"
    if row["index"] != decl.index:
        return f"constraint uses index {row['index']}, declared {decl.index}"
    return None


def ledger_name(schema: str) -> sql.Identifier:
    return sql.Identifier(schema, LEDGER_TABLE)


def ledger_state(conn: psycopg.Connection[Any], schema: str) -> dict[str, Any]:
    """The ledger table's state; refuses (one line, exit 2) a table of that name that is not ours."""
    state = dict(conn.execute(query("ledger_state"), {"schema": schema, "table": LEDGER_TABLE}).fetchone() or {})
    if state.get("exists"):
        missing = [c for c in LEDGER_COLUMNS if c not in state["columns"]]
        if state["relkind"] not in ("r", "p") or missing:
            raise UsageError(
                f"{qualname(schema, LEDGER_TABLE)} exists but is not ops's ledger "
                f"(it has columns {', '.join(state['columns']) or 'none'}; a ledger has {', '.join(LEDGER_COLUMNS)}): "
                "nothing was done; rename that table, or keep the ledger in another schema with --ledger-schema"
            )
    return state


def ledger(conn: psycopg.Connection[Any], schema: str) -> dict[str, dict[str, Any]]:
    """The applied migrations by id (empty when there is no ledger yet)."""
    if not ledger_state(conn, schema).get("exists"):
        return {}
    stmt = sql.SQL(query("ledger_rows")).format(schema=sql.Identifier(schema))  # type: ignore[arg-type]
    return {row["id"]: row for row in conn.execute(stmt).fetchall()}


def superseded(step: IndexDecl | ConstraintDecl | DropDecl, final: dict[str, IndexDecl] | None) -> bool:
    """A create (or attach) whose index a later migration drops: nothing to build or check any more."""
    if final is None or isinstance(step, DropDecl):
        return False
    return (step.key if isinstance(step, IndexDecl) else f"{step.schema}.{step.index}") not in final


def migration_problems(
    conn: psycopg.Connection[Any], mig: Migration, final: dict[str, IndexDecl] | None = None
) -> list[dict[str, str]]:
    problems = []
    for step in mig.steps:
        if superseded(step, final):
            problem = None
        elif isinstance(step, IndexDecl):
            problem = index_problem(conn, step)
        elif isinstance(step, ConstraintDecl):
            problem = constraint_problem(conn, step)
        else:
            problem = None
        if problem:
            problems.append({"migration": mig.id, "index": step.name, "problem": problem})
    return problems


def tampered(migrations: list[Migration], applied: dict[str, dict[str, Any]]) -> list[dict[str, str]]:
    return [
        {"migration": m.id, "applied_checksum": applied[m.id]["checksum"], "file_checksum": m.checksum}
        for m in migrations
        if m.id in applied and applied[m.id]["checksum"] != m.checksum
    ]


@dataclass
class Status:
    applied: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    problems: list[dict[str, str]] = field(default_factory=list)
    tampered: list[dict[str, str]] = field(default_factory=list)
    in_recovery: bool = False

    @property
    def needs_apply(self) -> bool:
        return bool(self.pending or self.problems)

    def as_json(self) -> dict[str, Any]:
        return {
            "applied": self.applied,
            "pending": self.pending,
            "problems": self.problems,
            "tampered": self.tampered,
            "in_recovery": self.in_recovery,
            "needs_apply": self.needs_apply,
        }


def status(conn: psycopg.Connection[Any], migrations: list[Migration], ledger_schema: str | None = None) -> Status:
    applied = ledger(conn, ledger_schema or default_ledger_schema())
    st = Status(tampered=tampered(migrations, applied))
    st.in_recovery = in_recovery(conn)
    final = declared_indexes(migrations)
    for mig in migrations:
        if mig.id in applied:
            st.applied.append(mig.id)
            st.problems.extend(migration_problems(conn, mig, final))
        else:
            st.pending.append(mig.id)
    return st


def verify(conn: psycopg.Connection[Any], migrations: list[Migration]) -> tuple[int, list[dict[str, str]]]:
    """Check every index and constraint the migrations declare. Returns (count checked, problems)."""
    final = declared_indexes(migrations)
    problems: list[dict[str, str]] = []
    owner = {d.key: m.id for m in migrations for d in m.indexes}
    for decl in final.values():
        problem = index_problem(conn, decl)
        if problem:
            problems.append({"migration": owner[decl.key], "index": decl.name, "problem": problem})
    checked = len(final)
    for mig in migrations:
        for step in mig.steps:
            if isinstance(step, ConstraintDecl) and f"{step.schema}.{step.index}" in final:
                checked += 1
                problem = constraint_problem(conn, step)
                if problem:
                    problems.append({"migration": mig.id, "index": step.name, "problem": problem})
    return checked, problems


# ---------------------------------------------------------------- applying


@dataclass
class BuildSettings:
    """Per build session: memory for the sort and parallel workers. None: sized for the server."""

    maintenance_work_mem: int | None = None  # bytes
    parallel_workers: int | None = None


MEM_FLOOR, MEM_CAP = 64 * 1024**2, 2 * 1024**3  # a build sorts in memory up to this; beyond, it spills to disk


def build_session_settings(conn: psycopg.Connection[Any], build: BuildSettings) -> dict[str, str]:
    """maintenance_work_mem and max_parallel_maintenance_workers for this session's builds.

    Defaults: the server's shared_buffers (a quarter of RAM when tuned) between 64MB and 2GB, never
    less than what the server already gives; workers as many as its parallel pool allows (at most
    4, and fewer on a small CPU count when ops runs on the database host), never fewer than configured.
    Each parallel participant needs 32MB of maintenance_work_mem, so workers are capped by memory too.
    """
    row = conn.execute(query("build_settings")).fetchone()
    assert row is not None
    mem = build.maintenance_work_mem
    if mem is None:
        mem = max(int(row["maintenance_work_mem"]), min(MEM_CAP, max(MEM_FLOOR, int(row["shared_buffers"]))))
    workers = build.parallel_workers
    if workers is None:
        local_cpus = os.cpu_count() or 2
        host = conn.info.host or ""
        pool = min(row["max_parallel_workers"], row["max_worker_processes"] - 1, 4)
        if host.startswith("/") or host in ("localhost", "127.0.0.1", "::1"):
            pool = min(pool, max(1, local_cpus - 1))
        workers = max(row["max_parallel_maintenance_workers"], pool) if pool > 0 else 0
        workers = max(0, min(workers, mem // (32 * 1024**2) - 1))
    return {"maintenance_work_mem": f"{max(1024, mem // 1024)}kB", "max_parallel_maintenance_workers": str(workers)}


def apply_build_settings(conn: psycopg.Connection[Any], build: BuildSettings, log: Log) -> dict[str, str]:
    chosen = {}
    for name, value in build_session_settings(conn, build).items():
        row = conn.execute("SELECT set_config(%s, %s, false) AS v", (name, value)).fetchone()  # this session only
        chosen[name] = str(row["v"]) if row else value
    log(f"build settings: {', '.join(f'{k}={v}' for k, v in chosen.items())}")
    return chosen


@dataclass
class ApplyOptions:
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    dry_run: bool = False
    lock_wait: float = 60.0
    target: str | None = None
    build: BuildSettings = field(default_factory=BuildSettings)
    ledger_schema: str = field(default_factory=default_ledger_schema)


def who() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        user = "?"
    return f"{user}@{socket.gethostname()}"


def plan_step(conn: psycopg.Connection[Any], step: IndexDecl | ConstraintDecl | DropDecl) -> tuple[str, str]:
    """(action, reason) for one step: build, rebuild, keep, attach, drop."""
    if isinstance(step, IndexDecl):
        state = index_state(conn, step)
        problem = index_problem(conn, step)
        if state is None:
            return "build", "missing"
        if problem is None:
            return "keep", "exists, valid, same definition"
        if state["constraint_name"]:
            return "refuse", f"{problem}; it backs constraint {state['constraint_name']}: fix by hand"
        if state["build_in_progress"]:
            return "refuse", "another session is building it right now"
        return "rebuild", problem
    if isinstance(step, ConstraintDecl):
        problem = constraint_problem(conn, step)
        if problem is None:
            return "keep", "constraint exists"
        if problem == "constraint missing":
            return "attach", problem
        return "refuse", problem
    return ("drop", "exists") if index_state(conn, step) else ("keep", "already gone")


def step_table(conn: psycopg.Connection[Any], step: IndexDecl | ConstraintDecl | DropDecl) -> tuple[str, str] | None:
    """(schema, table) a step changes; for a drop, the table of the index as it is now."""
    if isinstance(step, DropDecl):
        state = index_state(conn, step)
        return (step.schema, state["table"]) if state else None
    return step.schema, step.table


def require_rights(
    conn: psycopg.Connection[Any], work: list[tuple[Migration, list[Any]]], ledger: dict[str, Any], ledger_schema: str
) -> None:
    """Before anything changes: the role owns every table it will index, and may create or write the ledger."""
    tables = {
        t for _mig, plan in work for step, action, _r in plan if action != "keep" and (t := step_table(conn, step))
    }
    require_owner(conn, sorted(tables), "ops migrate apply", MAINTENANCE_ROLE)
    user = sql.Identifier(conn.info.user).as_string(None)
    where = qualname(ledger_schema, LEDGER_TABLE)
    if not ledger.get("schema_exists"):
        raise UsageError(f"the ledger's schema {ledger_schema!r} does not exist: create it, or pass --ledger-schema")
    if not ledger["exists"] and not ledger["may_create"]:
        missing = f"may not create the ledger {where}: GRANT USAGE, CREATE ON SCHEMA {sql.Identifier(ledger_schema).as_string(None)} TO {user}"
    elif ledger["exists"] and not (ledger["may_read"] and ledger["may_write"]):
        missing = f"may not write the ledger {where}: GRANT SELECT, INSERT, UPDATE ON {where} TO {user}"
    else:
        return
    raise PrivilegeError(
        f"permission denied: ops migrate apply {missing}; the {MAINTENANCE_ROLE} role gives it: "
        f"GRANT {MAINTENANCE_ROLE} TO {user} ({ROLES_HINT}). Nothing was changed",
        FAILED,
    )


def apply(dsn: str | None, migrations: list[Migration], opts: ApplyOptions, log: Log) -> dict[str, Any]:
    """Apply pending migrations and repair broken ones. Returns a summary; raises OpsError on failure."""
    selected = select(migrations, opts.target)
    conn = connect(dsn, grant_role=MAINTENANCE_ROLE)
    try:
        require_primary(conn, "ops migrate apply")
        warning = concurrent_build_warning(conn)
        if warning:
            log(warning)
        with advisory_lock(conn, LOCK_NAME, opts.lock_wait):
            state = ledger_state(conn, opts.ledger_schema)
            applied = ledger(conn, opts.ledger_schema)
            bad = tampered(selected, applied)
            if bad:
                names = ", ".join(b["migration"] for b in bad)
                raise OpsError(
                    f"refusing to run: applied migration(s) changed on disk since they ran: {names} "
                    "(a migration that ran is never edited; add a new one)"
                )
            work = []
            final = declared_indexes(selected)
            for mig in selected:
                plan = [
                    (step, "keep", "dropped by a later migration")
                    if superseded(step, final)
                    else (step, *plan_step(conn, step))
                    for step in mig.steps
                ]
                refused = [(s, r) for s, a, r in plan if a == "refuse"]
                if refused:
                    step, reason = refused[0]
                    raise OpsError(f"{mig.id}: {step.name}: {reason}")
                if mig.id in applied and all(a == "keep" for _, a, _r in plan):
                    continue
                work.append((mig, plan))
            summary: dict[str, Any] = {"applied": [], "adopted": [], "repaired": [], "dry_run": opts.dry_run}
            if not work:
                log("nothing to do: every migration is applied and every index is valid and exact")
                return summary
            require_rights(conn, work, state, opts.ledger_schema)
            if opts.dry_run:
                for mig, plan in work:
                    for step, action, reason in plan:
                        log(f"would {action:7} {step.name} ({reason})  [{mig.id}]")
                summary["plan"] = [
                    {"migration": m.id, "steps": [{"name": s.name, "action": a, "reason": r} for s, a, r in plan]}
                    for m, plan in work
                ]
                return summary
            conn.execute(_ledger_sql("ledger.sql", opts.ledger_schema))
            summary["build_settings"] = apply_build_settings(conn, opts.build, log)
            for mig, plan in work:
                started = time.monotonic()
                for step, action, reason in plan:
                    _run_step(conn, dsn, step, action, reason, opts.policy, log)
                outcome = (
                    "adopted" if all(a == "keep" for _, a, _r in plan) else "repaired" if mig.id in applied else "built"
                )
                _record(conn, mig, outcome, started, opts.ledger_schema)
                summary["applied" if outcome == "built" else outcome].append(mig.id)
            # keep our own table off the stale-statistics reports
            conn.execute(sql.SQL("ANALYZE {}").format(ledger_name(opts.ledger_schema)))
            return summary
    finally:
        conn.close()


def _run_step(
    conn: psycopg.Connection[Any], dsn: str | None, step: Any, action: str, reason: str, policy: RetryPolicy, log: Log
) -> None:
    if action == "keep":
        log(f"keep    {step.name} ({reason})")
        return
    if isinstance(step, IndexDecl):
        table = qualname(step.schema, step.table)
        if action == "rebuild":
            log(f"rebuild {step.name}: {reason}")
            drop_index_concurrently(conn, (step.schema, step.name), table=table, policy=policy, dsn=dsn, log=log)
        log(f"build   {step.name}")
        t0 = time.monotonic()

        def cleanup() -> None:
            _drop_leftover(conn, step, table, policy, dsn, log)

        try:
            run_online(
                conn,
                step.ddl,  # type: ignore[arg-type]  # the migration's statement, its table schema-qualified
                table=table,
                what=f"build {step.name}",
                policy=policy,
                dsn=dsn,
                cleanup=cleanup,
                log=log,
            )
        except errors.UniqueViolation as exc:
            detail = exc.diag.message_detail or first_line(exc)
            raise OpsError(
                f"cannot build unique index {step.name} on {step.table}: duplicate rows: {detail} "
                "(no index was left behind; remove the duplicates, then rerun)"
            ) from None
        except psycopg.Error as exc:
            raise OpsError(f"build {step.name} failed: {first_line(exc)}") from None
        log(f"        {step.name} built in {time.monotonic() - t0:.2f}s")
    elif isinstance(step, ConstraintDecl):
        log(f"attach  constraint {step.name} using index {step.index}")
        stmt = sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {} USING INDEX {}").format(
            sql.Identifier(step.schema, step.table),
            sql.Identifier(step.name),
            sql.SQL(step.kind),
            sql.Identifier(step.index),  # USING INDEX takes no schema: the index is in the table's
        )
        try:
            run_online(
                conn,
                stmt,
                table=qualname(step.schema, step.table),
                what=f"attach {step.name}",
                policy=policy,
                dsn=dsn,
                watch=False,
                log=log,
            )
        except psycopg.Error as exc:
            raise OpsError(f"attach {step.name} failed: {first_line(exc)}") from None
    elif isinstance(step, DropDecl):
        log(f"drop    {step.name}")
        where = step_table(conn, step)
        if where is None:
            return  # gone since the plan was made
        table = qualname(*where)
        drop_index_concurrently(conn, (step.schema, step.name), table=table, policy=policy, dsn=dsn, log=log)


def _drop_leftover(
    conn: psycopg.Connection[Any], decl: IndexDecl, table: str, policy: RetryPolicy, dsn: str | None, log: Log
) -> None:
    """After a failed concurrent build: drop the INVALID index it leaves (a failed UNIQUE one still enforces)."""
    state = index_state(conn, decl)
    if state is None or state["valid"]:
        return
    log(f"        dropping the INVALID {decl.name} the failed build left")
    try:
        drop_index_concurrently(conn, (decl.schema, decl.name), table=table, policy=policy, dsn=dsn, log=log)
    except OpsError as exc:
        raise OpsError(
            f"{exc}; INVALID index {decl.name} is left: rerun 'ops migrate apply' when the blocker "
            "is gone (it rebuilds it)"
        ) from None


def _ledger_sql(name: str, schema: str) -> sql.Composed:
    """sql/<name> with {schema} replaced by the ledger's schema, quoted."""
    return sql.SQL((SQL_DIR / name).read_text()).format(schema=sql.Identifier(schema))  # type: ignore[arg-type]


def _record(conn: psycopg.Connection[Any], mig: Migration, outcome: str, started: float, ledger_schema: str) -> None:
    conn.execute(
        _ledger_sql("ledger_record.sql", ledger_schema),
        {
            "id": mig.id,
            "checksum": mig.checksum,
            "duration_ms": int((time.monotonic() - started) * 1000),
            "applied_by": who(),
            "outcome": outcome,
        },
    )


def load(directory: str | None = None) -> list[Migration]:
    from pathlib import Path

    return load_all(Path(directory) if directory else None)


def stderr_log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
