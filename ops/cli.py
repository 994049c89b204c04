"""S10 ops: online index migrations, CORS configs, scheduled maintenance, on-call playbooks.

The database comes from the libpq environment (PGHOST, PGPORT, PGUSER, PGDATABASE, PGSERVICE, PGPASSFILE) or --dsn; a password is never accepted on the command line.

Exit codes: checks 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN; actions 0 done, 1 failed; 2 bad input.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

try:  # typer >= 0.20 vendors click as typer._click; older releases use click itself
    from typer._click import exceptions as click_exc
except ImportError:  # pragma: no cover
    from click import exceptions as click_exc  # type: ignore[no-redef]

from ops.db import check_dsn, connect, mask_secrets
from ops.errors import CRITICAL, OK, UNKNOWN, USAGE, WARNING, ConnectError, OpsError, UsageError
from ops.options import bad_parameter_message, number, size

# ops.migrate (pglast) and the other groups' heavy modules load inside the commands that use
# them: the deploy's fact runs `ops migrate status` on every deploy, so start-up time counts.
from ops.output import emit_json, info, line, status_word, table

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


def _version(value: bool) -> None:
    if value:
        from ops import __version__

        print(f"ops {__version__}")
        raise typer.Exit(OK)


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """S10 ops."""


migrate_app = typer.Typer(help="Online index migrations from sql/migrations/.", no_args_is_help=True)
app.add_typer(migrate_app, name="migrate")

DsnOpt = Annotated[
    str | None,
    typer.Option("--dsn", help="libpq connection string without a password (default: the PG* environment)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
DirOpt = Annotated[
    str | None, typer.Option("--migrations-dir", help="Directory of migration files (default: sql/migrations).")
]
LedgerOpt = Annotated[
    str | None,
    typer.Option(
        "--ledger-schema",
        envvar="S10_LEDGER_SCHEMA",
        help="Schema of the ledger table ops_migrations (default: public).",
    ),
]


@migrate_app.command("status")
def migrate_status(
    dsn: DsnOpt = None, json: JsonOpt = False, migrations_dir: DirOpt = None, ledger_schema: LedgerOpt = None
) -> None:
    """Applied, pending and broken migrations. Exit 0 nothing to do, 1 something to apply, 2 a file was tampered with."""
    from ops import migrate as mig

    migrations = mig.load(migrations_dir)
    with connect(check_dsn(dsn), grant_role=mig.MAINTENANCE_ROLE) as conn:
        st = mig.status(conn, migrations, ledger_schema)
    code = CRITICAL if st.tampered else WARNING if st.needs_apply else OK
    summary = f"{len(st.applied)} applied, {len(st.pending)} pending, {len(st.problems)} problem(s)" + (
        f", {len(st.tampered)} tampered" if st.tampered else ""
    )
    if json:
        emit_json(code, summary, st.as_json())
    else:
        line(f"{status_word(code)}: {summary}")
        broken = {p["migration"]: p for p in st.problems}
        altered = {t["migration"] for t in st.tampered}
        rows = [
            (
                m.id,
                "tampered"
                if m.id in altered
                else f"broken: {broken[m.id]['index']} {broken[m.id]['problem']}"
                if m.id in broken
                else "applied"
                if m.id in st.applied
                else "pending",
            )
            for m in migrations
        ]
        table("migrations", ["migration", "state"], rows)
    raise typer.Exit(code)


@migrate_app.command("apply")
def migrate_apply(
    dsn: DsnOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what would run; change nothing.")] = False,
    lock_timeout: Annotated[
        float, number("--lock-timeout", low=0.05, high=600, help="Seconds each attempt may wait for a lock.")
    ] = 3.0,
    retries: Annotated[int, number("--retries", low=0, high=100, integer=True, help="Attempts after the first.")] = 5,
    wait: Annotated[float, number("--wait", low=0, high=86400, help="Seconds to wait for another run's lock.")] = 60.0,
    to: Annotated[
        str | None, typer.Option("--to", help="Apply up to this revision (e.g. 0607bc5b8537) or migration id.")
    ] = None,
    json: JsonOpt = False,
    migrations_dir: DirOpt = None,
    maintenance_work_mem: Annotated[
        int | None,
        size(
            "--maintenance-work-mem",
            help="Sort memory per build session (default: the server's shared_buffers, 64MB to 2GB).",
            default="sized for the server",
            low=1024**2,
            high=2 * 1024**4,
        ),
    ] = None,
    parallel_workers: Annotated[
        int | None,
        number(
            "--parallel-workers",
            low=0,
            high=64,
            integer=True,
            help="max_parallel_maintenance_workers per build (default: sized for the server).",
        ),
    ] = None,
    ledger_schema: LedgerOpt = None,
) -> None:
    """Build pending indexes CONCURRENTLY and repair INVALID or drifted ones. Safe to rerun."""
    from ops import migrate as mig
    from ops.online import RetryPolicy

    migrations = mig.load(migrations_dir)
    opts = mig.ApplyOptions(
        policy=RetryPolicy(lock_timeout=lock_timeout, retries=retries),
        dry_run=dry_run,
        lock_wait=wait,
        target=to,
        ledger_schema=ledger_schema or mig.default_ledger_schema(),
        build=mig.BuildSettings(maintenance_work_mem=maintenance_work_mem, parallel_workers=parallel_workers),
    )
    summary = mig.apply(check_dsn(dsn), migrations, opts, info)
    done = (
        f"{'dry run' if dry_run else 'done'}: {len(summary['applied'])} built, {len(summary['adopted'])} adopted, "
        f"{len(summary['repaired'])} repaired"
    )
    if json:
        emit_json(OK, done, summary, kind="action")
    elif not dry_run:
        info(done)


@migrate_app.command("verify")
def migrate_verify(dsn: DsnOpt = None, json: JsonOpt = False, migrations_dir: DirOpt = None) -> None:
    """Every declared index exists, is valid and has its definition. Exit 0 OK, 2 CRITICAL, 3 UNKNOWN."""
    from ops import migrate as mig

    migrations = mig.load(migrations_dir)
    with connect(check_dsn(dsn), grant_role=mig.MAINTENANCE_ROLE) as conn:
        checked, problems = mig.verify(conn, migrations)
    code = CRITICAL if problems else OK
    if problems:
        first = problems[0]
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        summary = f"{first['index']}: {first['problem']}{more}"
    else:
        summary = f"{checked} indexes and constraints valid and exact"
    if json:
        emit_json(code, summary, {"ok": not problems, "checked": checked, "problems": problems})
    else:
        line(f"{status_word(code)}: {summary}")
        for p in problems[1:]:
            line(f"CRITICAL: {p['index']}: {p['problem']}")
    raise typer.Exit(code)


def _register_optional() -> None:
    """Subcommand groups that live in their own modules: each has ``register(app)``."""
    import importlib

    for module in (
        "ops.maintain.cli",
        "ops.playbook.cli",
        "ops.render",
        "ops.advise.cli",
        "ops.provision",
        "ops.roles",
    ):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and module.startswith(exc.name):
                continue
            raise
        mod.register(app)


_register_optional()


#: Commands that change things: a failure is one line on stderr. Every other command is a check, whose
#: UNKNOWN (e.g. the database unreachable) is its verdict line on stdout, where monitoring reads it.
ACTIONS = {
    ("migrate", "apply"),
    ("maintain", "reindex"),
    ("maintain", "analyze"),
    ("maintain", "chain"),
    ("render",),
    ("roles", "apply"),
    ("provision",),
}


def _command_path(args: list[str]) -> tuple[str, ...]:
    """The subcommand words of ``args`` (``("maintain", "usage")``), as far as they name commands."""
    from typer.main import get_command

    command: Any = get_command(app)
    path: list[str] = []
    for word in args:
        command = getattr(command, "commands", {}).get(word)
        if command is None:
            break
        path.append(word)
    return tuple(path)


def _report_error(message: str, code: int, kind: str, args: list[str], *, verdict: bool, reported: bool) -> None:
    """An error, said once per reader.

    With --json: the envelope on stdout (unless the command printed it), one line on stderr for the log.
    Without: a check's UNKNOWN is its verdict line on stdout, where monitoring reads it; anything else
    one line on stderr. ``reported``: the command already said it on stdout.
    """
    if "--json" in args:
        if not reported:
            emit_json(code, message, {"error": message}, kind=kind)  # machines read stdout only
        print(f"ops: error: {message}", file=sys.stderr)
    elif reported:
        return
    elif verdict:
        line(f"{status_word(code, kind)}: {message}")
    else:
        print(f"ops: error: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app; turn expected errors into one line (or one JSON envelope) and an exit code."""
    args = argv if argv is not None else sys.argv[1:]
    try:
        result = app(args=argv, prog_name="ops", standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except typer.Exit as exc:
        code = exc.exit_code
    except getattr(click_exc, "NoArgsIsHelpError", ()):  # help was printed
        code = USAGE
    except click_exc.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx else "ops"
        message = bad_parameter_message(exc) if isinstance(exc, click_exc.BadParameter) else exc.format_message()
        code = USAGE
        if "--json" in args:
            emit_json(code, f"{where}: {message}", {"error": message}, kind="error")
        print(f"{where}: error: {message} (see '{where} --help')", file=sys.stderr)
    except typer.Abort:
        print("ops: aborted", file=sys.stderr)
        code = 130
    except OpsError as exc:
        message = mask_secrets(str(exc))  # messages are built masked; this is the last line of defence
        code = exc.exit_code
        check = _command_path(args) not in ACTIONS
        if isinstance(exc, UsageError | ConnectError):
            kind = "error"
        elif check and code == UNKNOWN:  # a check that could not tell: its Nagios word
            kind = "check"
        else:
            kind = "action"
        _report_error(message, code, kind, args, verdict=check and code == UNKNOWN, reported=exc.reported)
    except KeyboardInterrupt:
        print("ops: interrupted", file=sys.stderr)
        code = 130
    sys.exit(code)
