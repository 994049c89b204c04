"""The index advisor: workload and foreign keys in, proven index proposals out. Changes nothing.

1. The workload: the heaviest statements in pg_stat_statements (found through its extension
   schema), each read with PostgreSQL's parser (ops.playbook.sqlshape) for its equality, range
   and sort columns, and UPDATEs for the columns they set.
2. Guard: every statement goes through ``ops.safety.check_statement`` first (the diagnosis rule:
   planning can run functions, so a statement reaching user code or a function with effects is
   skipped, with the reason, and never planned).
   Plans: each statement is planned with ``plan_cache_mode = force_generic_plan``, the plan the
   server uses for a parameter it does not know, so no value has to be guessed (pg_stat_statements
   replaces constants with $n) and nothing is executed: the statement is PREPAREd and EXPLAINed
   (never ANALYZE) inside a READ ONLY transaction that is rolled back, with statement_timeout and
   lock_timeout. All planning goes through ``plan_cost`` (one function to guard).
3. Candidates per statement and table: equality columns, then the ORDER BY (or one range column);
   a partial variant for a constant predicate that survives normalization (``col IS [NOT] NULL``);
   a covering variant (INCLUDE the selected columns) for an index-only scan.
4. Proof: a greedy search with hypopg (hypothetical indexes in this session's memory only):
   every candidate is created hypothetically, every statement on its table re-planned, and the
   one with the largest call-weighted cost reduction is kept, as long as it cuts some statement's
   cost by ``min_gain`` (Dexter's rule: at least half) and the plan uses it. One index serving
   several statements wins over one per statement. Candidates an existing or kept index already
   serves are never proposed (ops.redundancy's rules).
5. Foreign keys no index leads with (sql/queries/unindexed_foreign_keys.sql): the RI trigger's
   own lookup is planned before and with the index; that is an estimate (planner cost), since
   measuring a parent DELETE means executing it.
6. Each proposal carries its evidence: cost before/after per statement with calls, size
   (hypopg_relation_size), write cost (indexes the table already maintains, UPDATEs that would
   stop being HOT).
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pglast
import psycopg
from pglast import ast
from psycopg import sql

from ops.advise.files import ident
from ops.db import connect, first_line
from ops.errors import UNKNOWN, OpsError, UsageError
from ops.playbook.sqlshape import ColumnUse, Shape, analyse
from ops.redundancy import IndexShape, covers, redundant_to_existing, shapes
from ops.safety import UnsafeStatement, check_statement, diagnosis_transaction
from ops.sqlfiles import query

MAX_NAME = 63
MAX_INCLUDE = 4  # a covering index with more columns than this is a second copy of the table


@dataclass
class Options:
    top: int = 50
    min_gain: float = 0.5  # a statement's plan cost must fall by at least this share
    search_path: str = "public"  # how the app's unqualified table names resolve
    timeout: float = 30.0  # statement_timeout for each plan, seconds
    lock_timeout: float = 2.0
    statements: list[dict[str, Any]] | None = None  # a given workload instead of pg_stat_statements
    schemas: list[str] | None = None  # the app's schemas (foreign keys, existing indexes); None: every user schema
    measure_deletes: bool = False  # EXPLAIN ANALYZE a parent DELETE (rolled back) through the diagnosis guard


@dataclass
class Table:
    schema: str
    name: str
    qualified: str
    reltuples: int
    columns: list[str]
    index_count: int
    updates: int
    hot_updates: int


@dataclass
class Statement:
    n: int
    text: str
    calls: int
    total_ms: float
    shape: Shape
    tables: dict[str, Table]  # alias -> table
    kind: str  # SELECT, UPDATE, DELETE, INSERT
    updated: dict[str, list[str]] = field(default_factory=dict)  # qualified table -> columns SET
    selected: dict[str, list[str]] = field(default_factory=dict)  # qualified table -> columns read
    nulltests: dict[str, list[str]] = field(default_factory=dict)  # qualified table -> "col IS [NOT] NULL"
    columns: dict[str, set[str]] = field(default_factory=dict)  # qualified table -> columns filtered or sorted on
    params: int = 0
    cost: float = 0.0  # with the proposals kept so far


@dataclass
class Candidate:
    table: Table
    keys: list[str]  # "col" or "col DESC"
    include: list[str] = field(default_factory=list)
    predicate: str | None = None

    @property
    def ident(self) -> tuple[str, tuple[str, ...], tuple[str, ...], str | None]:
        return (self.table.qualified, tuple(self.keys), tuple(self.include), self.predicate)

    def name(self, taken: set[str]) -> str:
        parts = [k.replace(" DESC", "_desc") for k in self.keys]
        if self.include:
            parts += ["incl", *self.include]
        if self.predicate:
            parts += ["where", *re.findall(r"[a-z0-9]+", self.predicate.lower())]
        base = re.sub(r"[^a-z0-9_]", "_", f"idx_{self.table.name}_{'_'.join(parts)}".lower())[:MAX_NAME]
        name, n = base, 2
        while name in taken:
            suffix = f"_{n}"
            name, n = base[: MAX_NAME - len(suffix)] + suffix, n + 1
        return name

    def definition(self, name: str, concurrently: bool = True) -> str:
        keys = ", ".join(_key_sql(k) for k in self.keys)
        text = f"CREATE INDEX {'CONCURRENTLY ' if concurrently else ''}{ident(name)} ON {self.table.qualified} ({keys})"
        if self.include:
            text += f" INCLUDE ({', '.join(ident(c) for c in self.include)})"
        if self.predicate:
            text += f" WHERE {self.predicate}"
        return text + ";"

    def shape(self, name: str = "proposed") -> IndexShape:
        # spelled as pg_get_indexdef spells an existing index's columns (quoted where needed)
        cols = tuple(ident(k.removesuffix(" DESC")) for k in self.keys) + tuple(ident(c) for c in self.include)
        options = tuple(3 if k.endswith(" DESC") else 0 for k in self.keys)  # DESC implies NULLS FIRST
        return IndexShape(
            schema=self.table.schema,
            table=self.table.name,
            index=name,
            method="btree",
            nkeys=len(self.keys),
            columns=cols,
            options=options,
            predicate=self.predicate,
        )


def _key_sql(key: str) -> str:
    col, desc = key.removesuffix(" DESC"), key.endswith(" DESC")
    return ident(col) + (" DESC" if desc else "")


@dataclass
class Proposal:
    kind: str  # "workload" or "foreign-key"
    name: str
    candidate: Candidate
    statements: list[dict[str, Any]] = field(default_factory=list)
    size_bytes: int = 0
    weighted_gain: float = 0.0
    write_cost: dict[str, Any] = field(default_factory=dict)
    foreign_key: dict[str, Any] | None = None

    @property
    def create_sql(self) -> str:
        return self.candidate.definition(self.name)

    def as_json(self) -> dict[str, Any]:
        c = self.candidate
        return {
            "kind": self.kind,
            "name": self.name,
            "table": c.table.qualified,
            "keys": c.keys,
            "include": c.include,
            "predicate": c.predicate,
            "create": self.create_sql,
            "size_bytes": self.size_bytes,
            "weighted_gain": round(self.weighted_gain, 2),
            "statements": self.statements,
            "write_cost": self.write_cost,
            "foreign_key": self.foreign_key,
        }


# --------------------------------------------------------------------------------------- session


class Session:
    """One READ ONLY transaction, rolled back at the end, with hypopg reached by its schema."""

    def __init__(self, conn: psycopg.Connection[Any], hypopg_schema: str, opts: Options):
        self.conn = conn
        self.hypopg = hypopg_schema
        self.opts = opts
        self._n = 0

    def hypo_create(self, definition: str) -> tuple[int, str]:
        fn = sql.Identifier(self.hypopg, "hypopg_create_index")
        row = self.conn.execute(
            sql.SQL("SELECT indexrelid, indexname FROM {}(%s)").format(fn), (definition,)
        ).fetchone()
        assert row is not None
        return int(row["indexrelid"]), str(row["indexname"])

    def hypo_drop(self, oid: int) -> None:
        self.conn.execute(sql.SQL("SELECT {}(%s)").format(sql.Identifier(self.hypopg, "hypopg_drop_index")), (oid,))

    def hypo_size(self, oid: int) -> int:
        fn = sql.Identifier(self.hypopg, "hypopg_relation_size")
        row = self.conn.execute(sql.SQL("SELECT {}(%s) AS bytes").format(fn), (oid,)).fetchone()
        return int(row["bytes"]) if row else 0

    def plan_cost(self, text: str, params: int) -> tuple[float, str]:
        """The generic plan's total cost and its JSON text. PREPARE + EXPLAIN (no ANALYZE): nothing runs.

        Prepared afresh each time so that a hypothetical index made since is seen.
        """
        self._n += 1
        name = sql.Identifier(f"ops_advise_{self._n}")
        self.conn.execute(sql.SQL("SAVEPOINT ops_advise_plan"))
        try:
            self.conn.execute(sql.SQL("PREPARE {} AS ").format(name) + sql.SQL(text))  # type: ignore[operator]
            args = sql.SQL("({})").format(sql.SQL(", ").join([sql.NULL] * params)) if params else sql.SQL("")
            row = self.conn.execute(sql.SQL("EXPLAIN (FORMAT JSON) EXECUTE {}{}").format(name, args)).fetchone()
            self.conn.execute(sql.SQL("DEALLOCATE {}").format(name))
        except psycopg.Error:
            self.conn.execute(sql.SQL("ROLLBACK TO SAVEPOINT ops_advise_plan"))
            with contextlib.suppress(psycopg.Error):
                self.conn.execute(sql.SQL("DEALLOCATE {}").format(name))
            raise
        assert row is not None
        value = next(iter(row.values()))
        plan = json.loads(value) if isinstance(value, str) else value
        return float(plan[0]["Plan"]["Total Cost"]), json.dumps(plan)


@contextlib.contextmanager
def advisor_session(conn: psycopg.Connection[Any], opts: Options) -> Iterator[Session]:
    """The advisor's transaction: read-only, bounded, generic plans, always rolled back."""
    hypopg = extension_schema(conn, "hypopg")
    if hypopg is None:
        raise OpsError(
            "hypopg is not installed in this database: the advisor proves every proposal with hypothetical "
            "indexes (Debian package postgresql-15-hypopg, then CREATE EXTENSION hypopg;)",
            UNKNOWN,
        )
    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    try:
        for name, value in (
            ("statement_timeout", f"{int(opts.timeout * 1000)}ms"),
            ("lock_timeout", f"{int(opts.lock_timeout * 1000)}ms"),
            ("plan_cache_mode", "force_generic_plan"),
            ("search_path", opts.search_path),
        ):
            conn.execute("SELECT pg_catalog.set_config(%s, %s, true)", (name, value))
        yield Session(conn, hypopg, opts)
    finally:
        conn.execute("ROLLBACK")


def extension_schema(conn: psycopg.Connection[Any], name: str) -> str | None:
    row = conn.execute(query("extension_schema"), {"name": name}).fetchone()
    return str(row["schema"]) if row else None


# --------------------------------------------------------------------------------------- workload


def read_workload(conn: psycopg.Connection[Any], top: int) -> list[dict[str, Any]]:
    """The top statements by total time, read with search_path pinned to pg_stat_statements' own schema."""
    schema = extension_schema(conn, "pg_stat_statements")
    if schema is None:
        raise OpsError(
            "pg_stat_statements is not installed in this database: no workload to read "
            "(shared_preload_libraries = 'pg_stat_statements', restart, CREATE EXTENSION pg_stat_statements;)",
            UNKNOWN,
        )
    with conn.transaction():
        conn.execute("SELECT pg_catalog.set_config('search_path', %s, true)", (f"{ident(schema)}, pg_catalog",))
        try:
            return [dict(r) for r in conn.execute(query("advise_workload"), {"limit": top}).fetchall()]
        except psycopg.errors.ObjectNotInPrerequisiteState as exc:
            raise OpsError(f"pg_stat_statements is not loaded: {first_line(exc)}", UNKNOWN) from None


def _table(conn: psycopg.Connection[Any], schema: str | None, relname: str, cache: dict[str, Table]) -> Table | None:
    key = ident(schema, relname) if schema else ident(relname)
    if key not in cache:
        row = conn.execute(query("advise_table"), {"table": key}).fetchone()
        cache[key] = (
            Table(
                schema=row["schema"],
                name=row["table"],
                qualified=ident(row["schema"], row["table"]),
                reltuples=max(int(row["reltuples"]), 0),
                columns=list(row["columns"]),
                index_count=row["index_count"],
                updates=int(row["updates"]),
                hot_updates=int(row["hot_updates"]),
            )
            if row
            else None  # type: ignore[assignment]
        )
    return cache[key]


def _names(node: Any) -> list[str]:
    return [f.sval for f in node.fields if isinstance(f, ast.String) and f.sval] if node.fields else []


def _owner(col: ColumnUse, tables: dict[str, Table]) -> Table | None:
    if col.table is not None:
        return tables.get(col.table)
    owners = {t.qualified: t for t in tables.values() if col.column in t.columns}
    return next(iter(owners.values())) if len(owners) == 1 else None


def _extras(stmt: Any, st: Statement) -> None:
    """UPDATE's SET columns, the columns a SELECT reads (for covering), and IS [NOT] NULL predicates."""
    if isinstance(stmt, ast.UpdateStmt):
        table = next(iter(st.tables.values()), None)
        if table is not None:
            st.updated[table.qualified] = [
                t.name for t in stmt.targetList or () if isinstance(t, ast.ResTarget) and t.name
            ]
    if isinstance(stmt, ast.SelectStmt):
        for target in stmt.targetList or ():
            val = getattr(target, "val", None)
            if isinstance(val, ast.ColumnRef):
                names = _names(val)
                if len(names) != len(val.fields or ()):  # t.* or *: too wide to cover
                    st.selected.clear()
                    st.selected["*"] = []
                    break
                col = ColumnUse(table=names[-2] if len(names) >= 2 else None, column=names[-1])
                owner = _owner(col, st.tables)
                if owner:
                    st.selected.setdefault(owner.qualified, []).append(col.column)
            else:
                st.selected["*"] = []  # an expression: leave covering alone
    where = getattr(stmt, "whereClause", None)
    stack = [where]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.BoolExpr) and node.boolop is not None and node.boolop.name == "AND_EXPR":
            stack.extend(node.args or ())
        elif isinstance(node, ast.NullTest) and isinstance(node.arg, ast.ColumnRef):
            names = _names(node.arg)
            col = ColumnUse(table=names[-2] if len(names) >= 2 else None, column=names[-1])
            owner = _owner(col, st.tables)
            if owner:
                test = (
                    "IS NULL"
                    if node.nulltesttype is not None and node.nulltesttype.name == "IS_NULL"
                    else "IS NOT NULL"
                )
                st.nulltests.setdefault(owner.qualified, []).append(f"{ident(col.column)} {test}")


def load_statement(conn: psycopg.Connection[Any], n: int, row: dict[str, Any], cache: dict[str, Table]) -> Statement:
    """Parse one workload statement and resolve its tables; UsageError when the advisor cannot take it."""
    text = row["query"].strip().rstrip(";")
    shape = analyse(text)  # one statement, explainable, or UsageError
    stmt = pglast.parse_sql(text)[0].stmt
    kind = type(stmt).__name__.removesuffix("Stmt").upper()
    if isinstance(stmt, ast.InsertStmt) and stmt.relation is not None and stmt.relation.relname:
        shape.tables[stmt.relation.relname] = (stmt.relation.schemaname, stmt.relation.relname)
    tables: dict[str, Table] = {}
    for alias, (schema, relname) in shape.tables.items():
        table = _table(conn, schema, relname, cache)
        if table is None:
            raise UsageError(
                f"table {relname} is not a table here (search_path {conn.info.parameter_status('search_path')})"
            )
        if table.schema in ("pg_catalog", "information_schema"):
            raise UsageError("a catalog query")
        tables[alias] = table
    if not tables:
        raise UsageError("reads no table")
    params = max((int(p) for p in re.findall(r"\$(\d+)", text)), default=0)
    st = Statement(n, text, int(row["calls"]), float(row["total_ms"]), shape, tables, kind, params=params)
    _extras(stmt, st)
    for use in [*shape.equality, *shape.ranges, *(c for c, _ in shape.order_by)]:
        owner = _owner(use, tables)
        if owner is not None:
            st.columns.setdefault(owner.qualified, set()).add(use.column)
    return st


# --------------------------------------------------------------------------------------- candidates


def candidates_for(st: Statement) -> list[Candidate]:
    """Index shapes that could serve this statement, per table it reads."""
    out: list[Candidate] = []
    if st.kind == "INSERT":
        return out
    seen: set[str] = set()
    for table in st.tables.values():
        if table.qualified in seen:
            continue
        seen.add(table.qualified)
        mine = [t for t in st.tables.values() if t.qualified == table.qualified]

        def cols(uses: list[ColumnUse], _t: Table = table) -> list[str]:
            found: list[str] = []
            for u in uses:
                owner = _owner(u, st.tables)
                if owner is not None and owner.qualified == _t.qualified and u.column not in found:
                    found.append(u.column)
            return found

        nulls = st.nulltests.get(table.qualified, [])
        null_cols = {p.split(" ")[0].strip('"') for p in nulls}
        eq = [c for c in cols(st.shape.equality) if c not in null_cols]
        order = st.shape.order_by
        order_cols = cols([c for c, _ in order])
        tail: list[str] = []
        if order and len(order_cols) == len(order) and len(mine) == len(st.tables):
            tail = [f"{c.column} DESC" if desc else c.column for c, desc in order if c.column not in eq]
        else:
            tail = [c for c in cols(st.shape.ranges) if c not in eq][:1]
        keys = eq + tail
        if not keys:
            continue
        out.append(Candidate(table, keys))
        if eq and tail:
            out.append(Candidate(table, eq))
        selected = st.selected.get(table.qualified, [])
        used = {k.removesuffix(" DESC") for k in keys}
        extra = [c for c in selected if c not in used]
        covering = "*" not in st.selected and 0 < len(extra) <= MAX_INCLUDE and len(mine) == 1
        if covering:
            out.append(Candidate(table, keys, include=list(dict.fromkeys(extra))))
        for pred in nulls:
            out.append(Candidate(table, keys, predicate=pred))
            if covering:
                out.append(Candidate(table, keys, include=list(dict.fromkeys(extra)), predicate=pred))
    return out


# --------------------------------------------------------------------------------------- the search


@dataclass
class Trial:
    candidate: Candidate
    costs: dict[int, float]  # statement n -> cost with it
    used_by: set[int]
    size: int
    benefit: float


def _try(session: Session, cand: Candidate, stmts: list[Statement]) -> Trial:
    oid, hypo_name = session.hypo_create(cand.definition("advise_candidate", concurrently=False))
    try:
        costs: dict[int, float] = {}
        used: set[int] = set()
        for st in stmts:
            cost, plan = session.plan_cost(st.text, st.params)
            costs[st.n] = cost
            if hypo_name in plan:
                used.add(st.n)
        size = session.hypo_size(oid)
    finally:
        session.hypo_drop(oid)
    benefit = sum(st.calls * max(0.0, st.cost - costs[st.n]) for st in stmts if st.n in used)
    return Trial(cand, costs, used, size, benefit)


def _good(trial: Trial, stmts: list[Statement], min_gain: float) -> bool:
    return any(st.n in trial.used_by and st.cost > 0 and trial.costs[st.n] <= st.cost * (1 - min_gain) for st in stmts)


def _relevant(cand: Candidate, st: Statement) -> bool:
    """Whether an index on ``cand`` could change ``st``'s plan: it filters or sorts on its leading column."""
    lead = cand.keys[0].removesuffix(" DESC")
    return lead in st.columns.get(cand.table.qualified, set())


def _pick(good: list[Trial]) -> Trial:
    """The largest call-weighted gain; a covering variant must beat its plain keys by 20% to pay for its width."""
    plain = {
        (t.candidate.table.qualified, tuple(t.candidate.keys), t.candidate.predicate): t
        for t in good
        if not t.candidate.include
    }
    kept = []
    for t in good:
        base = plain.get((t.candidate.table.qualified, tuple(t.candidate.keys), t.candidate.predicate))
        if t.candidate.include and base is not None and t.benefit < 1.2 * base.benefit:
            continue
        kept.append(t)
    return max(kept, key=lambda t: (t.benefit, -t.size))


def search(session: Session, statements: list[Statement], existing: list[IndexShape], opts: Options) -> list[Proposal]:
    """Greedy: keep the candidate with the largest call-weighted cost cut while one cuts some statement enough."""
    pool: dict[tuple[Any, ...], Candidate] = {}
    for st in statements:
        for cand in candidates_for(st):
            pool.setdefault(cand.ident, cand)
    served = {k for k, c in pool.items() if redundant_to_existing(c.shape(), existing) is not None}
    # a covering variant of keys an existing index already serves only saves heap visits: not worth a second index
    pool = {
        k: c
        for k, c in pool.items()
        if k not in served
        and not (c.include and (k[0], k[1], (), k[3]) in served)
        and not (c.include and redundant_to_existing(Candidate(c.table, c.keys, [], c.predicate).shape(), existing))
    }
    kept: list[Proposal] = []
    taken = {s.index for s in existing}
    kept_oids: list[int] = []
    trials: dict[tuple[Any, ...], Trial] = {}
    relevant = {k: [s for s in statements if _relevant(c, s)] for k, c in pool.items()}
    try:
        while pool:
            for key, cand in pool.items():
                if key not in trials and relevant[key]:
                    trials[key] = _try(session, cand, relevant[key])
            good = [t for k, t in trials.items() if k in pool and _good(t, relevant[k], opts.min_gain)]
            if not good:
                break
            best = _pick(good)
            cand = best.candidate
            name = cand.name(taken)
            taken.add(name)
            proposal = Proposal(kind="workload", name=name, candidate=cand, size_bytes=best.size)
            proposal.weighted_gain = best.benefit
            changed: set[int] = set()
            for st in relevant[cand.ident]:
                if st.n in best.used_by and best.costs[st.n] < st.cost:
                    proposal.statements.append(
                        {
                            "statement": st.n,
                            "query": " ".join(st.text.split()),
                            "calls": st.calls,
                            "cost_before": round(st.cost, 2),
                            "cost_after": round(best.costs[st.n], 2),
                            "gain": round(1 - best.costs[st.n] / st.cost, 3) if st.cost else 0.0,
                        }
                    )
                    st.cost = best.costs[st.n]
                    changed.add(st.n)
            kept.append(proposal)
            oid, _ = session.hypo_create(cand.definition(name, concurrently=False))
            kept_oids.append(oid)
            del pool[cand.ident]
            mine = cand.shape(name)
            pool = {k: c for k, c in pool.items() if covers(mine, c.shape()) is None}
            # a trial measured against costs that have changed since is measured again
            trials = {k: t for k, t in trials.items() if k in pool and not changed & {s.n for s in relevant[k]}}
    finally:
        for oid in kept_oids:
            session.hypo_drop(oid)
    return _without_redundant(kept)


def _without_redundant(kept: list[Proposal]) -> list[Proposal]:
    """A later, wider proposal may serve an earlier one's statements too: keep only what stays needed."""
    out = []
    for p in kept:
        others = [q.candidate.shape(q.name) for q in kept if q is not p]
        finding = redundant_to_existing(p.candidate.shape(p.name), others)
        if finding is None:
            out.append(p)
        else:
            winner = next(q for q in kept if q.name == finding.keep.index)
            winner.statements.extend(
                s for s in p.statements if s["statement"] not in {x["statement"] for x in winner.statements}
            )
    return out


# --------------------------------------------------------------------------------------- foreign keys


def foreign_key_proposals(
    session: Session, statements: list[Statement], cache: dict[str, Table], kept: list[Proposal], taken: set[str]
) -> list[Proposal]:
    """One proposal per foreign key no index leads with, evidenced by the RI lookup a parent delete runs."""
    out = []
    conn = session.conn
    for fk in conn.execute(query("unindexed_foreign_keys"), {"schemas": session.opts.schemas}).fetchall():
        table = _table(conn, fk["schema"], fk["table"], cache)
        if table is None:
            continue
        cand = Candidate(table, list(fk["columns"]))
        cond = " AND ".join(f"x.{ident(c)} = ${i}" for i, c in enumerate(fk["columns"], start=1))
        lookup = f"SELECT 1 FROM ONLY {table.qualified} x WHERE {cond}"  # what the RI trigger runs per parent row
        before, _ = session.plan_cost(lookup, len(fk["columns"]))
        parent_writes = [
            s
            for s in statements
            if s.kind in ("DELETE", "UPDATE") and any(t.qualified == fk["qualified_parent"] for t in s.tables.values())
        ]
        evidence = {
            "constraint": fk["constraint_name"],
            "columns": list(fk["columns"]),
            "child": [fk["schema"], fk["table"]],
            "parent": fk["qualified_parent"],
            "parent_qualified": [fk["parent_schema"], fk["parent_table"]],
            "parent_columns": list(fk["parent_columns"]),
            "on_delete": fk["on_delete"],
            "child_rows": max(int(fk["child_rows"]), 0),
            "parent_writes_in_workload": [
                {"statement": s.n, "calls": s.calls, "query": " ".join(s.text.split())} for s in parent_writes
            ],
            "lookup": lookup,
            "measured": False,
            "how": "estimated: planner cost of the RI trigger's lookup per parent row deleted or re-keyed "
            "(measuring a parent DELETE would execute it)",
        }
        already = next((p for p in kept if covers(p.candidate.shape(p.name), cand.shape()) is not None), None)
        oid, hypo_name = session.hypo_create(cand.definition("advise_fk", concurrently=False))
        try:
            after, plan = session.plan_cost(lookup, len(fk["columns"]))
            size = session.hypo_size(oid)
        finally:
            session.hypo_drop(oid)
        evidence.update(cost_before=round(before, 2), cost_after=round(after, 2), index_used=hypo_name in plan)
        if already is not None:  # a workload proposal leads with the key: it carries this evidence too
            already.foreign_key = evidence
            already.kind = "workload+foreign-key"
            continue
        name = cand.name(taken)
        taken.add(name)
        proposal = Proposal(kind="foreign-key", name=name, candidate=cand, size_bytes=size, foreign_key=evidence)
        proposal.weighted_gain = max(0.0, before - after) * max(1, sum(s.calls for s in parent_writes))
        out.append(proposal)
    return out


def measure_parent_delete(conn: psycopg.Connection[Any], fk: dict[str, Any], opts: Options) -> dict[str, Any]:
    """Time one parent DELETE and its foreign key's trigger: EXPLAIN ANALYZE, rolled back, through the guard.

    A DELETE is a write: it runs only when ops.safety allows it (check_statement: nothing it reaches acts
    outside the transaction; diagnosis_transaction: as s10_diagnosis, with timeouts, rolled back).
    Otherwise the figure stays an estimate and ``how`` says why.
    """
    if len(fk["columns"]) != 1:
        return {"how": fk["how"] + "; not measured: a multi-column key"}
    schema, table = fk["child"]
    values = [
        r["value"]
        for r in conn.execute(
            query("advise_fk_sample"), {"schema": schema, "table": table, "column": fk["columns"][0], "limit": 3}
        ).fetchall()
    ]
    if not values:
        return {"how": fk["how"] + "; not measured: no most-common value in pg_stats (run ANALYZE)"}
    parent_key = fk["parent_columns"][0]
    text = f"DELETE FROM {fk['parent']} WHERE {ident(parent_key)} = $1"
    try:
        reach = check_statement(conn, text, lock_timeout=opts.lock_timeout)
    except (UnsafeStatement, psycopg.Error) as exc:
        return {"how": fk["how"] + f"; not measured: {first_line(exc)}"}
    if not reach.executable:
        return {"how": fk["how"] + f"; not measured: {'; '.join(reach.not_executable)}"}
    failures = []
    for value in values:
        try:
            with diagnosis_transaction(conn, opts.timeout, opts.lock_timeout, read_only=False) as session:
                if session.fallback:
                    return {"how": fk["how"] + f"; not measured: {session.fallback}"}
                stmt = sql.SQL("EXPLAIN (ANALYZE, FORMAT JSON) DELETE FROM {} WHERE {} = %s").format(
                    sql.Identifier(*fk["parent_qualified"]), sql.Identifier(parent_key)
                )
                row = conn.execute(stmt, (value,)).fetchone()
        except psycopg.Error as exc:
            failures.append(first_line(exc))
            continue
        assert row is not None
        value_json = next(iter(row.values()))
        plan = (json.loads(value_json) if isinstance(value_json, str) else value_json)[0]
        trigger = sum(t["Time"] for t in plan.get("Triggers", []) if t.get("Constraint Name") == fk["constraint"])
        return {
            "measured": True,
            "delete_ms": round(float(plan["Execution Time"]), 3),
            "fk_trigger_ms": round(float(trigger), 3),
            "how": "measured: EXPLAIN ANALYZE of one parent DELETE (a parent with the most child rows, from "
            "pg_stats), as s10_diagnosis, rolled back; the after side stays the planner's estimate",
        }
    return {"how": fk["how"] + f"; not measured: the DELETE failed: {failures[-1]}"}


# --------------------------------------------------------------------------------------- write cost


def write_cost(p: Proposal, statements: list[Statement], existing: list[IndexShape]) -> dict[str, Any]:
    """What every write pays: the indexes already there, and UPDATEs this index would take HOT away from."""
    t = p.candidate.table
    indexed_now = {
        c for s in existing if (s.schema, s.table) == (t.schema, t.name) for c in (x.strip('"') for x in s.columns)
    }
    mine = {k.removesuffix(" DESC") for k in p.candidate.keys} | set(p.candidate.include)
    if p.candidate.predicate:
        mine.add(p.candidate.predicate.split(" ")[0].strip('"'))
    newly = mine - indexed_now
    losing = []
    for st in statements:
        cols = set(st.updated.get(t.qualified, [])) & newly
        if cols:
            losing.append({"statement": st.n, "calls": st.calls, "columns": sorted(cols)})
    hot_share = round(t.hot_updates / t.updates, 3) if t.updates else None
    return {
        "existing_indexes": t.index_count,
        "updates": t.updates,
        "hot_update_share": hot_share,
        "updates_losing_hot": losing,
    }


# --------------------------------------------------------------------------------------- entry point


def advise(dsn: str | None, opts: Options) -> dict[str, Any]:
    """Read the workload and foreign keys, prove proposals with hypopg; returns the report (changes nothing)."""
    t0 = time.monotonic()
    with connect(dsn) as conn:
        rows = opts.statements if opts.statements is not None else read_workload(conn, opts.top)
        existing = shapes(conn, opts.schemas)
        skipped: list[dict[str, Any]] = []
        # the app's statements name its tables unqualified: resolve them as the app does
        conn.execute("SELECT pg_catalog.set_config('search_path', %s, false)", (opts.search_path,))
        cache: dict[str, Table] = {}
        loaded: list[Statement] = []
        for n, row in enumerate(rows, start=1):
            try:
                st = load_statement(conn, n, row, cache)
                check_statement(conn, st.text, lock_timeout=opts.lock_timeout)  # planning may run code: guard it
            except (UsageError, UnsafeStatement, psycopg.Error) as exc:
                skipped.append(
                    {"statement": n, "query": " ".join(str(row["query"]).split())[:200], "why": first_line(exc)}
                )
                continue
            loaded.append(st)
        with advisor_session(conn, opts) as session:
            statements: list[Statement] = []
            for st in loaded:
                try:
                    st.cost, _ = session.plan_cost(st.text, st.params)
                except psycopg.Error as exc:
                    skipped.append(
                        {"statement": st.n, "query": " ".join(st.text.split())[:200], "why": first_line(exc)}
                    )
                    continue
                statements.append(st)
            kept = search(session, statements, existing, opts)
            taken = {s.index for s in existing} | {p.name for p in kept}
            kept += foreign_key_proposals(session, statements, cache, kept, taken)
        for p in kept:
            p.write_cost = write_cost(p, statements, existing)
            if p.foreign_key is not None and opts.measure_deletes:
                p.foreign_key.update(measure_parent_delete(conn, p.foreign_key, opts))
    return {
        "proposals": [p.as_json() for p in kept],
        "_proposals": kept,
        "statements_read": len(rows),
        "statements_planned": len(statements),
        "skipped": skipped,
        "min_gain": opts.min_gain,
        "seconds": round(time.monotonic() - t0, 3),
    }
