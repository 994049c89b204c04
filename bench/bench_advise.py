"""Index advisor: does ``ops advise`` rediscover the seed's S10 indexes from the workload alone?

On the bench database as it was before the S10 revision (``ops migrate apply --to 0607bc5b8538``),
a workload of the seed's query patterns (bench/bench_queries.py) and two more (a user's
memberships; deleting a user) fills pg_stat_statements. ``ops advise --write`` then writes its
proposals into a temporary copy of the migrations, ``ops migrate apply`` builds them, and the
patterns are timed against the seed's own index set on the same data: which of the seed's five
S10 indexes it found, what it proposed instead, total index bytes, query times side by side.

Also: the advisor's run time over 200 distinct statements; the foreign-key delete (one user)
before and after; the build time of the five S10 indexes with ``ops migrate apply`` against plain
``CREATE INDEX`` (no load, same data, same server).

    python -m bench.bench_advise --scale small
"""

from __future__ import annotations

import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from bench.bench_queries import PATTERNS, Pattern, Timing, time_pattern
from bench.common import Result, Scale, fmt_ms, fmt_ratio, fmt_s, get_scale, note, pg_env, target
from bench.datagen import BEFORE_S10, SeededCluster
from ops import REPO_ROOT, SQL_DIR
from ops.maintain.units import human_bytes
from ops.migrations import IndexDecl, load_all
from ops.redundancy import IndexShape, covers, shapes

S10 = "0607bc5b8539"
WORKLOAD_RUNS = 30  # executions of each pattern before the advisor reads pg_stat_statements
DELETE_RUNS = 10

EXTRA = [
    Pattern(
        "a user's memberships",
        "",
        "SELECT org_id, role FROM memberships WHERE user_id = %s",
        lambda c, r, s: c.execute("SELECT user_id FROM memberships ORDER BY id LIMIT 200").fetchall(),  # type: ignore[arg-type,return-value]
    ),
]
DELETE_USER = "DELETE FROM users WHERE id = %s"


def _ops(env: dict[str, str], *args: str, ok: tuple[int, ...] = (0,)) -> tuple[float, str]:
    """Run the ops CLI; its wall time and stdout (``ops advise`` exits 1 when it has proposals)."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "ops", *args], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=3600
    )
    if proc.returncode not in ok:
        raise RuntimeError(
            f"ops {' '.join(args)} exited {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        )
    return time.perf_counter() - t0, proc.stdout


def _index_bytes(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(pg_relation_size(i.indexrelid)), 0) FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relname <> 'ops_migrations_pkey'"
        ).fetchone()
    return int(row[0]) if row else 0


def _workload(dsn: str, scale: Scale) -> None:
    """Run every pattern WORKLOAD_RUNS times and delete users in rolled-back transactions: pg_stat_statements fills."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_statements_reset()")
        for p in [*PATTERNS, *EXTRA]:
            params = p.params(conn, random.Random(p.name), scale)
            for i in range(WORKLOAD_RUNS):
                conn.execute(p.sql, params[i % len(params)]).fetchall()  # type: ignore[arg-type]
        for uid in _users_with_memberships(conn, DELETE_RUNS):
            conn.execute("BEGIN")
            conn.execute(DELETE_USER, (uid,))
            conn.execute("ROLLBACK")  # the statistics stay; the rows stay too


def _advisable(dsn: str) -> None:
    """What ops advise needs: hypopg and pg_stat_statements (counting from now), fresh statistics."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS hypopg")
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute("SELECT pg_stat_statements_reset()")
        conn.execute("ANALYZE")


def _users_with_memberships(conn: psycopg.Connection[Any], n: int) -> list[int]:
    """Users a DELETE can remove (they own no organization: that foreign key has no cascade)."""
    rows = conn.execute(
        "SELECT DISTINCT m.user_id FROM memberships m "
        "WHERE NOT EXISTS (SELECT 1 FROM organizations o WHERE o.owner_id = m.user_id) ORDER BY 1 LIMIT %s",
        (n,),
    )
    return [r[0] for r in rows]


def _time_patterns(dsn: str, scale: Scale) -> dict[str, Timing]:
    out: dict[str, Timing] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("ANALYZE")
        for p in [*PATTERNS, *EXTRA]:
            params = p.params(conn, random.Random(p.name), scale)
            out[p.name] = time_pattern(conn, p, params, scale.name)
    return out


def _delete_ms(dsn: str) -> tuple[float, float]:
    """Median over a few users of (whole DELETE, memberships' FK trigger) in ms; each rolled back."""
    totals, triggers = [], []
    with psycopg.connect(dsn, autocommit=True) as conn:
        for uid in _users_with_memberships(conn, 5):
            conn.execute("BEGIN")
            row = conn.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {DELETE_USER}", (uid,)).fetchone()
            conn.execute("ROLLBACK")
            assert row is not None
            plan = row[0][0]
            totals.append(plan["Execution Time"])
            triggers.append(
                sum(
                    t["Time"]
                    for t in plan.get("Triggers", [])
                    if t.get("Constraint Name") == "memberships_user_id_fkey"
                )
            )
    return statistics.median(totals), statistics.median(triggers)


def _migrations_before_s10(directory: Path) -> None:
    directory.mkdir()
    for path in sorted((SQL_DIR / "migrations").glob("*.sql")):
        if path.name[:12] <= BEFORE_S10:
            shutil.copy(path, directory / path.name)


def _s10_indexes() -> list[IndexDecl]:
    return [d for m in load_all() if m.revision == S10 for d in m.indexes]


def _found(seed: IndexShape, advised: list[IndexShape]) -> str:
    """How the advisor's set serves one seed index: the same index, one that serves it, or nothing."""
    for a in advised:
        same = (a.table, a.columns, a.nkeys, a.options, a.predicate)
        if same == (seed.table, seed.columns, seed.nkeys, seed.options, seed.predicate):
            return f"found: {a.index}"
    for a in advised:
        if covers(a, seed):
            return f"served by {a.index} {a.describe()}"
    return "not proposed"


def _rediscover(seeded: SeededCluster, template: str, scale: Scale) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="s10advise-"))
    try:
        migrations = tmp / "migrations"
        _migrations_before_s10(migrations)
        with seeded.fresh(template, "bench_advise") as db:
            dsn, env = seeded.cluster.dsn(db), pg_env(seeded.cluster, db)
            _advisable(dsn)
            delete_before = _delete_ms(dsn)
            _workload(dsn, scale)
            before_names = {s.index for s in _shapes(dsn)}
            advise_s, out = _ops(env, "advise", "--json", "--write", "--migrations-dir", str(migrations))
            written = json.loads(out)
            report = written.get("report", {})
            note(f"ops advise --write: {fmt_s(advise_s)}, {len(written['files'])} file(s)")
            _ops(env, "migrate", "apply", "--migrations-dir", str(migrations))
            advised = [s for s in _shapes(dsn) if s.index not in before_names]
            advisor_times = _time_patterns(dsn, scale)
            advisor_bytes = _index_bytes(dsn)
            delete_after = _delete_ms(dsn)
        with seeded.fresh(template, "bench_advise_seed") as db:
            dsn, env = seeded.cluster.dsn(db), pg_env(seeded.cluster, db)
            _ops(env, "migrate", "apply")
            seed_shapes = {s.index: s for s in _shapes(dsn)}
            seed_times = _time_patterns(dsn, scale)
            seed_bytes = _index_bytes(dsn)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    s10 = {d.name: _found(seed_shapes[d.name], advised) for d in _s10_indexes()}
    served = {
        a.index for a in advised for d in _s10_indexes() if covers(a, seed_shapes[d.name]) or a.index in s10[d.name]
    }
    instead = [f"{a.index} {a.describe()}" for a in advised if a.index not in served]
    return {
        "s10": s10,
        "instead": instead,
        "advised": [f"{a.index} {a.describe()}" for a in advised],
        "advisor_times": advisor_times,
        "seed_times": seed_times,
        "advisor_bytes": advisor_bytes,
        "seed_bytes": seed_bytes,
        "advise_seconds": advise_s,
        "statements_planned": report.get("statements_planned"),
        "delete_before": delete_before,
        "delete_after": delete_after,
    }


def _shapes(dsn: str) -> list[IndexShape]:
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        return shapes(conn, ["public"])


def two_hundred_statements() -> list[str]:
    """200 distinct statements (distinct pg_stat_statements entries) over the app's tables."""
    tables = {
        "users": (["id", "email", "name", "created_at", "deleted_at"], ["id", "email", "deleted_at"]),
        "sessions": (["id", "token", "user_id", "created_at", "expires_at"], ["user_id", "token", "id"]),
        "content_jobs": (["id", "org_id", "user_id", "status", "topic", "created_at"], ["user_id", "org_id", "status"]),
        "memberships": (["id", "org_id", "user_id", "role", "created_at"], ["user_id", "org_id"]),
        "organizations": (["id", "name", "owner_id", "created_at"], ["owner_id", "id"]),
    }
    out: list[str] = []
    for width in (1, 2, 3, 4):
        for table, (cols, filters) in tables.items():
            for where in filters:
                for start in range(len(cols)):
                    pick = [cols[(start + k) % len(cols)] for k in range(width)]
                    out.append(f"SELECT {', '.join(pick)} FROM {table} WHERE {where} = %s LIMIT 1")
    unique = list(dict.fromkeys(out))
    assert len(unique) >= 200, len(unique)
    return unique[:200]


def _advisor_200(seeded: SeededCluster, template: str) -> tuple[float, int]:
    with seeded.fresh(template, "bench_advise_200") as db:
        dsn, env = seeded.cluster.dsn(db), pg_env(seeded.cluster, db)
        _advisable(dsn)
        with psycopg.connect(dsn, autocommit=True) as conn:
            for text in two_hundred_statements():
                value = "2020-01-01" if "deleted_at =" in text else "1"  # a str goes as unknown: the server casts
                conn.execute(text, (value,)).fetchall()  # type: ignore[arg-type]
        seconds, out = _ops(env, "advise", "--json", "--top", "200", ok=(0, 1))
        return seconds, int(json.loads(out)["statements_planned"])


def _build_times(seeded: SeededCluster, template: str) -> tuple[float, float, dict[str, str]]:
    """The five S10 indexes: ops migrate apply (the ledger's build durations) vs plain CREATE INDEX."""
    with seeded.fresh(template, "bench_advise_build_ops") as db:
        env, dsn = pg_env(seeded.cluster, db), seeded.cluster.dsn(db)
        _, out = _ops(env, "migrate", "apply", "--to", S10, "--json")
        settings = json.loads(out).get("build_settings", {})
        with psycopg.connect(dsn) as conn:
            row = conn.execute("SELECT sum(duration_ms) FROM ops_migrations WHERE id LIKE %s", (f"{S10}%",)).fetchone()
        ops_s = float(row[0] if row else 0) / 1000
    with seeded.fresh(template, "bench_advise_build_plain") as db:
        with psycopg.connect(seeded.cluster.dsn(db), autocommit=True) as conn:
            plain_s = 0.0
            for decl in _s10_indexes():
                stmt = decl.sql.replace("CONCURRENTLY ", "", 1)
                t0 = time.perf_counter()
                conn.execute(stmt)
                plain_s += time.perf_counter() - t0
    return ops_s, plain_s, settings


def run(scale: str = "small") -> Result:
    """Rediscover the seed's S10 indexes with ops advise; advisor run time; FK delete; S10 build times."""
    s = get_scale(scale)
    seeded = SeededCluster.get()

    template = seeded.before_s10(s)
    r = _rediscover(seeded, template, s)
    adv_200_s, planned_200 = _advisor_200(seeded, template)
    ops_s, plain_s, build_settings = _build_times(seeded, template)

    rows = []
    slower = []
    for p in [*PATTERNS, *EXTRA]:
        seed_t, adv_t = r["seed_times"][p.name], r["advisor_times"][p.name]
        rows.append(
            [
                p.name,
                seed_t.plan,
                fmt_ms(seed_t.median),
                adv_t.plan,
                fmt_ms(adv_t.median),
                fmt_ratio(seed_t.median / adv_t.median),
            ]
        )
        if adv_t.median > seed_t.median * 1.1 and adv_t.median - seed_t.median > 0.05:
            slower.append(p.name)
    found = [n for n, v in r["s10"].items() if v != "not proposed"]
    ratio = ops_s / plain_s if plain_s else float("nan")
    (del_b, trig_b), (del_a, trig_a) = r["delete_before"], r["delete_after"]
    notes = [
        f"Data: {s.describe()}. Workload: each pattern {WORKLOAD_RUNS} times, plus {DELETE_RUNS} user deletes "
        "(rolled back); the advisor then read pg_stat_statements.",
        "The seed's five S10 indexes and how the advisor's set serves each: "
        + "; ".join(f"{n}: {v}" for n, v in r["s10"].items())
        + ".",
        "The advisor's indexes: " + ("; ".join(r["advised"]) or "none") + ".",
        "Proposed beyond the seed's five: " + ("; ".join(r["instead"]) or "nothing") + ".",
        f"Index bytes (all indexes in the database): seed's set {human_bytes(r['seed_bytes'])}, "
        f"advisor's set {human_bytes(r['advisor_bytes'])}.",
        f"ops advise: {fmt_s(r['advise_seconds'])} over the workload ({r['statements_planned']} statements planned); "
        f"{fmt_s(adv_200_s)} over 200 distinct statements ({planned_200} planned) - wall time of the whole command.",
        f"Deleting one user (median of 5, EXPLAIN ANALYZE, rolled back): {fmt_ms(del_b)} before "
        f"({fmt_ms(trig_b)} in the memberships foreign key's trigger), {fmt_ms(del_a)} after "
        f"({fmt_ms(trig_a)} in that trigger).",
        f"Build of the five S10 indexes, no load: ops migrate apply {fmt_s(ops_s)} (sum of the ledger's build "
        f"durations; build settings {build_settings}) vs plain CREATE INDEX {fmt_s(plain_s)}: {ratio:.2f}x.",
    ]
    return {
        "name": "advise",
        "title": "Index advisor: the seed's patterns with the seed's S10 set vs the advisor's",
        "columns": ["pattern", "seed's set: plan", "median", "advisor's set: plan", "median", "seed / advisor"],
        "rows": rows,
        "targets": [
            target("seed's S10 indexes rediscovered (found or served)", "5/5", f"{len(found)}/5", len(found) == 5),
            target(
                "every pattern at least as fast as with the seed's set",
                "all",
                f"slower: {', '.join(slower) or 'none'}",
                not slower,
            ),
            target(
                "no more index bytes than the seed's set",
                human_bytes(r["seed_bytes"]),
                human_bytes(r["advisor_bytes"]),
                r["advisor_bytes"] <= r["seed_bytes"],
            ),
            target("FK delete faster after", "yes", f"{fmt_ms(del_b)} -> {fmt_ms(del_a)}", del_a < del_b),
            target("ops migrate apply vs plain CREATE INDEX", "at most 1.5x", f"{ratio:.2f}x", ratio <= 1.5),
        ],
        "notes": notes,
        "data": {
            "scale": s.counts(),
            "s10": r["s10"],
            "advised": r["advised"],
            "instead": r["instead"],
            "seed_index_bytes": r["seed_bytes"],
            "advisor_index_bytes": r["advisor_bytes"],
            "advise_seconds": r["advise_seconds"],
            "advise_200_seconds": adv_200_s,
            "delete_ms": {"before": del_b, "before_trigger": trig_b, "after": del_a, "after_trigger": trig_a},
            "build_seconds": {"ops": ops_s, "plain": plain_s, "ratio": ratio},
        },
    }


if __name__ == "__main__":
    from bench.common import main

    main(run)
