"""Read the statement given to ``slow-query`` with PostgreSQL's own parser (pglast).

Two questions: may it change data (then it is never executed unless asked for explicitly), and
which columns does it filter and sort on per table (the raw material for an index suggestion).
Which functions it reaches, and whether running or even planning it is safe, is ops.safety's job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pglast
from pglast import ast
from pglast.enums import A_Expr_Kind, SortByDir
from pglast.visitors import Visitor

from ops.errors import UsageError

EXPLAINABLE = (ast.SelectStmt, ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt, ast.MergeStmt)
WRITES = (ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt, ast.MergeStmt)
RANGE_OPS = {"<", ">", "<=", ">="}


@dataclass(frozen=True)
class ColumnUse:
    table: str | None  # alias or table name as written; None when unqualified
    column: str


@dataclass
class Shape:
    """What the statement does, as far as an index is concerned."""

    kind: str  # "read" or "write"
    why_write: str  # what makes it data-modifying ("" for reads)
    params: int  # highest $n used
    tables: dict[str, tuple[str | None, str]] = field(default_factory=dict)  # alias -> (schema, relname)
    equality: list[ColumnUse] = field(default_factory=list)
    ranges: list[ColumnUse] = field(default_factory=list)
    order_by: list[tuple[ColumnUse, bool]] = field(default_factory=list)  # (column, descending)
    wrapped: list[tuple[ColumnUse, str]] = field(default_factory=list)  # column inside a function: (col, func)

    @property
    def writes(self) -> bool:
        return self.kind == "write"


class _Scan(Visitor):
    """Finds what makes a statement data-modifying anywhere in it (CTEs, subqueries), and the $n used."""

    def __init__(self) -> None:
        self.writes: list[str] = []
        self.max_param = 0

    def _write(self, what: str) -> None:
        if what not in self.writes:
            self.writes.append(what)

    def visit_InsertStmt(self, ancestors: object, node: ast.InsertStmt) -> None:
        self._write("INSERT")

    def visit_UpdateStmt(self, ancestors: object, node: ast.UpdateStmt) -> None:
        self._write("UPDATE")

    def visit_DeleteStmt(self, ancestors: object, node: ast.DeleteStmt) -> None:
        self._write("DELETE")

    def visit_MergeStmt(self, ancestors: object, node: ast.MergeStmt) -> None:
        self._write("MERGE")

    def visit_SelectStmt(self, ancestors: object, node: ast.SelectStmt) -> None:
        if node.intoClause is not None:
            self._write("SELECT INTO (creates a table)")
        if node.lockingClause:
            self._write("FOR UPDATE/SHARE (locks rows)")

    def visit_ParamRef(self, ancestors: object, node: ast.ParamRef) -> None:
        self.max_param = max(self.max_param, node.number or 0)


def parse_one(text: str) -> ast.Node:
    """The single statement in ``text``; anything else is refused with one clear line."""
    try:
        stmts = pglast.parse_sql(text)
    except pglast.parser.ParseError as exc:
        raise UsageError(f"cannot parse the SQL: {exc}") from None
    if len(stmts) != 1:
        raise UsageError(
            f"give exactly one statement (got {len(stmts)}): slow-query explains one statement at a time, "
            "and refuses more so that nothing after a ';' can run unexplained"
        )
    stmt = stmts[0].stmt
    if isinstance(stmt, ast.ExplainStmt):
        raise UsageError("give the statement without EXPLAIN: slow-query adds EXPLAIN itself, safely")
    if not isinstance(stmt, EXPLAINABLE):
        raise UsageError(
            f"slow-query explains SELECT, INSERT, UPDATE, DELETE and MERGE, not {type(stmt).__name__.removesuffix('Stmt')}"
        )
    return stmt


def analyse(text: str) -> Shape:
    """Classify the statement and collect its filter and sort columns."""
    stmt = parse_one(text)
    scan = _Scan()
    scan(stmt)
    shape = Shape(
        kind="write" if scan.writes else "read",
        why_write=", ".join(scan.writes),
        params=scan.max_param,
    )
    if isinstance(stmt, ast.SelectStmt) and (stmt.op is None or stmt.op.name == "SETOP_NONE"):
        _from(shape, stmt.fromClause or ())
        _where(shape, stmt.whereClause)
        _order(shape, stmt.sortClause or ())
    elif isinstance(stmt, ast.UpdateStmt | ast.DeleteStmt):
        _from(shape, (stmt.relation,))
        _where(shape, stmt.whereClause)
    return shape


def _from(shape: Shape, items: Any) -> None:
    for item in items:
        if isinstance(item, ast.RangeVar) and item.relname:
            alias = item.alias.aliasname if item.alias and item.alias.aliasname else item.relname
            shape.tables[alias] = (item.schemaname, item.relname)
        elif isinstance(item, ast.JoinExpr):
            _from(shape, (item.larg, item.rarg))
            _where(shape, item.quals)


def _column(node: Any) -> ColumnUse | None:
    if isinstance(node, ast.TypeCast):
        node = node.arg
    if not isinstance(node, ast.ColumnRef) or not node.fields:
        return None
    names = [f.sval for f in node.fields if isinstance(f, ast.String) and f.sval]
    if len(names) != len(node.fields) or not names:
        return None  # t.* or something stranger
    return ColumnUse(table=names[-2] if len(names) >= 2 else None, column=names[-1])


def _is_value(node: Any) -> bool:
    """A constant, a $n parameter, or a cast of one: what an index lookup can take."""
    if isinstance(node, ast.TypeCast):
        node = node.arg
    return isinstance(node, ast.A_Const | ast.ParamRef)


def _conjuncts(node: Any) -> list[Any]:
    if node is None:
        return []
    if isinstance(node, ast.BoolExpr) and node.boolop is not None and node.boolop.name == "AND_EXPR":
        return [c for arg in node.args or () for c in _conjuncts(arg)]
    return [node]


def _where(shape: Shape, where: Any) -> None:
    for cond in _conjuncts(where):
        if isinstance(cond, ast.NullTest):
            col = _column(cond.arg)
            if col:
                shape.equality.append(col)
            continue
        if not isinstance(cond, ast.A_Expr):
            continue
        op = cond.name[-1].sval if cond.name else ""
        left: Any = cond.lexpr
        right: Any = cond.rexpr
        col = _column(left)
        value_side = right
        if col is None and _column(right) is not None and cond.kind == A_Expr_Kind.AEXPR_OP:
            col, value_side = _column(right), left
        if col is None:
            func = left if isinstance(left, ast.FuncCall) else right if isinstance(right, ast.FuncCall) else None
            if func is not None:
                inner = [c for c in (_column(a) for a in func.args or ()) if c]
                name = func.funcname[-1].sval if func.funcname else "?"
                shape.wrapped.extend((c, name or "?") for c in inner)
            continue
        if cond.kind == A_Expr_Kind.AEXPR_IN or (cond.kind == A_Expr_Kind.AEXPR_OP and op == "="):
            if cond.kind == A_Expr_Kind.AEXPR_IN or _is_value(value_side):
                shape.equality.append(col)
        elif cond.kind == A_Expr_Kind.AEXPR_BETWEEN or (cond.kind == A_Expr_Kind.AEXPR_OP and op in RANGE_OPS):
            if cond.kind == A_Expr_Kind.AEXPR_BETWEEN or _is_value(value_side):
                shape.ranges.append(col)


def _order(shape: Shape, sort: Any) -> None:
    cols = []
    for item in sort:
        col = _column(item.node)
        if col is None:
            return  # an expression: no plain index gives that order
        cols.append((col, item.sortby_dir == SortByDir.SORTBY_DESC))
    shape.order_by = cols
