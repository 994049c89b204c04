"""Seed query table: the app's query patterns before and after ``ops migrate apply``, same data, same run.

The seed claims "~45x faster queries" from a table of guesses. Here each pattern runs many times
on the app's tables at the chosen scale (bench/datagen.py), first with only the indexes the app
creates itself (sql/schema/), then again after ``ops migrate apply`` built sql/migrations/.
Times are client-side wall times of execute + fetch over the Unix socket with psycopg 3's
defaults (what the app sees), parameters cycling over a sample of real values. The plan's scan
node is named from EXPLAIN, so "uses an index" is read, not assumed.

    python -m bench.bench_queries --scale small     # about a minute; --scale full is the issue's size
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from bench.common import (
    Result,
    Scale,
    fmt_ms,
    fmt_ratio,
    fmt_s,
    get_scale,
    note,
    percentile,
    pg_env,
    progress,
    run_logged,
    target,
)
from bench.datagen import SeededCluster, user_of_job
from ops.migrate import load as load_migrations
from ops.migrations import declared_indexes

Params = Callable[[psycopg.Connection[Any], random.Random, Scale], list[tuple[Any, ...]]]
SAMPLE = 200  # distinct parameter values per pattern
INDEX_NODES = {"Index Scan", "Index Only Scan", "Bitmap Index Scan"}


def _col(conn: psycopg.Connection[Any], query: str, ids: list[int]) -> list[tuple[Any, ...]]:
    return conn.execute(query, (ids,)).fetchall()  # type: ignore[arg-type]


def _ids(r: random.Random, n: int) -> list[int]:
    return [r.randint(1, n) for _ in range(SAMPLE)]


@dataclass(frozen=True)
class Pattern:
    name: str
    seed_claim: str  # what the seed's table says (before -> after), "" for the S10 patterns it has no row for
    sql: str
    params: Params

    @property
    def seed_pattern(self) -> bool:
        return bool(self.seed_claim)


PATTERNS: list[Pattern] = [
    Pattern(
        "user by email",
        "~50 ms → ~1 ms (50x)",
        "SELECT id, email, name, password_hash, deleted_at FROM users WHERE email = %s",
        lambda c, r, s: _col(c, "SELECT email FROM users WHERE id = ANY(%s)", _ids(r, s.users)),
    ),
    Pattern(
        "a user's jobs, newest 50",
        "~200 ms → ~5 ms (40x)",
        "SELECT * FROM content_jobs WHERE user_id = %s ORDER BY created_at DESC LIMIT 50",
        # users weighted by activity: the ones who have jobs are the ones who list them
        lambda c, r, s: [(user_of_job(r.random, s.users),) for _ in range(SAMPLE)],
    ),
    Pattern(
        "a job's artifacts",
        "~100 ms → ~2 ms (50x)",
        "SELECT * FROM content_artifacts WHERE job_id = %s",
        lambda c, r, s: [(i,) for i in _ids(r, s.content_jobs)],
    ),
    Pattern(
        "membership check",
        "~150 ms → ~2 ms (75x)",
        "SELECT 1 FROM memberships WHERE org_id = %s AND user_id = %s LIMIT 1",
        lambda c, r, s: _col(c, "SELECT org_id, user_id FROM memberships WHERE id = ANY(%s)", _ids(r, s.memberships)),
    ),
    Pattern(
        "recent artifacts, newest 50",
        "~300 ms → ~10 ms (30x)",
        "SELECT * FROM content_artifacts ORDER BY created_at DESC LIMIT 50",
        lambda c, r, s: [()],
    ),
    Pattern(
        "a user's sessions",
        "",
        "SELECT * FROM sessions WHERE user_id = %s",
        lambda c, r, s: [(i,) for i in _ids(r, s.users)],
    ),
    Pattern(
        "orgs a user owns",
        "",
        "SELECT * FROM organizations WHERE owner_id = %s",
        lambda c, r, s: _col(c, "SELECT owner_id FROM organizations WHERE id = ANY(%s)", _ids(r, s.organizations)),
    ),
]

#: Seconds of timed runs per pattern and phase, and the minimum number of runs.
BUDGET = {"full": 2.0, "small": 1.0, "tiny": 0.05}
MIN_RUNS = {"full": 15, "small": 15, "tiny": 5}
MAX_RUNS = 2000


def plan_nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    nodes = [plan]
    for child in plan.get("Plans", []):
        nodes.extend(plan_nodes(child))
    return nodes


def describe_plan(conn: psycopg.Connection[Any], query: str, params: Sequence[Any]) -> tuple[str, bool]:
    """The plan's access path in a few words (e.g. 'Index Scan using ix_users_email'), and whether it uses an index."""
    row = conn.execute(f"EXPLAIN (FORMAT JSON) {query}", params, prepare=False).fetchone()  # type: ignore[arg-type]
    assert row is not None
    nodes = plan_nodes(row[0][0]["Plan"])
    parts: list[str] = []
    for n in nodes:
        kind = n["Node Type"]
        if n.get("Parallel Aware") and not kind.startswith("Parallel"):
            kind = f"Parallel {kind}"
        if "Index Name" in n:
            parts.append(f"{kind} using {n['Index Name']}")
        elif n["Node Type"] in {"Seq Scan", "Bitmap Heap Scan"} and "Bitmap Index Scan" not in {
            m["Node Type"] for m in nodes
        }:
            parts.append(f"{kind} on {n['Relation Name']}")
        elif n["Node Type"] in {"Sort", "Incremental Sort"}:
            parts.append(n["Node Type"])
    uses_index = any(n["Node Type"] in INDEX_NODES for n in nodes)
    return " + ".join(reversed(dict.fromkeys(parts))) or nodes[0]["Node Type"], uses_index


@dataclass
class Timing:
    plan: str
    uses_index: bool
    runs: list[float]  # milliseconds

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    @property
    def p95(self) -> float:
        return percentile(self.runs, 95)


def time_pattern(conn: psycopg.Connection[Any], pattern: Pattern, params: list[tuple[Any, ...]], scale: str) -> Timing:
    plan, uses_index = describe_plan(conn, pattern.sql, params[0])
    for p in params[:3]:  # warm-up, not timed
        conn.execute(pattern.sql, p).fetchall()  # type: ignore[arg-type]
    runs: list[float] = []
    budget = BUDGET.get(scale, 1.0)
    started = time.perf_counter()
    i = 0
    while len(runs) < MAX_RUNS and (len(runs) < MIN_RUNS.get(scale, 15) or time.perf_counter() - started < budget):
        p = params[i % len(params)]
        i += 1
        t0 = time.perf_counter()
        conn.execute(pattern.sql, p).fetchall()  # type: ignore[arg-type]
        runs.append((time.perf_counter() - t0) * 1000)
    return Timing(plan, uses_index, runs)


def time_all(dsn: str, scale: Scale, label: str) -> dict[str, Timing]:
    results: dict[str, Timing] = {}
    with psycopg.connect(dsn, autocommit=True) as conn, progress() as prog:
        task = prog.add_task(f"{label}: timing queries", total=len(PATTERNS))
        for pattern in PATTERNS:
            prog.update(task, description=f"{label}: {pattern.name}")
            params = pattern.params(conn, random.Random(pattern.name), scale)
            results[pattern.name] = time_pattern(conn, pattern, params, scale.name)
            prog.advance(task)
    return results


def run(scale: str = "small") -> Result:
    """The seed's five query patterns plus two, timed before and after ``ops migrate apply``."""
    s = get_scale(scale)
    seeded = SeededCluster.get()
    template = seeded.template(s)
    with seeded.fresh(template, "bench_queries") as db:
        dsn = seeded.cluster.dsn(db)
        before = time_all(dsn, s, "before")
        note("ops migrate apply ...")
        apply_s, _ = run_logged([sys.executable, "-m", "ops", "migrate", "apply"], env=pg_env(seeded.cluster, db))
        note(f"ops migrate apply: {fmt_s(apply_s)}")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("ANALYZE")
        after = time_all(dsn, s, "after")

    rows = []
    ratios: dict[str, float] = {}
    for p in PATTERNS:
        b, a = before[p.name], after[p.name]
        ratios[p.name] = b.median / a.median
        rows.append(
            [
                p.name + ("" if p.seed_pattern else " (S10)"),
                b.plan,
                f"{fmt_ms(b.median)} / {fmt_ms(b.p95)}",
                a.plan,
                f"{fmt_ms(a.median)} / {fmt_ms(a.p95)}",
                fmt_ratio(ratios[p.name]),
                f"{len(b.runs)} / {len(a.runs)}",
                p.seed_claim or "-",
            ]
        )
    seed_ratios = [ratios[p.name] for p in PATTERNS if p.seed_pattern]
    all_indexed = [p.name for p in PATTERNS if after[p.name].uses_index]
    worst_median = max(a.median for a in after.values())
    mean_seed = statistics.mean(seed_ratios)
    geo_seed = statistics.geometric_mean(seed_ratios)
    n_indexes = len(declared_indexes(load_migrations())) + 1  # + the UNIQUE constraint
    already = [p.name for p in PATTERNS if before[p.name].uses_index]
    notes = [
        f"Data: {s.describe()}.",
        f"`ops migrate apply` brought the database to the {n_indexes} declared indexes and constraints, online, in "
        f"{fmt_s(apply_s)} (the whole command, wall time).",
        "Times are client-side (execute + fetch over the Unix socket, psycopg 3 defaults), parameters cycling over "
        f"{SAMPLE} sampled real values; 'runs' is the number of timed runs before / after.",
        f"Mean of the seed's five ratios: {fmt_ratio(mean_seed)} (geometric mean {fmt_ratio(geo_seed)}); the seed claimed ~45x.",
    ]
    if already:
        notes.append(
            "Already indexed before the migrations (by the app's own model indexes): " + ", ".join(already) + "."
        )
    return {
        "name": "queries",
        "title": "1. Seed query table: before and after `ops migrate apply`",
        "columns": [
            "pattern",
            "before: plan",
            "before: median / p95",
            "after: plan",
            "after: median / p95",
            "ratio (median)",
            "runs",
            "the seed claimed",
        ],
        "rows": rows,
        "targets": [
            target(
                "every pattern uses an index after the migrations",
                f"{len(PATTERNS)}/{len(PATTERNS)}",
                f"{len(all_indexed)}/{len(PATTERNS)}",
                len(all_indexed) == len(PATTERNS),
            ),
            target(
                "median after the migrations", "< 1 ms each", f"slowest median {fmt_ms(worst_median)}", worst_median < 1
            ),
            target(
                "the seed's '~45x faster on average'",
                "measured, not assumed",
                f"mean {fmt_ratio(mean_seed)}, geometric mean {fmt_ratio(geo_seed)}",
                True,
            ),
        ],
        "notes": notes,
        "data": {
            "scale": s.counts(),
            "apply_seconds": round(apply_s, 2),
            "patterns": {
                p.name: {
                    "sql": p.sql,
                    "before": {
                        "plan": before[p.name].plan,
                        "median_ms": before[p.name].median,
                        "p95_ms": before[p.name].p95,
                        "runs": len(before[p.name].runs),
                    },
                    "after": {
                        "plan": after[p.name].plan,
                        "median_ms": after[p.name].median,
                        "p95_ms": after[p.name].p95,
                        "runs": len(after[p.name].runs),
                    },
                    "ratio": ratios[p.name],
                }
                for p in PATTERNS
            },
        },
    }


if __name__ == "__main__":
    from bench.common import main

    main(run)
