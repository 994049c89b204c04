"""A diagnosis has no effect outside its own rolled-back transaction: the one place that decides.

Two layers, both used by every playbook that runs or plans a statement it was given
(``ops playbook slow-query``, ``ops advise``):

1. :func:`check_statement` looks up, BEFORE anything is planned, every function the statement
   reaches, and refuses (:class:`UnsafeStatement`, one line with the reason) a statement that reaches
   user-defined code or a built-in function that acts outside the transaction. Planning is not safe
   either: the planner runs IMMUTABLE and STABLE functions while it folds constants and estimates.

   How the statement is resolved: the server's own parser, without planning. The statement is
   parse-analysed (a named prepared statement: its ``$n`` types), then written into a temporary SQL
   function's ``BEGIN ATOMIC`` body, inside a transaction that is always rolled back. The server stores
   that body as a parse tree naming the exact oid of every function, operator, type and relation the
   statement resolves to (overloads, casts and implicit operators included); nothing is planned or run.
   From there the check follows, in the catalog: operators to their functions and estimators, views to
   their own parse trees (``pg_rewrite``), row-level security policies, user-defined types to their I/O
   functions and domain checks, and, for a statement that writes, what writing runs: defaults and rules
   (the planner sees those), triggers, CHECK constraints, index expressions, foreign-key cascades to other
   tables, partitions. Built-in functions are pinned and have no ``pg_depend`` rows, which is why the
   parse trees are read rather than ``pg_depend``.

   When the server cannot take a temporary function (a hot standby, a read-only server, no TEMP
   privilege, or an event trigger on DDL, which would run its own code on the probe), names are resolved from pglast's parse tree instead, over-approximating: every
   function, operator and cast target that a name can mean on the search_path is judged, so the check
   may refuse more, never less, except for implicit casts to user-defined types, which it cannot see.

   What is allowed, by property rather than by bad names: a built-in function (created by initdb in
   pg_catalog) that is IMMUTABLE or STABLE, except the few on :data:`STABLE_DENIED`; a volatile
   built-in only from :data:`VOLATILE_ALLOWED` (no effect outside the transaction). A statement is not
   executed (explained without ANALYZE instead) when only writing it would reach something else: a
   user trigger, an identity column's sequence, a ``nextval()`` default.

2. :func:`diagnosis_transaction` runs the diagnosis in a transaction that is READ ONLY (unless
   ``--analyze-writes``), bounded by ``statement_timeout`` and ``lock_timeout``, always rolled back, and
   as the least-privileged role ``s10_diagnosis`` (``SET LOCAL ROLE``): no superuser, no replication,
   not in pg_signal_backend. When the session cannot switch to it, the caller is told in one line and
   must fall back to estimates (EXPLAIN without ANALYZE); unsafe statements are still refused.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import errors, sql

from ops.db import first_line
from ops.errors import UNKNOWN, OpsError
from ops.sqlfiles import query

DIAGNOSIS_ROLE = "s10_diagnosis"

# Volatile built-ins with no effect outside the transaction (the planner never runs volatile functions;
# these may run under EXPLAIN ANALYZE). Everything else volatile is refused.
VOLATILE_ALLOWED = {
    "random",
    "random_normal",
    "clock_timestamp",
    "timeofday",
    "gen_random_uuid",
    "pg_sleep",
    "pg_sleep_for",
    "pg_sleep_until",
    "pg_relation_size",
    "pg_table_size",
    "pg_indexes_size",
    "pg_total_relation_size",
    "pg_database_size",
    "pg_lock_status",
    "pg_blocking_pids",
    "pg_is_in_recovery",
    "currval",
    "lastval",
}
# The foreign keys' own triggers: row work inside the transaction, undone by its rollback.
TRIGGER_ALLOWED_PREFIX = "RI_FKey_"
# Built-in STABLE/IMMUTABLE functions with an effect all the same (measured over pg_proc on PostgreSQL 15:
# the stable ones that assign a transaction id).
STABLE_DENIED = {
    "txid_current": "assigns a transaction id",
    "pg_current_xact_id": "assigns a transaction id",
}

PROBE = "s10_probe"

# Fields of a stored parse tree (pg_node_tree text) that name what runs. Constants are serialised as byte
# lists ("[ 58 102 ... ]"), so a value in the statement can never look like one of these.
_FUNC_FIELDS = re.compile(
    r":(?:funcid|hashfuncid|negfuncid|aggfnoid|winfnoid|tsmhandler|startInRangeFunc|endInRangeFunc) (\d+)"
)
_OP_FIELDS = re.compile(r":(?:opno|eqop|sortop) (\d+)")
_OP_LISTS = re.compile(r":opnos \(o ([\d ]+)\)")
# Every field that names a type ends so (vartype, consttype, resulttype, minmaxtype, array_typeid, ...); the
# other fields ending so are enums (commandType, jointype...), far below the first user oid, so they drop out.
_TYPE_FIELDS = re.compile(r":\w*(?:type|Type|typeid|typid) (\d+)")
_TYPE_LISTS = re.compile(r":\w*types \(o ([\d ]+)\)")
_RELATIONS = re.compile(r":relid (\d+) :relkind (\w) :rellockmode (\d+)")
_WRITE_LOCK = 3  # RowExclusiveLock: the lock a statement takes on the tables it writes
_INSERTS = re.compile(r":commandType [35] ")  # INSERT or MERGE somewhere in the statement
_FIRST_NORMAL_OID = 16384

# Stages, in the order of what they allow:
STATEMENT = "statement"  # the statement, its views and policies: planned always, run by EXPLAIN ANALYZE
WRITE_PLAN = "write-plan"  # defaults and rules of written tables: the rewriter puts them into the plan
WRITE_EXEC = "write-exec"  # triggers, constraints, cascades...: only executing the write runs them


class UnsafeStatement(OpsError):
    """The statement reaches code that could act outside the diagnosis: not planned, not run (UNKNOWN)."""

    exit_code = UNKNOWN


@dataclass
class Reach:
    """What :func:`check_statement` found."""

    method: str  # "server parse tree" or "names (...)"
    functions: list[str] = field(default_factory=list)  # signatures of every function reached
    not_executable: list[str] = field(default_factory=list)  # why executing (EXPLAIN ANALYZE) would have effects

    @property
    def executable(self) -> bool:
        return not self.not_executable


@dataclass
class _Found:
    functions: dict[int, tuple[str, str]] = field(default_factory=dict)  # oid -> (stage, via)
    operators: dict[int, tuple[str, str]] = field(default_factory=dict)
    types: dict[int, tuple[str, str]] = field(default_factory=dict)
    relations: dict[int, tuple[str, str, bool]] = field(default_factory=dict)  # oid -> (stage, via, written)
    inserts: bool = False


# --------------------------------------------------------------------------------------- the public API


def check_statement(conn: psycopg.Connection[Any], sql_text: str, *, lock_timeout: float = 2.0) -> Reach:
    """Refuse (UnsafeStatement) a statement that reaches user code or a built-in with effects; nothing runs.

    Runs in its own transaction, always rolled back; ``conn`` must not be inside a transaction. A lock held
    on the statement's tables longer than ``lock_timeout`` (seconds) raises psycopg's LockNotAvailable.
    """
    found, method = _resolve(conn, sql_text, lock_timeout)
    reach = Reach(method=method)
    with conn.transaction(force_rollback=True):
        _close_over(conn, found, reach)
    return reach


@dataclass
class DiagnosisSession:
    """How :func:`diagnosis_transaction` is running: as the diagnosis role, or why not."""

    role: str | None
    read_only: bool
    fallback: str | None = None  # one line: why the caller must not execute (estimates only)


def role_problem(conn: psycopg.Connection[Any], role: str = DIAGNOSIS_ROLE) -> str | None:
    """Why this session cannot run as the least-privileged diagnosis role, or None when it can."""
    return _role_state(conn, role)[0]


def _role_state(conn: psycopg.Connection[Any], role: str) -> tuple[str | None, list[str]]:
    """(why the session cannot switch to ``role`` or None, the schemas it resolves names in now)."""
    with conn.transaction(force_rollback=True):
        rows = _rows(conn, "diagnosis_role", {"role": role})
    if not rows:
        return f"role {role} does not exist (ops roles apply creates it)", []
    row = rows[0]
    powers = [k for k in ("superuser", "replication", "bypassrls") if row[k]] + list(row["powerful_memberships"])
    if powers:
        return f"role {role} is not least-privileged ({', '.join(powers)})", []
    if not row["can_switch"]:
        return f"this login may not SET ROLE {role} (GRANT {role} TO <login role>)", []
    return None, list(row["search_path"])


@contextlib.contextmanager
def diagnosis_transaction(
    conn: psycopg.Connection[Any],
    timeout: float,
    lock_timeout: float,
    *,
    read_only: bool = True,
    role: str = DIAGNOSIS_ROLE,
    require_role: bool = True,
) -> Iterator[DiagnosisSession]:
    """A transaction for running a diagnosis: READ ONLY (unless asked), timeouts, the diagnosis role, rolled back.

    ``timeout`` and ``lock_timeout`` are in seconds. When the session cannot switch to ``role``, it runs
    as itself and ``session.fallback`` says why: the caller must then not execute the statement (plan it
    only). With ``require_role=False`` the role is not tried (for the tool's own catalog queries).
    """
    problem, search_path = _role_state(conn, role) if require_role else (None, [])
    session = DiagnosisSession(role=role if require_role and not problem else None, read_only=read_only)
    if problem:
        session.fallback = f"{problem}: not executing the statement as this login; estimates only"
    with conn.transaction(force_rollback=True):
        if read_only:
            conn.execute("SET TRANSACTION READ ONLY")
        conn.execute("SELECT set_config('statement_timeout', %s, true)", (f"{max(1, int(timeout * 1000))}ms",))
        conn.execute("SELECT set_config('lock_timeout', %s, true)", (f"{max(1, int(lock_timeout * 1000))}ms",))
        if session.role:
            conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(session.role)))
            # Names resolve as they did for the login (and the safety check): "$user" would now be the role.
            path = sql.SQL(", ").join(map(sql.Identifier, search_path)).as_string(conn) if search_path else "''"
            conn.execute("SELECT set_config('search_path', %s, true)", (path,))
        yield session


# --------------------------------------------------------------------------------------- resolving names


def _resolve(conn: psycopg.Connection[Any], text: str, lock_timeout: float) -> tuple[_Found, str]:
    """The statement's parse tree from the server (exact), or its names from pglast (over-approximated)."""
    why_not = _probe_impossible(conn)
    if why_not is None:
        try:
            with conn.transaction(force_rollback=True):
                conn.execute("SELECT set_config('lock_timeout', %s, true)", (f"{int(lock_timeout * 1000)}ms",))
                tree = _server_parse_tree(conn, text)
            found = _Found()
            _read_tree(tree, STATEMENT, "the statement", found)
            found.inserts = bool(_INSERTS.search(tree))
            return found, "server parse tree"
        except (errors.LockNotAvailable, errors.QueryCanceled):
            raise  # the caller says how long it waited (its --lock-timeout)
        except psycopg.Error as exc:
            why_not = f"the server could not parse it into a function body ({first_line(exc)})"
    return _names(conn, text), f"names on the search_path ({why_not})"


def ddl_event_triggers(conn: psycopg.Connection[Any]) -> list[str]:
    """Enabled event triggers that would run their own code on DDL (CREATE FUNCTION, CREATE EXTENSION...)."""
    with conn.transaction(force_rollback=True):
        return list(_rows(conn, "diagnosis_probe_possible", {})[0]["event_triggers"])


def _probe_impossible(conn: psycopg.Connection[Any]) -> str | None:
    with conn.transaction(force_rollback=True):
        row = _rows(conn, "diagnosis_probe_possible", {})[0]
    standby, read_only, temp = row["standby"], row["read_only"], row["temp"]
    if standby:
        return "a hot standby"
    if read_only:
        return "default_transaction_read_only is on"
    if not temp:
        return "no TEMP privilege on this database"
    if row["event_triggers"]:
        return f"event trigger {', '.join(row['event_triggers'])} would run on the probe"
    return None


def _server_parse_tree(conn: psycopg.Connection[Any], text: str) -> str:
    """The parse tree PostgreSQL stores for ``text`` as a temporary SQL function's body (rolled back by the caller).

    Parse analysis resolves every name to an oid and runs nothing; the function is never called.
    """
    pgconn = conn.pgconn
    statement = text.strip().rstrip(";")
    name = PROBE.encode()
    res = pgconn.prepare(name, statement.encode(), None)  # one command only: the protocol refuses more
    try:
        if res.status != psycopg.pq.ExecStatus.COMMAND_OK:
            raise errors.lookup((res.error_field(psycopg.pq.DiagnosticField.SQLSTATE) or b"XX000").decode())(
                (res.error_message or b"").decode().strip()
            )
        desc = pgconn.describe_prepared(name)
        param_types = [desc.param_type(i) for i in range(desc.nparams)]
    finally:
        if res.status == psycopg.pq.ExecStatus.COMMAND_OK:
            pgconn.exec_(b"DEALLOCATE " + name)  # prepared statements outlive a rollback
    types = [r["name"] for r in _rows(conn, "type_names", {"oids": param_types})] if param_types else []
    create = sql.SQL("CREATE FUNCTION pg_temp.{}({}) RETURNS void LANGUAGE sql BEGIN ATOMIC\n{}\n;\nEND").format(
        sql.Identifier(PROBE), sql.SQL(", ").join(sql.SQL(t) for t in types), sql.SQL(statement)
    )
    conn.execute(create, prepare=True)  # prepared: a second command is refused by the server
    rows = _rows(conn, "diagnosis_probe_tree", {"name": PROBE})
    return rows[0]["tree"] if rows else ""


def _read_tree(tree: str | None, stage: str, via: str, found: _Found) -> None:
    """Every function, operator, type and relation a stored parse tree names."""
    if not tree:
        return
    for oid in _FUNC_FIELDS.findall(tree):
        found.functions.setdefault(int(oid), (stage, via))
    for oid in _OP_FIELDS.findall(tree):
        found.operators.setdefault(int(oid), (stage, via))
    for group in _OP_LISTS.findall(tree):
        for oid in group.split():
            found.operators.setdefault(int(oid), (stage, via))
    types = [int(oid) for oid in _TYPE_FIELDS.findall(tree)]
    types += [int(oid) for group in _TYPE_LISTS.findall(tree) for oid in group.split()]
    for oid in types:
        if oid >= _FIRST_NORMAL_OID:
            found.types.setdefault(oid, (stage, via))
    for oid, _kind, lock in _RELATIONS.findall(tree):
        written = int(lock) >= _WRITE_LOCK
        prev = found.relations.get(int(oid))
        if prev is None or (written and not prev[2]):
            found.relations[int(oid)] = (stage, via, written)
    found.functions.pop(0, None)
    found.operators.pop(0, None)


def _names(conn: psycopg.Connection[Any], text: str) -> _Found:
    """Over-approximate from names (no server parse): every candidate a name can mean is judged."""
    from pglast import ast, parse_sql
    from pglast.visitors import Visitor

    found = _Found()
    names: list[tuple[str, str | None, str]] = []  # (what, schema, name)
    relations: list[tuple[str | None, str, bool]] = []
    # Operators a statement uses without writing them: IN, BETWEEN, LIKE, CASE, ORDER BY, GROUP BY, DISTINCT.
    for op in ("=", "<>", "<", ">", "<=", ">=", "~~", "~~*", "!~~", "!~~*"):
        names.append(("operator", None, op))

    def qualified(parts: Any) -> tuple[str | None, str]:
        values = [p.sval or "" for p in parts or () if isinstance(p, ast.String)]
        return (values[-2] if len(values) > 1 else None), (values[-1] if values else "")

    class V(Visitor):
        def visit_FuncCall(self, ancestors: Any, node: ast.FuncCall) -> None:
            names.append(("function", *qualified(node.funcname)))

        def visit_A_Expr(self, ancestors: Any, node: ast.A_Expr) -> None:
            names.append(("operator", *qualified(node.name)))

        def visit_SubLink(self, ancestors: Any, node: ast.SubLink) -> None:  # x op ANY (SELECT ...)
            if node.operName:
                names.append(("operator", *qualified(node.operName)))

        def visit_SortBy(self, ancestors: Any, node: ast.SortBy) -> None:  # ORDER BY x USING op
            if node.useOp:
                names.append(("operator", *qualified(node.useOp)))

        def visit_TypeCast(self, ancestors: Any, node: ast.TypeCast) -> None:
            if node.typeName is not None:
                names.append(("cast", *qualified(node.typeName.names)))

        def visit_RangeVar(self, ancestors: Any, node: ast.RangeVar) -> None:
            parent = ancestors.parent.node if ancestors and ancestors.parent else None
            written = isinstance(parent, ast.InsertStmt | ast.UpdateStmt | ast.DeleteStmt | ast.MergeStmt) and (
                getattr(parent, "relation", None) is node
            )
            relations.append((node.schemaname, node.relname or "", written))

        def visit_InsertStmt(self, ancestors: Any, node: ast.InsertStmt) -> None:
            found.inserts = True

        def visit_MergeStmt(self, ancestors: Any, node: ast.MergeStmt) -> None:
            found.inserts = True

    for raw in parse_sql(text):
        if raw.stmt is not None:
            V()(raw.stmt)
    with conn.transaction(force_rollback=True):
        for what, schema, name in names:
            for row in _rows(conn, "diagnosis_names", {"what": what, "schema": schema, "name": name}):
                target = {"function": found.functions, "operator": found.operators, "type": found.types}[row["kind"]]
                target.setdefault(int(row["oid"]), (STATEMENT, f"the name {name}"))
        for schema, rel, written in relations:
            ident = (sql.Identifier(schema, rel) if schema else sql.Identifier(rel)).as_string(conn)
            for row in _rows(conn, "diagnosis_names", {"what": "relation", "schema": schema, "name": ident}):
                prev = found.relations.get(int(row["oid"]))
                if prev is None or (written and not prev[2]):
                    found.relations[int(row["oid"])] = (STATEMENT, "the statement", written)
    return found


# --------------------------------------------------------------------------------------- following the catalog


def _close_over(conn: psycopg.Connection[Any], found: _Found, reach: Reach) -> None:
    """Follow relations, operators and types to every function they run, then judge each function."""
    done_rel: set[tuple[int, bool]] = set()
    done_ops: set[int] = set()
    done_types: set[int] = set()
    judged: set[int] = set()
    while True:
        rels = {o: v for o, v in found.relations.items() if (o, v[2]) not in done_rel}
        ops = {o: v for o, v in found.operators.items() if o not in done_ops}
        types = {o: v for o, v in found.types.items() if o not in done_types}
        funcs = {o: v for o, v in found.functions.items() if o not in judged}
        if not (rels or ops or types or funcs):
            return
        done_rel.update((o, v[2]) for o, v in rels.items())
        done_ops.update(ops)
        done_types.update(types)
        judged.update(funcs)
        _judge(conn, funcs, reach)
        for row in _rows(conn, "diagnosis_operators", {"oids": list(ops)}):
            stage, via = ops[row["oid"]]
            for fn in row["functions"]:
                if fn:
                    found.functions.setdefault(int(fn), (stage, f"operator {row['signature']} ({via})"))
        for row in _rows(conn, "diagnosis_types", {"oids": list(types)}):
            stage, via = types[row["oid"]]
            here = f"type {row['name']} ({via})"
            for fn in row["functions"]:
                if fn:  # a range's optional functions are NULL when it has none
                    found.functions.setdefault(int(fn), (stage, here))
            if row["base_type"] and row["base_type"] >= _FIRST_NORMAL_OID:
                found.types.setdefault(row["base_type"], (stage, here))
            for tree in [*row["checks"], row["default_tree"]]:
                _read_tree(tree, stage, here, found)
        if rels:
            _relations(conn, rels, found)


def _relations(conn: psycopg.Connection[Any], rels: dict[int, tuple[str, str, bool]], found: _Found) -> None:
    for row in _rows(conn, "diagnosis_relations", {"oids": list(rels)}):
        stage, via, written = rels[row["oid"]]
        name = row["name"]
        if row["kind"] == "f":
            where = "" if via == "the statement" else f" (reached through {via})"
            raise UnsafeStatement(
                f"refused, not planned, not run: foreign table {name}{where} is another server's table: reading "
                "it contacts that server, even while planning; diagnose the query on that server"
            )
        for tree in row["select_rules"]:
            _read_tree(tree, stage, f"view {name}", found)
            if written:  # writing through a view writes the tables under it
                for oid, _kind, _lock in _RELATIONS.findall(tree or ""):
                    found.relations[int(oid)] = (stage, f"view {name}", True)
        for tree in row["policies"]:
            _read_tree(tree, stage, f"a row-level security policy of {name}", found)
        if written:
            _writes(conn, row["oid"], name, stage, found)


def _writes(conn: psycopg.Connection[Any], rel: int, name: str, stage: str, found: _Found) -> None:
    """What writing to ``rel`` runs: each thing in the stage the server runs it (see diagnosis_writes.sql)."""
    for row in _rows(conn, "diagnosis_writes", {"rel": rel}):
        where = WRITE_PLAN if row["stage"] == "plan" and stage == STATEMENT else WRITE_EXEC
        via = f"{row['what']} on {name}"
        if row["stage"] == "identity":
            if found.inserts:
                found.functions.setdefault(-1, (WRITE_EXEC, f"{via}: inserting advances its sequence"))
            continue
        _read_tree(row["tree"], where, via, found)
        if row["function"]:
            found.functions.setdefault(int(row["function"]), (where, via))
        if row["relation"] and (int(row["relation"]), True) not in {(o, v[2]) for o, v in found.relations.items()}:
            found.relations[int(row["relation"])] = (WRITE_EXEC, via, True)
        if row["type"]:
            found.types.setdefault(int(row["type"]), (where, via))


def _judge(conn: psycopg.Connection[Any], funcs: dict[int, tuple[str, str]], reach: Reach) -> None:
    """Refuse, or mark not executable, by each function's properties and the stage it is reached in."""
    if -1 in funcs:  # an identity column's sequence (no function call: PostgreSQL's NextValueExpr)
        reach.not_executable.append(funcs.pop(-1)[1])
    for row in _rows(conn, "diagnosis_functions", {"oids": list(funcs)}):
        stage, via = funcs[row["oid"]]
        sig = row["signature"]
        reach.functions.append(sig)
        problem = _problem(row, stage)
        if problem is None:
            continue
        where = "" if via == "the statement" else f" (reached through {via})"
        if stage == STATEMENT or (stage == WRITE_PLAN and not row["built_in"]):
            raise UnsafeStatement(f"refused, not planned, not run: {sig}{where} {problem}")
        reach.not_executable.append(f"{sig}{where} {problem}")


def _problem(fn: dict[str, Any], stage: str) -> str | None:
    """Why running (or planning) this function could act outside the diagnosis, or None."""
    if not fn["built_in"]:
        bits = [fn["language"], {"i": "IMMUTABLE", "s": "STABLE", "v": "VOLATILE"}[fn["volatility"]]]
        if fn["security_definer"]:
            bits.append("SECURITY DEFINER")
        return (
            f"is user-defined code ({', '.join(bits)}, schema {fn['schema']}), which the diagnosis never runs or "
            "plans (the planner runs IMMUTABLE and STABLE functions)"
        )
    if fn["name"] in STABLE_DENIED:
        return f"{STABLE_DENIED[fn['name']]}"
    if fn["volatility"] != "v" or fn["name"] in VOLATILE_ALLOWED:
        return None
    if stage == WRITE_EXEC and fn["name"].startswith(TRIGGER_ALLOWED_PREFIX):
        return None
    return "is a volatile built-in that can act outside the transaction (sessions, slots, files, settings, sequences)"


# --------------------------------------------------------------------------------------- small helpers


def _rows(conn: psycopg.Connection[Any], name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """A named query's rows as dicts, whatever the connection's row factory; an empty oid list asks nothing."""
    if "oids" in params and not params["oids"]:
        return []
    cur = conn.execute(query(name), params)
    cols = [c.name for c in cur.description or ()]
    return [_as_dict(r, cols) for r in cur.fetchall()]


def _as_dict(row: Any, cols: Any) -> dict[str, Any]:
    return row if isinstance(row, dict) else dict(zip(cols, row, strict=True))
