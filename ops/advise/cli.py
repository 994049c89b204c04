"""``ops advise``: index proposals from the workload, proven with hypopg, written as migrations on request."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ops.db import check_dsn
from ops.errors import OK, WARNING, UsageError
from ops.options import number
from ops.output import emit_json, info, line, table
from ops.playbook.cli import DsnOpt, JsonOpt

HELP = """Propose indexes from the workload (pg_stat_statements) and the foreign keys, each proven with hypopg.

Reads the heaviest statements, plans each one generically (PREPARE + EXPLAIN, never executed, in a
READ ONLY transaction that is rolled back), and keeps an index when it cuts some statement's plan
cost by --min-gain; foreign keys no index leads with are proposals of their own. Every proposal
shows its evidence (cost before/after per statement, calls, size, write cost). Never proposes an
index an existing one already serves. Nothing is built here: --write writes each proposal as the
next migration file in sql/migrations/, which `ops migrate apply` builds online.

Needs hypopg (CREATE EXTENSION hypopg) and pg_stat_statements. Exit 0 nothing to propose,
1 proposals, 3 could not advise, 2 bad input; with --write: 0 written, 1 failed.
"""


def register(app: typer.Typer) -> None:
    """Add ``ops advise`` to the main CLI."""
    app.command("advise", help=HELP)(advise_cmd)


def advise_cmd(
    dsn: DsnOpt = None,
    json: JsonOpt = False,
    top: Annotated[
        int, number("--top", low=1, high=10000, integer=True, help="How many statements to read, heaviest first.")
    ] = 50,
    min_gain: Annotated[
        float,
        number(
            "--min-gain", low=0.01, high=0.99, help="Keep an index that cuts a statement's plan cost by this share."
        ),
    ] = 0.5,
    search_path: Annotated[
        str, typer.Option("--search-path", help="The app's search_path, to resolve its unqualified table names.")
    ] = "public",
    schema: Annotated[
        list[str] | None,
        typer.Option("--schema", help="An app schema whose foreign keys and indexes count (repeatable; default: all)."),
    ] = None,
    write: Annotated[
        bool, typer.Option("--write", help="Write each proposal as the next file in the migrations dir.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the files --write would write; write nothing.")
    ] = False,
    migrations_dir: Annotated[
        str | None, typer.Option("--migrations-dir", help="Directory of migration files (default: sql/migrations).")
    ] = None,
    measure_deletes: Annotated[
        bool,
        typer.Option(
            "--measure-deletes",
            help="Time one parent DELETE per unindexed foreign key with EXPLAIN ANALYZE, rolled back, through the "
            "diagnosis guard (as s10_diagnosis); without it, or when the guard refuses, the cost is the planner's estimate.",
        ),
    ] = False,
    drop: Annotated[
        list[str] | None,
        typer.Option(
            "--drop",
            help="SCHEMA.INDEX to remove through a drop migration (repeatable); with --write or --dry-run, no analysis.",
        ),
    ] = None,
) -> None:
    from ops.advise import report as rep

    directory = Path(migrations_dir) if migrations_dir else None
    if directory is not None and not directory.is_dir():
        raise UsageError(f"--migrations-dir {migrations_dir}: not a directory")
    if drop:
        files = rep.drop_files(drop, directory)
        rep.finish_files(files, write=write and not dry_run, as_json=json, summary_kind="drop")
        return
    from ops.advise.advisor import Options, advise

    result = advise(
        check_dsn(dsn),
        Options(
            top=top, min_gain=min_gain, search_path=search_path, measure_deletes=measure_deletes, schemas=schema or None
        ),
    )
    proposals = result.pop("_proposals")
    if write or dry_run:
        files = rep.proposal_files(proposals, result, directory)
        rep.finish_files(files, write=write and not dry_run, as_json=json, summary_kind="create", report=result)
        return
    code = WARNING if proposals else OK
    summary = rep.summary(result)
    if json:
        emit_json(code, summary, result)
    else:
        line(summary)
        rep.print_report(result, line, table, info)
    raise typer.Exit(code)
