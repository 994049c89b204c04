"""Redundancy rules (ops/redundancy.py) on real PostgreSQL: a table of tricky pairs with an expert's verdict.

Each pair gets its own table t_<n>(a int, b text, c int), its two indexes created in the order
written (creation order must not change the verdict). ``expect`` is the index to report as
redundant ("first", "second") or None when both must stay; every verdict is justified beside it.
The first pairs are also checked the way the expert did: drop the reported index in a
rolled-back transaction and the other index still gives the same kind of plan.
"""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest
from psycopg import sql

from ops.redundancy import IndexShape, find_redundant, redundant_to_existing, shapes

PAIRS: list[tuple[str, str, str | None]] = [
    # 1. of (a) and (a) INCLUDE (b) the plain one goes: the covering one serves every lookup and adds index-only scans
    ("(a)", "(a) INCLUDE (b)", "first"),
    # 2. the same pair created the other way round: still the plain one (the old rule dropped the covering one)
    ("(a) INCLUDE (b)", "(a)", "second"),
    # 3. the classic leading prefix
    ("(a)", "(a, b)", "first"),
    # 4. a btree is scanned both ways: (a, b) read backwards gives ORDER BY a DESC
    ("(a DESC)", "(a, b)", "first"),
    # 5. (a) and (a DESC) serve the same queries; exactly one is reported (the newer one)
    ("(a)", "(a DESC)", "second"),
    # 6. a hash index beside a btree on the same column: the btree does equality too, and ranges and sorts
    ("USING hash (a)", "(a)", "first"),
    # 7. ... also when the btree leads with that column
    ("USING hash (a)", "(a, c)", "first"),
    # 8. text_pattern_ops serves LIKE 'x%' under a non-C collation, the default class does not: both stay
    ("(b text_pattern_ops)", "(b)", None),
    # 9. a different collation orders differently: both stay
    ('(b COLLATE "C")', "(b)", None),
    # 10. a partial index is smaller and preferred for its rows: not redundant beside the full one
    ("(a) WHERE c > 0", "(a)", None),
    # 11. ... and the full one serves rows the partial one lacks
    ("(a)", "(a, b) WHERE c > 0", None),
    # 12. a UNIQUE index enforces something: never redundant beside a wider one
    ("UNIQUE (a)", "(a, b)", None),
    # 13. a plain prefix of a wider UNIQUE index is redundant (the unique one serves the lookups)
    ("(a)", "UNIQUE (a, b)", "first"),
    # 14. the key order matters: (b, a) does not serve WHERE a = ?
    ("(a, b)", "(b, a)", None),
    # 15. mixed directions: (a, b, c) gives a ASC, b ASC or a DESC, b DESC, never a ASC, b DESC
    ("(a, b DESC)", "(a, b, c)", None),
    # 16. all directions reversed: (a, b, c) read backwards gives a DESC, b DESC
    ("(a DESC, b DESC)", "(a, b, c)", "first"),
    # 17. NULLS FIRST with ASC is no direction of (a, b): forwards NULLS LAST, backwards DESC NULLS FIRST
    ("(a NULLS FIRST)", "(a, b)", None),
    # 18. an INCLUDE column the other index lacks keeps index-only scans: both stay
    ("(a) INCLUDE (c)", "(a, b)", None),
    # 19. an INCLUDE column that is a key of the other index: covered
    ("(a) INCLUDE (b)", "(a, b)", "first"),
    # 20. expressions compare as expressions: (lower(b)) is a prefix of (lower(b), a)
    ("(lower(b))", "(lower(b), a)", "first"),
    # 21. an expression does not serve its column: both stay
    ("(lower(b))", "(b)", None),
    # 22. exact duplicates: one is reported, the newer one
    ("(a, b)", "(a, b)", "second"),
    # 23. UNIQUE (a) beside UNIQUE (a) INCLUDE (b): the same constraint, and the second covers more
    ("UNIQUE (a)", "UNIQUE (a) INCLUDE (b)", "first"),
    # 24. a BRIN index is tiny and serves range scans on correlated data differently: not a btree duplicate
    ("USING brin (a)", "(a)", None),
]


def _create(conn: psycopg.Connection, table: str, name: str, spec: str) -> None:
    unique = spec.startswith("UNIQUE ")
    rest = spec.removeprefix("UNIQUE ")
    conn.execute(
        sql.SQL("CREATE {}INDEX {} ON {} {}").format(
            sql.SQL("UNIQUE " if unique else ""),
            sql.Identifier(name),
            sql.Identifier("public", table),
            sql.SQL(rest),  # the spec is this file's own literal text
        )
    )


@pytest.fixture(scope="module")
def pairs_db(pg_cluster):
    name = f"t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = pg_cluster.dsn(name)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for n, (first, second, _) in enumerate(PAIRS, start=1):
            table = f"t_{n}"
            conn.execute(sql.SQL("CREATE TABLE {} (a int, b text, c int)").format(sql.Identifier("public", table)))
            _create(conn, table, f"{table}_first", first)
            _create(conn, table, f"{table}_second", second)
        # a primary key beside a plain index on the same column (the seed's ix_users_id)
        conn.execute("CREATE TABLE public.pk (id int PRIMARY KEY); CREATE INDEX pk_plain ON public.pk (id)")
    yield dsn
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="module")
def verdicts(pairs_db):
    from ops.db import connect

    with connect(pairs_db) as conn:
        return {f.redundant.index: f for f in find_redundant(shapes(conn))}


@pytest.mark.parametrize("n", range(1, len(PAIRS) + 1))
def test_pair(n, verdicts):
    first, second, expect = PAIRS[n - 1]
    reported = {side for side in ("first", "second") if f"t_{n}_{side}" in verdicts}
    assert reported == ({expect} if expect else set()), f"{first} vs {second}"
    if expect:
        finding = verdicts[f"t_{n}_{expect}"]
        keep = "second" if expect == "first" else "first"
        assert finding.keep.index == f"t_{n}_{keep}"
        assert f"keep t_{n}_{keep}" in finding.reason  # every finding says which index stays, and why


def test_a_primary_key_stays_and_the_plain_copy_goes(verdicts):
    assert verdicts["pk_plain"].keep.index == "pk_pkey"
    assert "backs constraint pk_pkey" in verdicts["pk_plain"].reason
    assert "pk_pkey" not in verdicts


def test_the_covering_index_really_gives_index_only_scans(pairs_db):
    """Pair 1 the expert's way: with the plain (a) dropped, the covering index still answers with an
    index-only scan; with the covering one dropped instead, that scan is lost. So keeping it is right."""
    with psycopg.connect(pairs_db, autocommit=True) as conn:
        conn.execute("INSERT INTO t_1 SELECT g, g::text, g FROM generate_series(1, 20000) g")
        conn.execute("VACUUM ANALYZE t_1")  # an all-visible map, so index-only scans are possible
        plans = {}
        for dropped in ("t_1_first", "t_1_second"):
            conn.execute("BEGIN")
            conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(dropped)))
            conn.execute("SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off")
            plans[dropped] = json.dumps(conn.execute("EXPLAIN (FORMAT JSON) SELECT b FROM t_1 WHERE a = 42").fetchone())
            conn.execute("ROLLBACK")
    assert "Index Only Scan" in plans["t_1_first"]  # the reported one gone: nothing lost
    assert "Index Only Scan" not in plans["t_1_second"]  # the old verdict's drop lost it


def test_a_proposal_is_checked_against_existing_indexes(verdicts):
    existing = [f.keep for f in verdicts.values() if f.keep.table == "t_3"]  # t_3_second is (a, b)
    proposal = IndexShape(schema="public", table="t_3", index="proposed", method="btree", nkeys=1, columns=("a",))
    found = redundant_to_existing(proposal, existing)
    assert found is not None and found.keep.index == "t_3_second"
    wider = IndexShape(
        schema="public", table="t_3", index="proposed", method="btree", nkeys=1, columns=("a", "c")
    )  # (a) INCLUDE (c): c is not in (a, b)
    assert redundant_to_existing(wider, existing) is None
