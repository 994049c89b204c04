"""Which index makes another one redundant: the one set of rules that usage, index-health and advise share.

An index A is redundant beside an index B on the same table when B serves every query A serves,
so dropping A loses nothing but write cost and space. The rules, each one a false alarm or a
miss that a plain "leading prefix" rule (PgHero's) gets wrong:

- B's keys start with A's keys: same columns or expressions, operator classes, collations, in
  the same order. A different collation or operator class (``text_pattern_ops``) serves other
  queries, so it is not interchangeable.
- Sort order: a btree is scanned in both directions, so B may store the prefix in A's order or
  in its exact reverse (every key's DESC and NULLS FIRST flipped): ``(a)`` and ``(a DESC)`` serve
  the same queries, and ``(a DESC)`` is redundant beside ``(a, b)``.
- INCLUDE: A's included columns must be keys or included columns of B, otherwise A gives
  index-only scans B cannot. Of ``(a)`` and ``(a) INCLUDE (b)`` the plain one is redundant,
  whatever their creation order.
- Uniqueness: a UNIQUE A (it enforces something) is redundant only beside a UNIQUE B on exactly
  the same keys (and the same NULLS [NOT] DISTINCT). An A that backs a constraint is never reported.
- Partial: A and B must have the same predicate; a partial index is not redundant beside a full
  one (it is smaller and the planner prefers it for its rows), and a full one is not redundant
  beside a partial one (which misses rows).
- Access method: the same, except that a hash index on a column beside a btree that leads with
  the same column (default operator classes, same collation) is redundant: the btree serves the
  same equality lookups, and ranges and sorts too.
- Exact duplicates: only one of them is reported, the weaker (not unique, not backing a
  constraint, then the newer).

Every finding names the index to keep and says why.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from ops.sqlfiles import query

DESC, NULLS_FIRST = 1, 2  # pg_index.indoption bits


@dataclass(frozen=True)
class IndexShape:
    """What the rules compare: one row of sql/queries/index_shapes.sql (or a proposed index)."""

    schema: str
    table: str
    index: str
    method: str
    nkeys: int
    columns: tuple[str, ...]  # keys, then INCLUDE columns
    opclasses: tuple[str, ...] = ()  # per key; empty for a proposal: the default classes
    opclass_default: tuple[bool, ...] = ()
    collations: tuple[str, ...] = ()
    collation_default: tuple[bool, ...] = ()
    options: tuple[int, ...] = ()
    predicate: str | None = None
    is_unique: bool = False
    nulls_not_distinct: bool = False
    constraint_name: str | None = None
    oid: int = 0  # 0 for a proposal (it is newer than every real index)
    bytes: int = 0
    definition: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def keys(self) -> tuple[str, ...]:
        return self.columns[: self.nkeys]

    @property
    def included(self) -> tuple[str, ...]:
        return self.columns[self.nkeys :]

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.index}"

    def key_opclass(self, k: int) -> str | None:
        """The key's operator class, None when it is the default one for its type and method."""
        if not self.opclasses or (self.opclass_default and self.opclass_default[k]):
            return None
        return self.opclasses[k]

    def key_collation(self, k: int) -> str | None:
        """The key's collation, None when it is the column's own."""
        if not self.collations or (self.collation_default and self.collation_default[k]):
            return None
        return self.collations[k] or None

    def key_option(self, k: int) -> int:
        return self.options[k] if self.options else 0

    def describe(self) -> str:
        """``(a, b DESC) INCLUDE (c) WHERE p`` for messages."""
        keys = []
        for k, col in enumerate(self.keys):
            opt = self.key_option(k)
            word = col + (" DESC" if opt & DESC else "")
            if bool(opt & NULLS_FIRST) != bool(opt & DESC):
                word += " NULLS FIRST" if opt & NULLS_FIRST else " NULLS LAST"
            keys.append(word)
        text = ("UNIQUE " if self.is_unique else "") + (f"{self.method} " if self.method != "btree" else "")
        text += f"({', '.join(keys)})"
        if self.included:
            text += f" INCLUDE ({', '.join(self.included)})"
        if self.predicate:
            text += f" WHERE {self.predicate}"
        return text


def shapes(conn: psycopg.Connection[Any], schemas: list[str] | None = None) -> list[IndexShape]:
    """Every valid index in ``schemas`` (None: every user schema), as the rules see it."""
    out = []
    for r in conn.execute(query("index_shapes"), {"schemas": schemas}).fetchall():
        out.append(
            IndexShape(
                schema=r["schema"],
                table=r["table"],
                index=r["index"],
                method=r["method"],
                nkeys=r["nkeys"],
                columns=tuple(r["columns"]),
                opclasses=tuple(r["opclasses"]),
                opclass_default=tuple(r["opclass_default"]),
                collations=tuple(r["collations"]),
                collation_default=tuple(r["collation_default"]),
                options=tuple(r["options"]),
                predicate=r["predicate"],
                is_unique=r["is_unique"],
                nulls_not_distinct=r["nulls_not_distinct"],
                constraint_name=r["constraint_name"],
                oid=r["oid"],
                bytes=r["bytes"],
                definition=r["definition"],
            )
        )
    return out


def _reversed(option: int) -> int:
    return option ^ (DESC | NULLS_FIRST)


def _same_key(a: IndexShape, ka: int, b: IndexShape, kb: int) -> bool:
    return (
        a.columns[ka] == b.columns[kb]
        and a.key_opclass(ka) == b.key_opclass(kb)
        and a.key_collation(ka) == b.key_collation(kb)
    )


def _order_served(a: IndexShape, b: IndexShape) -> str | None:
    """How B's leading keys give A's order: 'same', 'backward' (a btree scanned backwards), or None."""
    n = a.nkeys
    mine = [a.key_option(k) for k in range(n)]
    theirs = [b.key_option(k) for k in range(n)]
    if mine == theirs or a.method != "btree":
        return "same"
    if [_reversed(o) for o in mine] == theirs:
        return "backward"
    return None


def _rank(s: IndexShape) -> tuple[bool, bool, int]:
    """Of two exact duplicates the higher rank stays: unique, then backing a constraint, then the older."""
    return (s.is_unique, s.constraint_name is not None, -s.oid if s.oid else -(2**62))


def _hash_beside_btree(a: IndexShape, b: IndexShape) -> str | None:
    if not (a.method == "hash" and b.method == "btree" and a.predicate == b.predicate and not a.included):
        return None
    if a.columns[0] != b.columns[0] or a.key_collation(0) != b.key_collation(0):
        return None
    if a.key_opclass(0) is not None or b.key_opclass(0) is not None:
        return None
    return (
        f"hash index on {a.columns[0]} beside a btree leading with it: the btree serves the same equality "
        f"lookups (and ranges and sorts); keep {b.index} {b.describe()}"
    )


def covers(b: IndexShape, a: IndexShape) -> str | None:
    """Why B makes A redundant (the reason names B as the one to keep), or None when it does not."""
    if a.index == b.index or (a.schema, a.table) != (b.schema, b.table) or a.constraint_name:
        return None
    hashed = _hash_beside_btree(a, b)
    if hashed:
        return hashed
    if a.method != b.method or a.predicate != b.predicate or b.nkeys < a.nkeys:
        return None
    if not all(_same_key(a, k, b, k) for k in range(a.nkeys)):
        return None
    order = _order_served(a, b)
    if order is None:
        return None
    if not set(a.included) <= set(b.columns):
        return None
    mutual = b.nkeys == a.nkeys and set(a.included) == set(b.included)  # each would serve the other
    if a.is_unique and not (b.is_unique and b.nkeys == a.nkeys and b.nulls_not_distinct == a.nulls_not_distinct):
        return None
    if mutual and _rank(a) > _rank(b):
        return None  # the other one of the pair is the weaker: report that one
    exact = mutual and order == "same"
    return _reason(a, b, order, exact)


def _reason(a: IndexShape, b: IndexShape, order: str, exact: bool) -> str:
    keep = f"keep {b.index} {b.describe()}"
    if b.constraint_name:
        keep += f" (it backs constraint {b.constraint_name})"
    if exact:
        return f"exact duplicate of {b.index}; {keep}"
    parts = []
    if b.nkeys > a.nkeys:
        parts.append(f"its keys are the leading keys of {b.index}")
    elif order == "backward":
        parts.append(f"same keys as {b.index} in the opposite order")
    else:
        parts.append(f"same keys as {b.index}")
    if order == "backward":
        parts.append("a btree is scanned in both directions, so it gives the same order")
    if len(b.included) > len(a.included) and b.nkeys == a.nkeys:
        parts.append(f"{b.index} also carries INCLUDE ({', '.join(b.included)}) for index-only scans")
    return f"{'; '.join(parts)}; {keep}"


@dataclass
class Finding:
    redundant: IndexShape
    keep: IndexShape
    reason: str


def find_redundant(indexes: Sequence[IndexShape]) -> list[Finding]:
    """One finding per redundant index, naming the index to keep (one that is not redundant itself, if any)."""
    by_table: dict[tuple[str, str], list[IndexShape]] = {}
    for s in indexes:
        by_table.setdefault((s.schema, s.table), []).append(s)
    findings: list[Finding] = []
    for group in by_table.values():
        covering = {a.index: [(b, r) for b in group if (r := covers(b, a))] for a in group}
        redundant_names = {name for name, cov in covering.items() if cov}
        for a in group:
            cov = covering[a.index]
            if not cov:
                continue
            # prefer a keeper that stays, then one backing a constraint, then the narrowest
            cov.sort(key=lambda br: (br[0].index in redundant_names, br[0].constraint_name is None, br[0].nkeys))
            keep, reason = cov[0]
            findings.append(Finding(redundant=a, keep=keep, reason=reason))
    return findings


def redundant_to_existing(proposal: IndexShape, existing: Iterable[IndexShape]) -> Finding | None:
    """An existing index that already serves everything ``proposal`` would (so it must not be proposed)."""
    for b in existing:
        reason = covers(b, proposal)
        if reason:
            return Finding(redundant=proposal, keep=b, reason=reason)
    return None
