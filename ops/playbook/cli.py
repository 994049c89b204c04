"""``ops playbook ...``: the on-call commands. Each prints a verdict line, the cause and the fix.

Exit codes (checks): 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (could not tell: unreachable, refused).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ops.db import check_dsn, check_dsns
from ops.maintain.cli import SchemaOpt
from ops.options import MB, check_order, duration, number, size
from ops.output import emit_json, line
from ops.playbook.report import Report

playbook_app = typer.Typer(
    help="On-call playbooks: diagnose a symptom safely and print the fix. Exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
    no_args_is_help=True,
)

DsnOpt = Annotated[
    str | None,
    typer.Option("--dsn", help="libpq connection string without a password (default: the PG* environment)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]


def _finish(report: Report, json: bool, extra: list[str] | None = None) -> None:
    if json:
        emit_json(report.exit_code, report.summary(), report.as_json())
    else:
        lines = report.lines()
        for text in [lines[0], *(extra or []), *lines[1:]]:
            line(text)
    raise typer.Exit(report.exit_code)


@playbook_app.command("slow-query")
def slow_query(
    sql_text: Annotated[str, typer.Argument(metavar="SQL", help="One statement; $1, $2... for --params.")],
    params: Annotated[
        list[str] | None,
        typer.Option("--params", "--param", "-p", help="Value for $1, $2, ... in order (repeat the option)."),
    ] = None,
    timeout: Annotated[
        float,
        number("--timeout", low=0.1, high=3600, help="statement_timeout in seconds for the EXPLAIN ANALYZE."),
    ] = 30.0,
    lock_timeout: Annotated[
        float, number("--lock-timeout", low=0.05, high=600, help="Seconds to wait for a lock before giving up.")
    ] = 2.0,
    analyze_writes: Annotated[
        bool,
        typer.Option(
            "--analyze-writes",
            help="Really execute a data-modifying statement under EXPLAIN ANALYZE (then roll it back). "
            "Without it, INSERT/UPDATE/DELETE/MERGE are explained without running.",
        ),
    ] = False,
    hypopg_load: Annotated[
        bool,
        typer.Option(
            "--hypopg-load",
            help="When hypopg is on the server but not in this database, CREATE EXTENSION it inside the "
            "rolled-back transaction for this check only.",
        ),
    ] = False,
    dsn: DsnOpt = None,
    json: JsonOpt = False,
) -> None:
    """Why is this statement slow? EXPLAIN it safely (rolled back, read-only, timeouts), name the cause, suggest the index.

    Every function it reaches is checked first: user code and built-ins with effects are refused (exit 3).
    A SELECT runs under EXPLAIN (ANALYZE, BUFFERS) as role s10_diagnosis in a READ ONLY transaction that
    is rolled back. A data-modifying statement is never executed unless --analyze-writes, and then rolled back.
    """
    from ops.playbook import slow_query as sq

    opts = sq.Options(
        params=list(params or []),
        timeout=timeout,
        lock_timeout=lock_timeout,
        analyze_writes=analyze_writes,
        hypopg_load=hypopg_load,
    )
    report = sq.diagnose(check_dsn(dsn), sql_text, opts)
    d = report.details
    if "safety" not in d:  # refused before anything was planned
        _finish(report, json)
    safety = d["safety"]
    ran = "EXPLAIN ANALYZE (executed)" if safety["analyze"] else "EXPLAIN without ANALYZE (not executed)"
    who = f"as role {safety['role']}" if safety.get("role") else "as this login"
    extra = [
        f"how: {ran} in a {'READ ONLY ' if safety['read_only'] else ''}transaction, rolled back, {who}; "
        f"statement_timeout {safety['statement_timeout_s']:g}s, lock_timeout {safety['lock_timeout_s']:g}s; "
        f"functions checked from the {safety['checked']}",
    ]
    if d["execution_ms"] is not None:
        in_triggers = f", of which {d['trigger_ms']:,.2f} ms in triggers" if d.get("triggers") else ""
        extra.append(f"time: execution {d['execution_ms']:,.2f} ms{in_triggers}, planning {d['planning_ms']:,.2f} ms")
        for t in d.get("triggers", []):
            extra.append(f"  trigger {t['name']} on {t['relation']}: {t['time_ms']:,.2f} ms, {t['calls']:,} call(s)")
    extra += ["plan:", *(f"  {line}" for line in d["plan_lines"])]
    if report.findings:
        extra.append("findings:")
    _finish(report, json, extra)


@playbook_app.command("top-queries")
def top_queries(
    limit: Annotated[int, number("--limit", low=1, high=500, integer=True, help="How many statements to list.")] = 10,
    slow_ms: Annotated[
        float,
        number(
            "--slow-ms", low=0, high=86_400_000, help="WARNING when a listed statement's mean time (ms) is above this."
        ),
    ] = 100.0,
    dsn: DsnOpt = None,
    json: JsonOpt = False,
) -> None:
    """The heaviest statements by total time from pg_stat_statements, each with the slow-query command to run."""
    from ops.playbook import top_queries as tq

    report = tq.top_queries(check_dsn(dsn), limit=limit, slow_ms=slow_ms)
    _finish(report, json, tq.render(report))


@playbook_app.command("cors")
def cors(
    url: Annotated[str, typer.Argument(help="The API URL the browser calls, e.g. https://api.example.com/api/jobs")],
    origin: Annotated[str, typer.Option("--origin", help="The page's origin, e.g. https://app.example.com")],
    method: Annotated[str, typer.Option("--method", help="The method the page uses.")] = "GET",
    header: Annotated[
        list[str] | None,
        typer.Option("--header", "-H", help="A request header the page sends, e.g. Authorization (repeat the option)."),
    ] = None,
    expose: Annotated[
        list[str] | None,
        typer.Option("--expose", help="A response header the page must read, e.g. X-Request-ID (repeat the option)."),
    ] = None,
    paths: Annotated[
        list[str] | None,
        typer.Option(
            "--paths", help="Paths or URLs the page calls: how many preflights they cost (repeat the option)."
        ),
    ] = None,
    credentials: Annotated[
        bool,
        typer.Option("--credentials/--no-credentials", help="The page sends cookies (fetch credentials: 'include')."),
    ] = True,
    timeout: Annotated[float, number("--timeout", low=0.1, high=120, help="Seconds per HTTP request.")] = 10.0,
    insecure: Annotated[bool, typer.Option("--insecure", help="Do not verify TLS certificates.")] = False,
    metrics_file: Annotated[
        str | None,
        typer.Option(
            "--metrics-file",
            help="Also write the verdict and each browser's effective Max-Age as a Prometheus textfile "
            "(atomically, for node_exporter; the scheduled synthetic check uses it).",
        ),
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Is the CORS preflight right and cached? Sends the real preflight and request and grades them as browsers do."""
    import time

    from ops.maintain.metrics import check_path
    from ops.playbook import cors_check as cc

    check_path(metrics_file)
    started = time.monotonic()

    opts = cc.Options(
        origin=origin,
        method=method,
        headers=list(header or []),
        expose=list(expose or []),
        paths=list(paths or []),
        credentials=credentials,
        timeout=timeout,
        verify=not insecure,
    )
    report = cc.check(url, opts)
    if metrics_file:
        from ops.monitor import cors_metrics

        cors_metrics.write(metrics_file, report, time.monotonic() - started)
    _finish(report, json, cc.render(report))


@playbook_app.command("index-health")
def index_health(
    dsn: DsnOpt = None,
    replica: Annotated[
        list[str] | None,
        typer.Option("--replica", help="A replica's DSN (no password), repeatable: its scans count too."),
    ] = None,
    min_stats_age: Annotated[
        float,
        duration("--min-stats-age", default="7d", help="Judge unused indexes only when the counters are this old."),
    ] = 7 * 86400,
    min_bloat: Annotated[float, number("--min-bloat", low=1, high=99, help="Bloat % that is a WARNING.")] = 40.0,
    critical_bloat: Annotated[
        float, number("--critical-bloat", low=1, high=100, help="Bloat % that is CRITICAL.")
    ] = 60.0,
    min_size: Annotated[int, size("--min-size", default="1MB", help="Ignore bloat in indexes smaller than this.")] = MB,
    exact: Annotated[bool, typer.Option("--exact", help="Confirm bloat candidates with pgstatindex().")] = False,
    json: JsonOpt = False,
    schema: SchemaOpt = None,
) -> None:
    """Invalid, redundant, unused and bloated indexes and stale statistics, each with its fix. Read-only."""
    from ops.playbook import index_health as ih

    check_order("--min-bloat", min_bloat, "--critical-bloat", critical_bloat)
    check_dsns(replica)
    opts = ih.Options(
        replicas=list(replica or []),
        min_stats_age=min_stats_age,
        bloat_warning=min_bloat,
        bloat_critical=critical_bloat,
        bloat_min_size=min_size,
        exact=exact,
        schemas=schema,
    )
    _finish(ih.index_health(check_dsn(dsn), opts), json)


def _lock_wait(flag: str, default: str, help: str) -> Any:
    """--warning / --critical of ``locks``: how long a session has waited for a lock (up to a day)."""
    return duration(flag, default=default, low=0, low_open=True, high=86400, help=help)


@playbook_app.command("locks")
def locks(
    warning: Annotated[
        float, _lock_wait("--warning", "10s", "WARNING when a session has waited for a lock this long (e.g. 10s, 2m).")
    ] = 10.0,
    critical: Annotated[
        float, _lock_wait("--critical", "60s", "CRITICAL when a session has waited for a lock this long.")
    ] = 60.0,
    dsn: DsnOpt = None,
    json: JsonOpt = False,
) -> None:
    """Who blocks whom: the lock tree, each root blocker with its age, state and query, and the fix.

    The fix (pg_cancel_backend for an active statement, pg_terminate_backend for a session idle in
    transaction) is printed, never executed. Read-only: it reads pg_stat_activity and pg_locks.
    Exit 0 when no session has waited longer than --warning, 1 above it, 2 above --critical.
    """
    from ops.playbook import locks as lk

    check_order("--warning", warning, "--critical", critical)
    report = lk.lock_tree(check_dsn(dsn), lk.Options(warning_s=warning, critical_s=critical))
    _finish(report, json, lk.render(report))


@playbook_app.command("integrity")
def integrity(
    heapallindexed: Annotated[
        bool,
        typer.Option(
            "--heapallindexed", help="Also prove every table row has its index entry (reads each whole table)."
        ),
    ] = False,
    max_duration: Annotated[
        float,
        duration(
            "--max-duration",
            default="10m",
            low=0,
            low_open=True,
            high=7 * 86400,
            help="Time budget (e.g. 10m, 1h): no check starts after it, the running one stops.",
        ),
    ] = 600.0,
    schema: Annotated[
        list[str] | None, typer.Option("--schema", help="Check only this schema's indexes (repeat the option).")
    ] = None,
    dsn: DsnOpt = None,
    json: JsonOpt = False,
) -> None:
    """Are the btree indexes intact? amcheck's bt_index_check over the app's indexes, within a time budget.

    Safe on a busy primary: bt_index_check takes only an AccessShareLock (writes go on);
    bt_index_parent_check, which blocks writes, is never run. Exit 0 OK, 2 CRITICAL (a corrupt
    index, named, with its fix), 3 UNKNOWN (amcheck not installed or not allowed: the fix is printed).
    """
    from ops.playbook import integrity as ig

    opts = ig.Options(heapallindexed=heapallindexed, max_duration=max_duration, schemas=list(schema or []))
    report = ig.integrity(check_dsn(dsn), opts)
    _finish(report, json, ig.render(report))


def register(app: typer.Typer) -> None:
    """Add the ``playbook`` group to the ops CLI."""
    app.add_typer(playbook_app, name="playbook")
