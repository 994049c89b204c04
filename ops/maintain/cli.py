"""The ``ops maintain`` command group: usage, bloat, reindex, analyze.

Reports (usage, bloat) exit like check_postgres: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (the
database could not be checked), with one ``STATUS: text | perfdata`` line. Actions (reindex,
analyze) exit 0 when done and non-zero with one line on stderr when not. Every command takes
``--json`` and ``--metrics-file PATH`` (a Prometheus textfile, written atomically, also on failure).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any

import typer

from ops.db import MONITORING_ROLE, advisory_lock, check_dsn, check_dsns, connect, mask_secrets, replica_connections
from ops.errors import FAILED, OK, UNKNOWN, OpsError, UsageError
from ops.maintain import analyze as analyze_mod
from ops.maintain import bloat as bloat_mod
from ops.maintain import metrics
from ops.maintain import reindex as reindex_mod
from ops.maintain import usage as usage_mod
from ops.maintain.units import human_bytes, human_duration
from ops.online import RetryPolicy
from ops.options import MB, check_order, duration, metrics_file, number, size
from ops.output import emit_json, info, line, table

maintain_app = typer.Typer(help=__doc__, no_args_is_help=True)

DsnOpt = Annotated[
    str | None,
    typer.Option("--dsn", help="libpq connection string without a password (default: the PG* environment)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
MetricsOpt = Annotated[
    str | None,
    metrics_file("Also write a Prometheus textfile here (atomically; e.g. for node_exporter)."),
]
LockWaitOpt = Annotated[float, number("--lock-wait", low=0, high=86400, help="Seconds to wait for another run's lock.")]
LockTimeoutHelp = "Seconds each attempt may wait for a lock."
RetriesOpt = Annotated[int, number("--retries", low=0, high=100, integer=True, help="Attempts after the first.")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Print what would run; change nothing.")]
SchemaOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--schema",
        envvar="S10_SCHEMA",
        help="The app's schema, repeatable (default: public): objects in other schemas are never read or touched.",
    ),
]


def register(app: typer.Typer) -> None:
    """Add ``ops maintain`` to the main CLI."""
    app.add_typer(maintain_app, name="maintain", help="Scheduled maintenance: index usage, bloat, REINDEX, ANALYZE.")


def _job(job: str, report: bool, metrics_file: str | None, as_json: bool, body: Callable[[], tuple[Any, int]]) -> None:
    """Run one job: exit code, metrics file (also on failure), UNKNOWN for a report that could not check."""
    metrics.check_path(metrics_file)  # the option's type checked it already; a direct caller gets the same rule
    t0 = time.monotonic()
    result, code, bad_input = None, UNKNOWN if report else FAILED, False
    metrics_failed = False
    try:
        result, code = body()
    except OpsError as exc:
        code = exc.exit_code
        bad_input = isinstance(exc, UsageError)
        result = getattr(exc, "result", result)  # a partial failure still reports what it did
        exc.reported = as_json and result is not None  # its JSON is already on stdout
        if report and not bad_input:
            code = exc.exit_code = UNKNOWN
            message = mask_secrets(str(exc))  # as main() does for every final error line
            if as_json:
                emit_json(UNKNOWN, message, {"error": message})
            else:
                line(f"UNKNOWN: {message}")
            exc.reported = True  # said on stdout: main() adds only the stderr line of --json
        raise
    finally:
        if metrics_file and not bad_input:
            metrics_failed = _write_metrics(metrics_file, job, code, time.monotonic() - t0, result)
    raise typer.Exit(code if not metrics_failed or code else UNKNOWN if report else FAILED)


def _write_metrics(path: str, job: str, code: int, seconds: float, result: Any) -> bool:
    """Write the textfile; on failure say so in one line (the job's own outcome still decides the exit)."""
    try:
        metrics.write(path, job, code, seconds, result)
    except OpsError as exc:
        info(f"ops: error: {exc}")
        return True
    return False


def _report_lock(conn: Any, job: str, wait: float) -> Any:
    return advisory_lock(conn, f"maintain-{job}", wait)


@maintain_app.command("usage")
def usage_cmd(
    dsn: DsnOpt = None,
    json: JsonOpt = False,
    metrics_file: MetricsOpt = None,
    min_stats_age: Annotated[
        float,
        duration(
            "--min-stats-age",
            default="7d",
            help="Report unused indexes only when the scan counters are at least this old (e.g. 7d).",
        ),
    ] = 7 * 86400,
    lock_wait: LockWaitOpt = 10.0,
    replica: Annotated[
        list[str] | None,
        typer.Option(
            "--replica",
            help="A replica's DSN (no password), repeatable: its scans count before an index is called unused.",
        ),
    ] = None,
    schema: SchemaOpt = None,
) -> None:
    """Per index: size, scans, tuples read since the stats reset; unused, redundant and invalid findings.

    Never drops anything: each finding carries the command a person may run. Exit 0 OK, 1 WARNING
    (redundant or unused), 2 CRITICAL (invalid), 3 UNKNOWN.
    """
    check_dsns(replica)

    def body() -> tuple[Any, int]:
        with (
            connect(check_dsn(dsn), grant_role=MONITORING_ROLE) as conn,
            _report_lock(conn, "usage", lock_wait),
            replica_connections(replica) as rconns,
        ):
            rep = usage_mod.findings(conn, min_stats_age=min_stats_age, replicas=rconns, schemas=schema)
        if json:
            emit_json(rep["status"], rep["summary"], rep)
        else:
            _print_usage(rep)
        return rep, rep["status"]

    _job("usage", True, metrics_file, json, body)


def _print_usage(rep: dict[str, Any]) -> None:
    line(rep["summary"])
    flags: dict[str, list[str]] = {}
    for kind in ("unused", "redundant", "invalid"):
        for f in rep[kind]:
            flags.setdefault(f"{f['schema']}.{f['index']}", []).append(
                f"{kind} ({f['covered_by']})" if kind == "redundant" else kind
            )
    st = rep["stats"]
    title = (
        f"index usage since {st.get('counting_since'):%Y-%m-%d %H:%M} ({human_duration(st.get('age_s'))} of counters)"
    )
    nodes = [n["node"] for n in rep.get("nodes", [])]
    per_node = len(nodes) > 1  # cluster-wide: show where the scans happened
    rows = [
        (
            f"{r['table']}.{r['index']}",
            human_bytes(r["bytes"]),
            r["scans"],
            *([r["scans_by_node"].get(n, 0) for n in nodes] if per_node else []),
            r["tuples_read"],
            ", ".join(flags.get(f"{r['schema']}.{r['index']}", [])),
        )
        for r in rep["indexes"]
    ]
    node_cols = [f"scans {n}" for n in nodes] if per_node else []
    table(title, ["index", "size", "scans", *node_cols, "tuples read", "finding"], rows)
    if per_node:
        for n in rep["nodes"]:
            info(
                f"{n['role']:8} {n['node']}: counters since {n['counting_since']:%Y-%m-%d %H:%M} "
                f"({human_duration(n.get('age_s'))})"
            )
    for kind in ("invalid", "redundant", "unused"):
        for f in rep[kind]:
            info(f"{kind.upper():9} {f['index']}: {f['reason']}\n          fix: {f['fix']}")


@maintain_app.command("bloat")
def bloat_cmd(
    dsn: DsnOpt = None,
    json: JsonOpt = False,
    exact: Annotated[
        bool, typer.Option("--exact", help="Confirm candidates with pgstatindex() (reads those indexes whole).")
    ] = False,
    warning: Annotated[float, number("--warning", low=0, high=100, help="WARNING at this bloat %.")] = 40.0,
    critical: Annotated[float, number("--critical", low=0, high=100, help="CRITICAL at this bloat %.")] = 60.0,
    min_size: Annotated[
        int, size("--min-size", default="1MB", help="Ignore indexes smaller than this (e.g. 1MB).")
    ] = MB,
    metrics_file: MetricsOpt = None,
    lock_wait: LockWaitOpt = 10.0,
    schema: SchemaOpt = None,
) -> None:
    """Btree bloat: a cheap estimate for every index; with --exact, pgstatindex() for the candidates.

    Without pgstattuple installed it says so and reports the estimate. Exit 0 OK, 1 WARNING,
    2 CRITICAL, 3 UNKNOWN.
    """
    check_order("--warning", warning, "--critical", critical)

    def body() -> tuple[Any, int]:
        with connect(check_dsn(dsn), grant_role=MONITORING_ROLE) as conn, _report_lock(conn, "bloat", lock_wait):
            rep = bloat_mod.findings(
                conn, warning=warning, critical=critical, min_size=min_size, use_exact=exact, schemas=schema
            )
        if json:
            emit_json(rep["status"], rep["summary"], rep)
        else:
            line(rep["summary"])
            rows = [
                (
                    f"{ix['table']}.{ix['index']}",
                    human_bytes(ix["bytes"]),
                    "?" if ix["bloat_pct"] is None else f"{ix['bloat_pct']:.0f}%",
                    human_bytes(ix["bloat_bytes"]),
                    ix["measured_by"] or "no statistics",
                    "" if ix.get("estimate_pct") is None else f"{ix['estimate_pct']:.0f}%",
                    ""
                    if ix.get("exact_pct") is None
                    else f"{ix['exact_pct']:.0f}%" + (" !" if ix.get("disagree") else ""),
                )
                for ix in rep["indexes"]
                if ix["bytes"] >= min_size
            ]
            table(  # "!" marks where the estimate and pgstatindex disagree; "by" says which one decided
                f"btree bloat (indexes of {human_bytes(min_size)} or more)",
                ["index", "size", "bloat", "over fresh", "by", "estimate", "pgstatindex"],
                rows,
            )
            for note in rep["notes"]:
                info(f"NOTE: {note}")
            for f in rep["bloated"]:
                info(f"{f['severity'].upper():8} {f['index']}: {f['reason']}\n         fix: {f['fix']}")
        return rep, rep["status"]

    _job("bloat", True, metrics_file, json, body)


@maintain_app.command("reindex")
def reindex_cmd(
    dsn: DsnOpt = None,
    dry_run: DryRunOpt = False,
    min_bloat: Annotated[
        float, number("--min-bloat", low=0, high=100, help="Rebuild at this measured bloat % or more.")
    ] = 40.0,
    min_size: Annotated[
        int, size("--min-size", default="1MB", help="Rebuild only indexes this big or bigger (e.g. 10MB).")
    ] = MB,  # ReindexOptions' default: one default, whoever calls
    max_duration: Annotated[
        float | None,
        duration(
            "--max-duration",
            low=0,
            low_open=True,
            high=7 * 86400,
            help="Time budget (e.g. 2h): no rebuild starts after it.",
        ),
    ] = None,
    min_free: Annotated[
        int, size("--min-free", default="0", help="Disk space that must stay free after the second copy (e.g. 1GB).")
    ] = 0,
    estimate_only: Annotated[
        bool, typer.Option("--estimate-only", help="Decide on the estimate alone (skip pgstatindex).")
    ] = False,
    lock_timeout: Annotated[float, number("--lock-timeout", low=0.05, high=600, help=LockTimeoutHelp)] = 3.0,
    retries: RetriesOpt = 5,
    lock_wait: LockWaitOpt = 60.0,
    json: JsonOpt = False,
    metrics_file: MetricsOpt = None,
    schema: SchemaOpt = None,
) -> None:
    """REINDEX INDEX CONCURRENTLY the indexes whose measured bloat and size reach the thresholds.

    Largest gain first, within the time budget; drops leftovers of interrupted runs first; refuses
    an index the disk cannot hold twice. Exit 0 done, 1 when something failed (one line), 3 when
    the database is unreachable.
    """
    opts = reindex_mod.ReindexOptions(
        min_bloat=min_bloat,
        min_size=min_size,
        max_duration=max_duration,
        min_free=min_free,
        dry_run=dry_run,
        use_exact=not estimate_only,
        policy=RetryPolicy(lock_timeout=lock_timeout, retries=retries),
        lock_wait=lock_wait,
        schemas=schema,
    )

    def body() -> tuple[Any, int]:
        summary = reindex_mod.run(check_dsn(dsn), opts, info)
        verb = "would rebuild" if dry_run else "rebuilt"
        done = (
            f"{'dry run' if dry_run else 'done'}: {len(summary['rebuilt'])} {verb}, "
            f"{len(summary['dropped_leftovers'])} leftover(s) {'to drop' if dry_run else 'dropped'}, "
            f"{len(summary['skipped'])} skipped, {len(summary['failed'])} failed; "
            f"{human_bytes(summary['bytes_reclaimed'])} given back in {summary['seconds']:.1f}s"
        )
        failure = None
        if summary["failed"]:
            first = summary["failed"][0]
            failure = f"reindex: {len(summary['failed'])} failed, first {first['index']}: {first['error']}"
        code = FAILED if failure else OK
        if json:
            emit_json(code, failure or done, summary, kind="action")
        elif summary["rebuilt"] and dry_run:
            rows: list[tuple[str, ...]] = [
                (
                    f"{e['table']}.{e['index']}",
                    f"{e['bloat_pct']:.0f}% ({e['measured_by']})",
                    human_bytes(e["bytes_before"]),
                )
                for e in summary["rebuilt"]
            ]
            table("would rebuild, largest gain first", ["index", "bloat", "size"], rows)
        elif summary["rebuilt"]:
            rows = [
                (
                    f"{e['table']}.{e['index']}",
                    f"{e['bloat_pct']:.0f}% ({e['measured_by']})",
                    human_bytes(e["bytes_before"]),
                    human_bytes(e.get("bytes_after")),
                    human_bytes(e.get("bytes_reclaimed")),
                    f"{e['seconds']:.2f}s",
                )
                for e in summary["rebuilt"]
            ]
            table("rebuilt", ["index", "bloat", "before", "after", "given back", "time"], rows)
        for note in summary["notes"]:
            info(f"NOTE: {note}")
        info(done)
        if failure:
            _fail_after_metrics(failure, summary)
        return summary, code

    _job("reindex", False, metrics_file, json, body)


class _PartialFailure(OpsError):
    def __init__(self, message: str, result: Any):
        super().__init__(message)
        self.result = result


def _fail_after_metrics(message: str, result: Any) -> None:
    raise _PartialFailure(message, result)


@maintain_app.command("analyze")
def analyze_cmd(
    dsn: DsnOpt = None,
    dry_run: DryRunOpt = False,
    fraction: Annotated[
        float,
        number(
            "--fraction",
            low=0,
            high=1,
            help="Stale when rows modified exceed --min-rows + this share of the table's rows (0.1 = 10%, "
            "as autovacuum_analyze_scale_factor).",
        ),
    ] = 0.1,
    min_rows: Annotated[
        int, number("--min-rows", low=0, high=2**31 - 1, integer=True, help="Rows modified always tolerated.")
    ] = 50,
    lock_timeout: Annotated[
        float, number("--lock-timeout", low=0.05, high=600, help="Seconds each ANALYZE may wait for its lock.")
    ] = 3.0,
    statement_timeout: Annotated[
        float,
        duration(
            "--statement-timeout", default="10m", low=1, high=86400, help="Longest one ANALYZE may run (e.g. 10m)."
        ),
    ] = 600.0,
    lock_wait: LockWaitOpt = 60.0,
    json: JsonOpt = False,
    metrics_file: MetricsOpt = None,
    schema: SchemaOpt = None,
) -> None:
    """ANALYZE only the tables whose statistics are stale, one at a time, carrying on past a failure.

    Exit 0 done, 1 when a table failed (one line naming it), 3 when the database is unreachable.
    """
    opts = analyze_mod.AnalyzeOptions(
        fraction=fraction,
        min_rows=min_rows,
        lock_timeout=lock_timeout,
        statement_timeout=statement_timeout,
        dry_run=dry_run,
        lock_wait=lock_wait,
        schemas=schema,
    )

    def body() -> tuple[Any, int]:
        summary = analyze_mod.run(check_dsn(dsn), opts, info)
        done = (
            f"{'dry run' if dry_run else 'done'}: {len(summary['analyzed'])} "
            f"{'to analyze' if dry_run else 'analyzed'}, {summary['fresh']} fresh left alone, "
            f"{len(summary['failed'])} failed in {summary['seconds']:.1f}s"
        )
        failure = None
        if summary["failed"]:
            first = summary["failed"][0]
            failure = (
                f"analyze: {len(summary['failed'])} table(s) failed, first {first['schema']}.{first['table']}: "
                f"{first['error']}"
            )
        if json:
            emit_json(FAILED if failure else OK, failure or done, summary, kind="action")
        info(done)
        if failure:
            _fail_after_metrics(failure, summary)
        return summary, OK

    _job("analyze", False, metrics_file, json, body)


@maintain_app.command("chain")
def chain_cmd(
    steps: Annotated[
        list[str],
        typer.Argument(metavar="STEP...", help="An ops command, quoted, e.g. 'ops maintain reindex --min-size 10MB'."),
    ],
    dry_run: DryRunOpt = False,
    json: JsonOpt = False,
) -> None:
    """Run ops commands one after another and log each one's exit status; fail when any step failed.

    Every step runs, whatever the one before did; after each, a line 's10-ops STEP: exit N'. Exit 0
    when every step exited 0, else the first non-zero status. The monthly cron job is
    `ops maintain chain 'ops maintain reindex ...' 'ops maintain analyze ...' 'ops playbook integrity ...'`.
    """
    from ops.maintain import chain

    parsed = chain.parse(steps)
    if dry_run:
        commands = [f"ops {' '.join(s.argv)}" for s in parsed]
        if json:
            emit_json(OK, f"dry run: {len(parsed)} step(s)", {"steps": commands}, kind="action")
        else:
            for command in commands:
                line(command)
        raise typer.Exit(OK)
    code, records = chain.run(parsed, capture=json)
    summary = chain.summary(code, records)
    if json:
        emit_json(code, summary, {"steps": records}, kind="action")
    else:
        info(summary)
    raise typer.Exit(code)
