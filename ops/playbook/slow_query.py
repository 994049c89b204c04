"""``ops playbook slow-query``: why is this statement slow, and which index fixes it.

Safety first, because an on-call engineer runs this against production:

- The statement is parsed with PostgreSQL's parser (pglast) before anything runs: exactly one
  SELECT/INSERT/UPDATE/DELETE/MERGE, never more (nothing after a ``;`` can slip through). It is also
  sent as a named prepared statement, which the server refuses to hold more than one command.
- Before anything is planned, ops.safety resolves every function the statement reaches (through
  operators, views, policies, types, and what writing runs) and refuses user-defined code and built-ins
  with effects outside the transaction (UNKNOWN, one line with the reason).
- A read is explained with ``EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)`` as the least-privileged role
  ``s10_diagnosis`` in a ``READ ONLY`` transaction that is always rolled back, with ``statement_timeout``
  and ``lock_timeout``; when the login cannot switch to that role, it is explained without ANALYZE.
- A data-modifying statement (INSERT/UPDATE/DELETE/MERGE anywhere, a CTE with DELETE included,
  SELECT ... FOR UPDATE, SELECT INTO) is explained WITHOUT ANALYZE, so it is never executed, still in
  a READ ONLY transaction. Only ``--analyze-writes`` executes it, as the login, in a transaction that is
  rolled back, and only when what writing runs (triggers, defaults, cascades) is safe too: a sequence
  that would advance or a user trigger keeps it to estimates. Time spent in triggers is read, and a
  foreign key's trigger that dominates names the index it lacks.
- hypopg's hypothetical indexes live in this session's memory only; nothing is built.

Then the plan is read for the causes the seed's troubleshooting names: sequential scans of large
tables with a filter, sorts an index could avoid, row estimates off by 10x or more (stale statistics),
indexes the planner could not match. An index is suggested from the statement's own filter and
ORDER BY columns (equality columns first, then the sort), proven with hypopg when it is there.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import RawCursor, errors, sql

from ops.db import connect, first_line
from ops.errors import UNKNOWN, WARNING, OpsError, UsageError
from ops.maintain.analyze import stale as stale_statistics
from ops.playbook.report import INFO, Report
from ops.playbook.sqlshape import ColumnUse, Shape, analyse
from ops.safety import (
    DIAGNOSIS_ROLE,
    Reach,
    UnsafeStatement,
    check_statement,
    ddl_event_triggers,
    diagnosis_transaction,
)
from ops.sqlfiles import query

LARGE_TABLE_ROWS = 10_000  # a sequential scan of fewer rows is cheap enough to leave alone
SELECTIVE_SHARE = 0.10  # ... and one that keeps more than this share of the table is the right plan
MISESTIMATE_RATIO = 10  # the planner's row estimate is "off" at 10x or more
MISESTIMATE_MIN_ROWS = 100  # ... and when it is about enough rows to matter
SORT_MIN_ROWS = 10_000  # a sort of this many rows is worth an index even without LIMIT
TRIGGER_MIN_MS = 1.0  # a foreign key's trigger worth an index takes at least this long...
TRIGGER_SHARE = 0.5  # ... and at least this share of the statement's execution time
HYPOPG_MIN_GAIN = 2.0  # Dexter's rule: suggest an index when the plan's cost at least halves
EARLY_STOP = {"Limit"}  # nodes that stop reading their input early: estimates below them look too high

# The order findings are told in: the cause before its consequences.
CHECK_ORDER = [
    "timeout",
    "not-executed",
    "fk-trigger",
    "seq-scan",
    "stale-statistics",
    "row-estimate",
    "sort",
    "invalid-index",
]


@dataclass
class Options:
    params: list[str] = field(default_factory=list)
    timeout: float = 30.0  # statement_timeout, seconds
    lock_timeout: float = 2.0
    analyze_writes: bool = False
    hypopg_load: bool = False  # CREATE EXTENSION hypopg inside the rolled-back transaction, when missing


@dataclass
class Suggestion:
    table: str
    columns: list[str]  # "user_id", "created_at DESC"
    create_sql: str
    covered_by: str | None = None
    hypopg: dict[str, Any] | None = None


# --------------------------------------------------------------------------------------- running EXPLAIN


def _table_key(schema: str | None, relname: str) -> str:
    """A name to_regclass() resolves exactly as the statement does (through search_path when unqualified)."""
    return (sql.Identifier(schema, relname) if schema else sql.Identifier(relname)).as_string(None)


def _statement(text: str) -> str:
    return text.strip().rstrip(";").rstrip()


def _explain(conn: psycopg.Connection[Any], options: str, text: str, params: list[str]) -> dict[str, Any]:
    """EXPLAIN one statement; a named prepared statement, so the server itself refuses a second command."""
    cur = RawCursor(conn)
    cur.execute(f"EXPLAIN ({options}) {_statement(text)}", params or None, prepare=True)  # type: ignore[arg-type]
    row = cur.fetchone()
    value = row["QUERY PLAN"] if isinstance(row, dict) else row[0]  # type: ignore[index]
    plan = json.loads(value) if isinstance(value, str) else value
    return plan[0]


def lock_wait_message(opts: Options) -> str:
    return (
        f"waited {opts.lock_timeout:g} s for a lock on the statement's tables and gave up (--lock-timeout); "
        "something holds a strong lock: see pg_locks / pg_stat_activity"
    )


def run_explain(
    conn: psycopg.Connection[Any], shape: Shape, text: str, opts: Options, reach: Reach, report: Report
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The plan (with ANALYZE when that is safe) and how it was obtained. Always rolled back.

    A read runs as the least-privileged diagnosis role (ops.safety); a write under --analyze-writes runs as
    the login, since that role may only read, after ops.safety has checked everything writing it runs.
    """
    analyze = (not shape.writes or opts.analyze_writes) and reach.executable
    read_only = not shape.writes  # a write with --analyze-writes must be allowed to run (and is rolled back)
    if shape.writes and not opts.analyze_writes:
        report.add(
            INFO,
            "not-executed",
            f"the statement changes data or state ({shape.why_write}): explained WITHOUT ANALYZE, so it did not run; "
            "the plan shows estimates only",
            "to see real timings run it with --analyze-writes (it executes, then is rolled back; "
            "it holds row locks meanwhile)",
        )
    elif not reach.executable:
        report.add(
            INFO,
            "not-executed",
            "executing it would reach " + "; ".join(reach.not_executable) + ": explained WITHOUT ANALYZE, so it "
            "did not run; the plan shows estimates only",
        )
    how: dict[str, Any] = {
        "analyze": analyze,
        "read_only": read_only or not analyze,
        "rolled_back": True,
        "statement_timeout_s": opts.timeout,
        "lock_timeout_s": opts.lock_timeout,
        "kind": shape.kind,
        "checked": reach.method,
        "role": None,
    }
    options = "ANALYZE, BUFFERS, FORMAT JSON" if analyze else "FORMAT JSON"
    as_role = not shape.writes  # the diagnosis role reads only
    try:
        with diagnosis_transaction(
            conn, opts.timeout, opts.lock_timeout, read_only=how["read_only"], require_role=as_role
        ) as session:
            how["role"] = session.role
            if session.fallback and analyze:
                report.add(
                    INFO,
                    "diagnosis-role",
                    session.fallback,
                    f"ops roles apply   (creates {DIAGNOSIS_ROLE}), then GRANT {DIAGNOSIS_ROLE} TO <this login>;",
                )
                how.update(analyze=False)
                options = "FORMAT JSON"
            return _explain(conn, options, text, opts.params), how
    except errors.QueryCanceled:
        report.add(
            WARNING,
            "timeout",
            f"the statement ran longer than {opts.timeout:g} s (--timeout) and was cancelled; "
            "the plan shown is the planner's estimate without ANALYZE",
            "read the estimates in the plan, or rerun with a larger --timeout at a quiet hour",
        )
    except errors.ReadOnlySqlTransaction as exc:
        report.add(
            INFO,
            "not-executed",
            f"the statement tried to write although it reads like a SELECT ({first_line(exc)}), and the READ ONLY "
            "transaction stopped it: nothing changed; the plan shown is without ANALYZE",
        )
    except errors.LockNotAvailable:
        raise OpsError(lock_wait_message(opts), UNKNOWN) from None
    except errors.InsufficientPrivilege as exc:
        report.add(
            INFO,
            "diagnosis-role",
            f"the diagnosis role {how['role']} may not read what the statement reads ({first_line(exc)}): "
            "the plan shown is without ANALYZE",
            f"ops roles apply   (grants SELECT on the app's tables to {DIAGNOSIS_ROLE})",
        )
    except psycopg.Error as exc:
        raise OpsError(f"the database refused the statement: {first_line(exc)}", UNKNOWN) from None
    how.update(analyze=False, read_only=True)
    try:
        with diagnosis_transaction(conn, opts.timeout, opts.lock_timeout, require_role=False):
            return _explain(conn, "FORMAT JSON", text, opts.params), how
    except psycopg.Error as exc:
        raise OpsError(f"the database refused the statement: {first_line(exc)}", UNKNOWN) from None


# --------------------------------------------------------------------------------------- reading the plan


def walk(node: dict[str, Any], ancestors: tuple[dict[str, Any], ...] = ()) -> Iterator[tuple[dict[str, Any], tuple]]:
    yield node, ancestors
    for child in node.get("Plans", []):
        yield from walk(child, (*ancestors, node))


def total_rows(node: dict[str, Any]) -> float:
    """Rows a node produced over all its loops (ANALYZE), else the planner's estimate."""
    if "Actual Rows" in node:
        return node["Actual Rows"] * max(node.get("Actual Loops", 1), 1)
    return node.get("Plan Rows", 0)


def scanned_relation(node: dict[str, Any]) -> dict[str, Any] | None:
    """The single table scan under a node (through Gather, Hash, ...), or None when there are several."""
    scans = [n for n, _ in walk(node) if "Relation Name" in n]
    return scans[0] if len(scans) == 1 else None


def describe_plan(plan: dict[str, Any]) -> list[str]:
    """The plan as indented lines: node, table or index, rows (estimated / actual), time."""
    lines = []
    for node, ancestors in walk(plan["Plan"]):
        label = node.get("Operation", node["Node Type"]) if node["Node Type"] == "ModifyTable" else node["Node Type"]
        if node.get("Parallel Aware"):
            label = f"Parallel {label}"
        if "Index Name" in node:
            label += f" using {node['Index Name']}"
        if "Relation Name" in node:
            label += f" on {node['Relation Name']}"
        bits = [f"est {node.get('Plan Rows', 0):,} rows"]
        if "Actual Rows" in node:
            loops = node.get("Actual Loops", 1)
            per_loop = f"actual {node['Actual Rows']:,.0f} rows" + (f" x {loops} loops" if loops > 1 else "")
            bits.append(per_loop if loops else "never executed")
            bits.append(f"{node.get('Actual Total Time', 0):,.2f} ms")
        if "Sort Key" in node:
            bits.append("by " + ", ".join(node["Sort Key"]))
        for key in ("Index Cond", "Filter"):
            if key in node:
                bits.append(f"{key.lower()} {node[key]}")
        lines.append("  " * len(ancestors) + f"{label} ({'; '.join(bits)})")
    return lines


# --------------------------------------------------------------------------------------- triggers


def trigger_findings(conn: psycopg.Connection[Any], plan: dict[str, Any], report: Report) -> list[dict[str, Any]]:
    """Time spent in triggers (EXPLAIN ANALYZE's "Triggers"); a foreign key's trigger that dominates names its index.

    A foreign key's trigger on the referenced table looks up the referencing rows for each row deleted or
    updated; without an index leading with the referencing columns that lookup reads the whole table.
    """
    triggers = [
        {
            "name": t.get("Trigger Name", "?"),
            "constraint": t.get("Constraint Name"),
            "relation": t.get("Relation"),
            "time_ms": float(t.get("Time", 0.0)),
            "calls": int(t.get("Calls", 0)),
        }
        for t in plan.get("Triggers", [])
    ]
    total = plan.get("Execution Time") or 0.0
    for t in sorted(triggers, key=lambda t: -t["time_ms"]):
        if not t["constraint"] or t["time_ms"] < TRIGGER_MIN_MS or t["time_ms"] < TRIGGER_SHARE * total:
            continue
        fk = conn.execute(query("foreign_key_trigger"), {"trigger": t["name"]}).fetchone()
        if not fk or fk["indexed"]:
            continue
        create = fk_index_sql(fk["schema"], fk["relname"], fk["columns"])
        t["missing_index"] = create
        report.add(
            WARNING,
            "fk-trigger",
            f"{t['time_ms']:,.2f} ms of {total:,.2f} ms is spent in foreign key {t['constraint']}'s trigger on "
            f"{t['relation']} ({t['calls']:,} call(s)): it looks up {fk['qualified']} by ({', '.join(fk['columns'])}) "
            "and no index leads with those columns, so each lookup reads the whole table",
            f"{create}\nas a migration: put that line in sql/migrations/<revision>_<NN>_<name>.sql, then "
            "`ops migrate apply`",
        )
    return triggers


def fk_index_sql(schema: str, relname: str, columns: list[str]) -> str:
    """CREATE INDEX CONCURRENTLY on a foreign key's referencing columns, every identifier quoted."""
    name = f"idx_{relname}_{'_'.join(columns)}"[:63]
    return (
        sql.SQL("CREATE INDEX CONCURRENTLY {} ON {} ({});")
        .format(sql.Identifier(name), sql.Identifier(schema, relname), sql.SQL(", ").join(map(sql.Identifier, columns)))
        .as_string(None)
    )


# --------------------------------------------------------------------------------------- the catalog


@dataclass
class TableInfo:
    key: str
    aliases: set[str]
    stats: dict[str, Any] | None
    indexes: list[dict[str, Any]]
    columns: list[str]
    stale: dict[str, Any] | None = None  # its row in ops maintain analyze's stale list, when it is there

    @property
    def name(self) -> str:
        return self.stats["table"] if self.stats else self.key

    @property
    def rows(self) -> float:
        if not self.stats:
            return 0
        return max(self.stats["reltuples"] or 0, self.stats["live_rows"] or 0)


def load_tables(conn: psycopg.Connection[Any], plan: dict[str, Any], shape: Shape) -> dict[str, TableInfo]:
    """Catalog facts for every table the plan scans, keyed by the plan's alias and relation name."""
    by_alias: dict[str, TableInfo] = {}
    seen: dict[str, TableInfo] = {}
    stale_tables = {r["qualified"]: r for r in stale_statistics(conn)}
    for node, _ in walk(plan["Plan"]):
        if "Relation Name" not in node:
            continue
        rel, alias = node["Relation Name"], node.get("Alias", node["Relation Name"])
        schema, written = shape.tables.get(alias, (None, rel))
        if written != rel:
            schema = None
        key = _table_key(schema, rel)
        if key not in seen:
            seen[key] = TableInfo(
                key=key,
                aliases=set(),
                stats=conn.execute(query("playbook_table_stats"), {"table": key}).fetchone(),
                indexes=conn.execute(query("playbook_table_indexes"), {"table": key}).fetchall(),
                columns=[r["column"] for r in conn.execute(query("playbook_table_columns"), {"table": key})],
            )
            stats = seen[key].stats
            seen[key].stale = stale_tables.get(stats["qualified"]) if stats else None
        seen[key].aliases.update({alias, rel})
        by_alias[alias] = by_alias.get(alias) or seen[key]
        by_alias.setdefault(rel, seen[key])
    return by_alias


def columns_of(shape_cols: list[ColumnUse], table: TableInfo, tables: dict[str, TableInfo]) -> list[str]:
    """The statement's columns that belong to ``table`` (qualified by its alias, or unambiguous)."""
    out: list[str] = []
    distinct = {id(t): t for t in tables.values()}
    for col in shape_cols:
        if col.table is not None:
            mine = col.table in table.aliases
        else:
            owners = [t for t in distinct.values() if col.column in t.columns]
            mine = len(owners) == 1 and owners[0] is table
        if mine and col.column not in out:
            out.append(col.column)
    return out


# --------------------------------------------------------------------------------------- suggestions


def suggest(shape: Shape, table: TableInfo, tables: dict[str, TableInfo]) -> Suggestion | None:
    """Equality columns first, then the ORDER BY (when it is all on this table) or else one range column."""
    eq = columns_of(shape.equality, table, tables)
    cols = list(eq)
    order = [(c, desc) for c, desc in shape.order_by]
    order_cols = columns_of([c for c, _ in order], table, tables)
    if order and len(order_cols) == len(order):
        cols += [f"{c.column} DESC" if desc else c.column for c, desc in order if c.column not in eq]
    else:
        cols += [c for c in columns_of(shape.ranges, table, tables) if c not in eq][:1]
    if not cols:
        return None
    create = index_sql(table, cols)
    return Suggestion(table=table.name, columns=cols, create_sql=create, covered_by=covering_index(cols, table))


def index_sql(table: TableInfo, cols: list[str]) -> str:
    """CREATE INDEX CONCURRENTLY for ``cols`` ("col" or "col DESC"), every identifier quoted (psycopg sql)."""
    stats = table.stats or {}
    relname = stats.get("relname") or table.name.split(".")[-1].strip('"')
    target = sql.Identifier(stats["schema"], relname) if stats.get("schema") else sql.Identifier(relname)
    base = "_".join(c.replace(" DESC", "_desc") for c in cols)
    keys = [
        sql.SQL("{} DESC").format(sql.Identifier(c.removesuffix(" DESC"))) if c.endswith(" DESC") else sql.Identifier(c)
        for c in cols
    ]
    return (
        sql.SQL("CREATE INDEX CONCURRENTLY {} ON {} ({});")
        .format(sql.Identifier(f"idx_{relname}_{base}"[:63]), target, sql.SQL(", ").join(keys))
        .as_string(None)
    )


def covering_index(cols: list[str], table: TableInfo) -> str | None:
    """A valid, non-partial btree whose leading keys are ``cols`` (directions equal, or all reversed)."""
    want = [(c.removesuffix(" DESC"), c.endswith(" DESC")) for c in cols]
    for ix in table.indexes:
        if not ix["valid"] or ix["partial"] or ix["method"] != "btree" or len(ix["columns"]) < len(want):
            continue
        have = [(c.strip('"'), d) for c, d in zip(ix["columns"], ix["descending"], strict=False)][: len(want)]
        if [c for c, _ in have] != [c for c, _ in want]:
            continue
        same = all(h[1] == w[1] for h, w in zip(have, want, strict=True))
        flipped = all(h[1] != w[1] for h, w in zip(have, want, strict=True))
        if same or flipped:
            return ix["index"]
    return None


def prove_with_hypopg(
    conn: psycopg.Connection[Any], text: str, opts: Options, suggestions: list[Suggestion], report: Report
) -> dict[str, Any]:
    """Plan cost before and with each hypothetical index (nothing is built). Rolled back."""
    with conn.transaction(force_rollback=True):
        state = conn.execute(query("extension_state"), {"name": "hypopg"}).fetchone() or {}
    result: dict[str, Any] = {"installed": bool(state.get("installed_version")), "used": False}
    triggers = ddl_event_triggers(conn) if opts.hypopg_load and not state.get("installed_version") else []
    if triggers:
        report.add(
            INFO,
            "hypopg",
            f"--hypopg-load not used: event trigger {', '.join(triggers)} would run its own code on CREATE EXTENSION; "
            "the suggested index is not proven with a hypothetical index",
            "CREATE EXTENSION hypopg; once, at a time of your choosing",
        )
        result["reason"] = "event triggers on DDL"
        return result
    if not state.get("installed_version") and not (opts.hypopg_load and state.get("available")):
        why = (
            "hypopg is available on the server but not installed in this database"
            if state.get("available")
            else "hypopg is not on the server (Debian package postgresql-15-hypopg)"
        )
        report.add(
            INFO,
            "hypopg",
            f"{why}: the suggested index is not proven with a hypothetical index",
            "rerun with --hypopg-load (CREATE EXTENSION inside the rolled-back transaction: nothing stays), "
            "or CREATE EXTENSION hypopg; once",
        )
        result["reason"] = why
        return result
    try:
        _hypopg(conn, text, opts, suggestions, state, result)
    except psycopg.Error as exc:
        report.add(INFO, "hypopg", f"the hypothetical-index check failed: {first_line(exc)}")
        result["error"] = first_line(exc)
    return result


def _hypopg(
    conn: psycopg.Connection[Any],
    text: str,
    opts: Options,
    suggestions: list[Suggestion],
    state: dict[str, Any],
    result: dict[str, Any],
) -> None:
    """Plan the statement (never run it) with each hypothetical index, as the login: hypopg is its tool."""
    installed = bool(state.get("installed_version"))
    with diagnosis_transaction(conn, opts.timeout, opts.lock_timeout, read_only=installed, require_role=False):
        if not installed:
            conn.execute("CREATE EXTENSION hypopg")  # undone by the rollback below
            result["loaded_for_this_run"] = True
        before = _explain(conn, "FORMAT JSON", text, opts.params)["Plan"]["Total Cost"]
        for s in suggestions:
            definition = s.create_sql.replace(" CONCURRENTLY", "").rstrip(";")
            hypo = conn.execute("SELECT indexname FROM hypopg_create_index(%s)", (definition,)).fetchone()
            plan = _explain(conn, "FORMAT JSON", text, opts.params)["Plan"]
            uses = any(n.get("Index Name") == hypo["indexname"] for n, _ in walk(plan))  # type: ignore[index]
            after = plan["Total Cost"]
            s.hypopg = {
                "cost_before": before,
                "cost_after": after,
                "planner_uses_it": uses,
                "proven": uses and after * HYPOPG_MIN_GAIN <= before,
            }
            conn.execute("SELECT hypopg_reset()")
        result["used"] = True


# --------------------------------------------------------------------------------------- the diagnosis


def check_params(shape: Shape, params: list[str]) -> None:
    if shape.params != len(params):
        raise UsageError(
            f"the statement uses {shape.params} parameter(s) ($1..${shape.params}) but {len(params)} --params "
            "value(s) were given"
            if shape.params
            else f"the statement has no $n parameters but {len(params)} --params value(s) were given"
        )


def diagnose(dsn: str | None, text: str, opts: Options) -> Report:
    shape = analyse(text)
    check_params(shape, opts.params)
    report = Report(ok_summary="")
    try:
        return _diagnose(dsn, text, opts, shape, report)
    except psycopg.Error as exc:
        raise OpsError(f"diagnosis failed: {first_line(exc)}", UNKNOWN) from None


def _diagnose(dsn: str | None, text: str, opts: Options, shape: Shape, report: Report) -> Report:
    # The statement names tables as the app does: resolve them through the server's search_path.
    with connect(dsn, autocommit=False, search_path=None) as conn:
        try:
            reach = check_statement(conn, text, lock_timeout=opts.lock_timeout)
        except errors.LockNotAvailable:
            raise OpsError(lock_wait_message(opts), UNKNOWN) from None
        except UnsafeStatement as exc:
            report.add(
                UNKNOWN,
                "unsafe-statement",
                str(exc),
                "diagnose it by hand on a copy of the database; slow-query runs only built-in, effect-free code",
            )
            report.details.update({"statement": text.strip(), "params": opts.params})
            return report
        plan, how = run_explain(conn, shape, text, opts, reach, report)
        with diagnosis_transaction(conn, opts.timeout, opts.lock_timeout, require_role=False):
            tables = load_tables(conn, plan, shape)
            triggers = trigger_findings(conn, plan, report)
        suggestions = read_plan(plan, shape, tables, how, report)
        report.findings.sort(key=lambda f: CHECK_ORDER.index(f.check) if f.check in CHECK_ORDER else len(CHECK_ORDER))
        hypo = prove_with_hypopg(conn, text, opts, suggestions, report) if suggestions else None
    attach_suggestions(report, suggestions)
    used = sorted({n["Index Name"] for n, _ in walk(plan["Plan"]) if "Index Name" in n})
    took = f"{plan['Execution Time']:.2f} ms" if "Execution Time" in plan else "estimated only"
    report.ok_summary = (
        f"uses {', '.join(used)}; " if used else ""
    ) + f"no sequential scan of a large table, no avoidable sort, estimates within {MISESTIMATE_RATIO}x ({took})"
    report.details.update(
        {
            "statement": text.strip(),
            "params": opts.params,
            "safety": how,
            "execution_ms": plan.get("Execution Time"),
            "planning_ms": plan.get("Planning Time"),
            "plan_lines": describe_plan(plan),
            "triggers": triggers,
            "trigger_ms": sum(t["time_ms"] for t in triggers),
            "suggestions": [s.__dict__ for s in suggestions],
            "hypopg": hypo,
            "tables": {
                t.name: {k: v for k, v in (t.stats or {}).items() if k != "table"}
                for t in {id(t): t for t in tables.values()}.values()
            },
            "plan": plan,
        }
    )
    return report


def read_plan(
    plan: dict[str, Any], shape: Shape, tables: dict[str, TableInfo], how: dict[str, Any], report: Report
) -> list[Suggestion]:
    """Findings from the plan and the catalog; returns the index suggestions for the tables at fault."""
    at_fault: dict[str, TableInfo] = {}
    misestimated: dict[str, tuple[float, float]] = {}
    for node, ancestors in walk(plan["Plan"]):
        table = tables.get(node.get("Alias", node.get("Relation Name", "")))
        if (
            node["Node Type"] == "Seq Scan"
            and "Filter" in node
            and table
            and table.rows >= LARGE_TABLE_ROWS
            and total_rows(node) <= SELECTIVE_SHARE * table.rows
        ):
            removed = node.get("Rows Removed by Filter")
            loops = max(node.get("Actual Loops", 1), 1)
            read = (
                f"kept {total_rows(node):,.0f} rows and threw away {removed * loops:,.0f}"
                if removed is not None
                else f"expects to keep {node.get('Plan Rows', 0):,} rows"
            )
            report.add(
                WARNING,
                "seq-scan",
                f"sequential scan of {table.name} ({table.rows:,.0f} rows) with filter {node['Filter']}: it reads "
                f"the whole table and {read}",
            )
            at_fault[table.key] = table
        if node["Node Type"] in ("Sort", "Incremental Sort") and node.get("Plans"):
            source = scanned_relation(node)
            table = tables.get(source.get("Alias", source["Relation Name"])) if source else None
            child_rows = total_rows(node["Plans"][0])
            limited = any(a["Node Type"] in EARLY_STOP for a in ancestors)
            if table and ((limited and child_rows >= MISESTIMATE_MIN_ROWS) or child_rows >= SORT_MIN_ROWS):
                method = f", {node['Sort Method']}" if "Sort Method" in node else ""
                report.add(
                    WARNING,
                    "sort",
                    f"sorts {child_rows:,.0f} rows of {table.name} by {', '.join(node.get('Sort Key', []))}{method}"
                    + (" to return the first few" if limited else "")
                    + ": an index in that order would hand them over already sorted",
                )
                at_fault[table.key] = table
        if table and "Actual Rows" in node and node.get("Actual Loops", 0) > 0 and "Relation Name" in node:
            est, act = float(node.get("Plan Rows", 0)), float(node["Actual Rows"])
            low, high = min(est, act), max(est, act)
            under = act > est
            stopped_early = any(a["Node Type"] in EARLY_STOP for a in ancestors)
            if (
                high >= MISESTIMATE_MIN_ROWS
                and high / max(low, 1) >= MISESTIMATE_RATIO
                and (under or not stopped_early)
            ):
                prev = misestimated.get(table.key)
                if prev is None or high / max(low, 1) > max(prev) / max(min(prev), 1):
                    misestimated[table.key] = (est, act)
    for table in {id(t): t for t in tables.values()}.values():
        statistics_findings(table, misestimated.get(table.key), how, shape, tables, report)
        for ix in table.indexes:
            if not ix["valid"]:
                report.add(
                    WARNING,
                    "invalid-index",
                    f"index {ix['index']} on {table.name} is INVALID (a failed concurrent build): the planner ignores "
                    "it, yet every write still maintains it",
                    "ops migrate apply   (rebuilds INVALID indexes it declares), or: REINDEX INDEX CONCURRENTLY "
                    f"{sql.Identifier(ix['schema'], ix['index']).as_string(None)};",
                )
    suggestions = []
    for table in at_fault.values():
        unmatched_indexes(table, shape, tables, report)
        s = suggest(shape, table, tables)
        if s:
            suggestions.append(s)
        else:
            report.add(INFO, "no-suggestion", f"no plain column filter or sort on {table.name} to build an index from")
    return suggestions


def statistics_findings(
    table: TableInfo,
    miss: tuple[float, float] | None,
    how: dict[str, Any],
    shape: Shape,
    tables: dict[str, TableInfo],
    report: Report,
) -> None:
    st = table.stats or {}
    fix = f"ANALYZE {table.name};"
    fix_all = "or, for every table with stale statistics: ops maintain analyze"
    when = f"last ANALYZE {st['analyzed_at']:%Y-%m-%d %H:%M:%S %Z}" if st.get("analyzed_at") else "never analyzed"
    changed = st.get("modified_since_analyze") or 0
    known = max(st.get("reltuples") or 0, 0)
    since = f"{changed:,} rows changed since" + (f", {changed / known:.0%} of the {known:,} it knows" if known else "")
    if miss:
        est, act = miss
        off = f"the planner expected {est:,.0f} rows from {table.name} and got {act:,.0f} ({max(est, act) / max(min(est, act), 1):,.0f}x off)"
        if table.stale:
            report.add(
                WARNING, "stale-statistics", f"{off}: its statistics are stale ({when}, {since})", f"{fix}\n{fix_all}"
            )
        else:
            cols = columns_of(shape.equality + shape.ranges, table, tables) or ["<column>"]
            report.add(
                WARNING,
                "row-estimate",
                f"{off} although its statistics are fresh ({when}): the sample misses this value's frequency, "
                "or the filtered columns are correlated",
                "\n".join(
                    f"ALTER TABLE {table.name} ALTER COLUMN {sql.Identifier(c).as_string(None)} SET STATISTICS 1000;"
                    for c in cols
                )
                + f"\n{fix}",
            )
    elif table.stale:
        report.add(
            INFO if how.get("analyze") else WARNING,
            "stale-statistics",
            f"statistics of {table.name} are stale ({when}, {since})"
            + ("; this plan's estimates held anyway" if how.get("analyze") else ": the estimates above may be off"),
            f"{fix}\n{fix_all}",
        )


def unmatched_indexes(table: TableInfo, shape: Shape, tables: dict[str, TableInfo], report: Report) -> None:
    """Why the table's existing indexes did not serve the filter, one plain sentence each."""
    filtered = columns_of(shape.equality + shape.ranges, table, tables)
    wrapped = {c.column: f for c, f in shape.wrapped if columns_of([c], table, tables)}
    for ix in table.indexes:
        if not ix["valid"]:
            continue
        lead = ix["columns"][0].strip('"') if ix["columns"] else ""
        if lead in wrapped:
            msg = f"{ix['index']} ({', '.join(ix['columns'])}) cannot serve the filter: it wraps {lead} in {wrapped[lead]}()"
            fix = (
                "index the expression instead: CREATE INDEX CONCURRENTLY ... ON "
                f"{table.name} ({wrapped[lead]}({sql.Identifier(lead).as_string(None)}));"
            )
        elif lead in filtered:
            msg = (
                f"{ix['index']} ({', '.join(ix['columns'])}) leads with the filtered column {lead}, yet the planner "
                "chose to scan the table: it expects the filter to keep many rows, or the value's type does not match"
            )
            fix = ""
        else:
            want = ", ".join(filtered) or "the filtered columns"
            msg = f"{ix['index']} ({', '.join(ix['columns'])}) cannot serve this filter: it does not start with {want}"
            fix = ""
        report.add(INFO, "index-not-matched", msg, fix)


def attach_suggestions(report: Report, suggestions: list[Suggestion]) -> None:
    """Turn each suggestion into the fix line of the findings it cures, with hypopg's proof."""
    for s in suggestions:
        if s.covered_by:
            report.add(
                INFO,
                "index-exists",
                f"an existing index already covers ({', '.join(s.columns)}) on {s.table}: {s.covered_by}; the planner "
                "chose not to use it (check the statistics and the value's type)",
            )
            continue
        proof = ""
        if s.hypopg:
            h = s.hypopg
            change = (h["cost_before"] - h["cost_after"]) / h["cost_before"] if h["cost_before"] else 0
            proof = (
                f"hypopg: plan cost {h['cost_before']:,.2f} -> {h['cost_after']:,.2f} ({change:.1%} less) with it "
                + ("(the planner uses it)" if h["planner_uses_it"] else "(the planner would NOT use it)")
            )
            if not h["proven"]:
                proof += "; not proven: the cost does not drop by half or more"
        fix = "\n".join(
            x
            for x in (
                s.create_sql,
                proof,
                "as a migration: put that line in sql/migrations/<revision>_<NN>_<name>.sql, then `ops migrate apply`",
            )
            if x
        )
        cured = [f for f in report.findings if f.check in ("seq-scan", "sort") and s.table in f.message]
        for i, f in enumerate(cured):
            f.fix = fix if i == 0 else f"the index on ({', '.join(s.columns)}) above"
        if not cured:
            report.add(INFO, "suggested-index", f"index ({', '.join(s.columns)}) on {s.table}", fix)
