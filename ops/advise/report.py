"""How ``ops advise`` shows its proposals, and the migration files it writes for them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from ops import __version__
from ops.advise.files import (
    MigrationFile,
    declared,
    drop_file_name,
    drop_statement,
    is_declared,
    planned,
    write,
)
from ops.errors import OK, OpsError, UsageError
from ops.maintain.units import human_bytes
from ops.migrations import MIGRATIONS_DIR, load_migration
from ops.output import emit_json, info, line


def summary(result: dict[str, Any]) -> str:
    props = result["proposals"]
    if not props:
        return (
            f"OK: no index would pay for itself ({result['statements_planned']} statement(s) planned, "
            f"min gain {result['min_gain']:.0%}, foreign keys all indexed)"
        )
    names = ", ".join(f"{p['name']} ({p['kind']})" for p in props)
    return f"WARNING: {len(props)} index proposal(s): {names}"


def evidence_lines(p: dict[str, Any]) -> list[str]:
    """The proof of one proposal, as the report and the migration header both tell it."""
    out = []
    for s in p["statements"]:
        out.append(
            f"statement #{s['statement']} ({s['calls']:,} calls): plan cost {s['cost_before']:,.2f} -> "
            f"{s['cost_after']:,.2f} ({s['gain']:.0%} less): {s['query'][:160]}"
        )
    fk = p.get("foreign_key")
    if fk:
        out.append(
            f"foreign key {fk['constraint']} ({', '.join(fk['columns'])}) -> {fk['parent']} ON DELETE {fk['on_delete']}: "
            f"no index leads with it, so every parent delete scans {p['table']} (~{fk['child_rows']:,} rows)"
        )
        out.append(
            f"RI lookup per parent row: plan cost {fk['cost_before']:,.2f} -> {fk['cost_after']:,.2f} ({fk['how']})"
        )
        if fk.get("measured"):
            out.append(
                f"measured parent DELETE: {fk['delete_ms']:,.3f} ms, {fk['fk_trigger_ms']:,.3f} ms of it in "
                f"{fk['constraint']}'s trigger (EXPLAIN ANALYZE, rolled back)"
            )
        for w in fk["parent_writes_in_workload"]:
            out.append(f"parent write in the workload: #{w['statement']} ({w['calls']:,} calls): {w['query'][:120]}")
    out.append(f"size: {human_bytes(p['size_bytes'])} (hypopg estimate)")
    wc = p["write_cost"]
    hot = "" if wc["hot_update_share"] is None else f", {wc['hot_update_share']:.0%} of its updates HOT today"
    text = f"write cost: {p['table']} already maintains {wc['existing_indexes']} index(es) on every write{hot}"
    if wc["updates_losing_hot"]:
        lost = "; ".join(
            f"#{u['statement']} ({u['calls']:,} calls) sets {', '.join(u['columns'])}" for u in wc["updates_losing_hot"]
        )
        text += f"; these UPDATEs would stop being HOT: {lost}"
    else:
        text += "; no UPDATE in the workload sets its columns (HOT updates stay HOT)"
    out.append(text)
    return out


def print_report(result: dict[str, Any], line: Callable[[str], None], table: Any, info: Callable[[str], None]) -> None:
    for p in result["proposals"]:
        line("")
        line(f"{p['name']}: {p['create']}")
        for text in evidence_lines(p):
            line(f"  {text}")
    if result["proposals"]:
        line("")
        line("write them as migrations: ops advise --write  (or --dry-run to see the files first)")
    for s in result["skipped"]:
        info(f"skipped statement #{s['statement']}: {s['why']}: {s['query'][:100]}")
    info(
        f"{result['statements_planned']} of {result['statements_read']} statement(s) planned in {result['seconds']:.1f}s"
    )


def proposal_files(proposals: list[Any], result: dict[str, Any], directory: Path | None) -> list[MigrationFile]:
    """One migration per proposal, numbered under the next revision, with the evidence in the header."""
    by_name = {p["name"]: p for p in result["proposals"]}
    today = dt.date.today().isoformat()
    items = []
    for prop in proposals:
        p = by_name[prop.name]
        why = "foreign key without an index" if p["kind"] == "foreign-key" else "workload statements it speeds up"
        header = [
            f"Proposed by ops advise {__version__} on {today}: {why}.",
            f"Evidence (generic plans, hypopg; min gain {result['min_gain']:.0%}):",
            *[f"  {t}" for t in evidence_lines(p)],
            "Built online by `ops migrate apply` (CONCURRENTLY, lock_timeout, retries); checked by `ops migrate verify`.",
        ]
        items.append((prop.name, prop.create_sql, header))
    return planned(directory or MIGRATIONS_DIR, items)


def drop_files(targets: list[str], directory: Path | None) -> list[MigrationFile]:
    """Drop migrations for SCHEMA.INDEX names; refuses a name no migration declares (nothing to undo there)."""
    decls, owner = declared(directory)
    items = []
    for target in targets:
        schema, _, name = target.rpartition(".")
        if not schema or not name:
            raise UsageError(f"--drop {target!r}: give SCHEMA.INDEX, e.g. public.idx_content_jobs_user_id")
        if not is_declared(decls, schema, name):
            raise UsageError(
                f"--drop {target}: no migration declares it, so no drop migration is needed: "
                f"{drop_statement(schema, name)}"
            )
        header = [
            f"Written by ops advise {__version__} on {dt.date.today().isoformat()}: {name} goes.",
            f"It was built by migration {owner[f'{schema}.{name}']}; dropping it by hand would make `ops migrate verify`",
            "CRITICAL and the next deploy would build it again, so the migrations say it goes.",
        ]
        items.append((drop_file_name(name), drop_statement(schema, name), header))
    return planned(directory or MIGRATIONS_DIR, items)


def finish_files(
    files: list[MigrationFile], *, write: bool, as_json: bool, summary_kind: str, report: dict[str, Any] | None = None
) -> None:
    """Check every file parses as a migration, then write them (or print them for --dry-run)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for f in files:  # the same parser `ops migrate` uses: a file it would refuse is never written
            probe = Path(tmp) / f.path.name
            probe.write_text(f.text)
            load_migration(probe)
    if write:
        try:
            write_files(files)
        except OSError as exc:
            raise OpsError(f"cannot write the migration files: {exc}") from None
    verb = "wrote" if write else "would write"
    done = f"{verb} {len(files)} migration file(s)" + (f": {', '.join(f.path.name for f in files)}" if files else "")
    if not files:
        done = "nothing to write: no proposal" if summary_kind == "create" else "nothing to drop"
    if as_json:
        data = {"files": [{"path": str(f.path), "text": f.text} for f in files], "written": write}
        if report is not None:
            data["report"] = report
        emit_json(OK, done, data, kind="action")
    else:
        line(f"OK: {done}")
        for f in files:
            if not write:
                line(f"--- {f.path}")
                for text_line in f.text.splitlines():
                    line(text_line)
        if write and files:
            info("next: review the files, commit them, deploy (ops migrate apply builds them online)")
    raise typer.Exit(OK)


write_files = write
