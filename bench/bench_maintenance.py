"""3. Targeted maintenance: ``ops maintain reindex`` versus ``reindexdb --concurrently`` of the whole database.

The database is the app's at the chosen scale (bench/datagen.py) with the S10 indexes applied,
then one table made bloated the way it happens in production: the session clean-up deletes 90%
of ``sessions`` (expired ones, scattered through the key space) and VACUUM leaves their index
pages allocated at low leaf density. Every other index is healthy.

Side by side, on two file copies of that one database, in the same run:

- ``ops maintain reindex`` (estimate, pgstatindex for candidates, REINDEX CONCURRENTLY of what is bloated)
- ``reindexdb --concurrently`` of the whole database (the baseline), also with ``-j 2``

measuring wall time and the bytes of all indexes given back. Then, on a third copy with tables
added until it holds 200+ btree indexes, the time of the bloat estimate over all of them and
its error against ``pgstatindex``.

    python -m bench.bench_maintenance --scale small
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any

import psycopg

from bench.common import (
    Result,
    fmt_ms,
    fmt_ratio,
    fmt_s,
    get_scale,
    note,
    pg_env,
    run_logged,
    step,
    target,
)
from bench.datagen import SeededCluster
from ops.local.pg import bindir
from ops.maintain import bloat
from ops.maintain.units import human_bytes

# --min-size for ops maintain reindex per scale: the default (1MB) at the size, divided
# like the data at the smaller scales (small is 1/20 of full).
MIN_SIZE = {"full": "1MB", "small": "64kB", "tiny": "8kB"}
# Each variant runs this many times on fresh copies, alternating, and the median counts (this
# machine is shared; at the full size the gap dwarfs the noise).
REPEATS = {"full": 1, "small": 3, "tiny": 3}
TARGET_INDEXES = 200
ESTIMATE_RUNS = 15

ALL_INDEX_BYTES = "SELECT coalesce(sum(pg_relation_size(oid)), 0)::bigint FROM pg_class WHERE relkind = 'i'"


def index_bytes(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        return int(conn.execute(ALL_INDEX_BYTES).fetchone()[0])  # type: ignore[index]


def make_bloated(seeded: SeededCluster, db: str) -> None:
    """S10 indexes, pgstattuple, then 90% of sessions deleted (scattered) and VACUUMed."""
    env = pg_env(seeded.cluster, db)
    run_logged([sys.executable, "-m", "ops", "migrate", "apply"], env=env)
    with psycopg.connect(seeded.cluster.dsn(db), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pgstattuple")
        conn.execute("DELETE FROM sessions WHERE id % 10 <> 0")
        conn.execute("VACUUM (ANALYZE) sessions")
        conn.execute("VACUUM (ANALYZE)")


def timed_command(cmd: list[str], env: dict[str, str]) -> float:
    seconds, _ = run_logged(cmd, env=env, timeout=3600)
    return seconds


def add_indexes(dsn: str, wanted: int) -> int:
    """Add small tables with indexes (and ANALYZE them) until the database has ``wanted`` btree indexes."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        have = conn.execute(
            "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_am am ON am.oid = c.relam JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE am.amname = 'btree' AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
            "AND n.nspname !~ '^pg_toast'"
        ).fetchone()[0]  # type: ignore[index]
        k = 0
        while have < wanted:
            t = f"bench_extra_{k}"
            conn.execute(
                f"CREATE TABLE {t} (id bigint PRIMARY KEY, a int, b text, c timestamptz, d bigint, e text)"  # type: ignore[arg-type]
            )
            conn.execute(
                f"INSERT INTO {t} SELECT g, g % 97, md5(g::text), now() - g * interval '1 min', g * 7, "  # type: ignore[arg-type]
                f"CASE WHEN g % 3 = 0 THEN NULL ELSE 'x' || g % 13 END FROM generate_series(1, 2000) g"
            )
            for cols in ("a", "b", "c", "d", "e", "a, c", "lower(b)", "d DESC, a"):
                conn.execute(f"CREATE INDEX ON {t} ({cols})")  # type: ignore[arg-type]
            conn.execute(f"ANALYZE {t}")  # type: ignore[arg-type]
            have += 9
            k += 1
        return int(have)


def estimate_timing(dsn: str) -> tuple[list[float], int]:
    with psycopg.connect(dsn, autocommit=True, row_factory=psycopg.rows.dict_row) as conn:
        bloat.estimate(conn)  # the first run fills the catalog caches
        times, n = [], 0
        for _ in range(ESTIMATE_RUNS):
            t0 = time.perf_counter()
            n = len(bloat.estimate(conn))
            times.append(time.perf_counter() - t0)
    return times, n


def estimate_error(dsn: str, min_bytes: int) -> dict[str, Any]:
    """Estimate versus pgstatindex for every btree index of ``min_bytes`` or more."""
    with psycopg.connect(dsn, autocommit=True, row_factory=psycopg.rows.dict_row) as conn:
        schema = bloat.pgstattuple_schema(conn)
        assert schema, "pgstattuple is not installed in the bench database"
        pairs = []
        for ix in bloat.estimate(conn):
            if ix["bytes"] < min_bytes or ix["estimate_pct"] is None:
                continue
            ex = bloat.exact(conn, schema, ix["qualified"])
            pairs.append((ix["index"], ix["estimate_pct"], ex["bloat_pct"]))
    errors = [abs(e - x) for _, e, x in pairs]
    agree = sum((e >= 40) == (x >= 40) for _, e, x in pairs)
    worst = max(pairs, key=lambda p: abs(p[1] - p[2])) if pairs else None
    return {"pairs": pairs, "errors": errors, "agree": agree, "worst": worst}


def run(scale: str = "small") -> Result:
    """ops maintain reindex versus reindexdb --concurrently on a database with one bloated table."""
    s = get_scale(scale)
    seeded = SeededCluster.get()
    template = seeded.template(s, derive="maint_bloated", prepare=lambda db: make_bloated(seeded, db))
    min_size = MIN_SIZE.get(s.name, "10MB")
    ops_cmd = [sys.executable, "-m", "ops", "maintain", "reindex", "--min-size", min_size, "--json"]
    reindexdb = str(bindir().parent / "bin" / "reindexdb")
    import shutil

    reindexdb = shutil.which("reindexdb") or reindexdb

    variants = [
        ("ops maintain reindex (targeted)", ops_cmd),
        ("reindexdb --concurrently (whole database)", [reindexdb, "--concurrently", "--quiet"]),
        ("reindexdb --concurrently -j 2", [reindexdb, "--concurrently", "--quiet", "-j", "2"]),
    ]
    runs: dict[str, list[tuple[float, int, int]]] = {label: [] for label, _ in variants}
    for rep in range(REPEATS.get(s.name, 1)):
        for i, (label, cmd) in enumerate(variants):
            with seeded.fresh(template, f"maint_run_{i}") as db:
                env = pg_env(seeded.cluster, db)
                dsn = seeded.cluster.dsn(db)
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute("CHECKPOINT")
                before = index_bytes(dsn)
                with step(f"{label} (run {rep + 1})"):
                    full = cmd + (["-d", db] if cmd[0] == reindexdb else [])
                    seconds = timed_command(full, env)
                after = index_bytes(dsn)
                runs[label].append((seconds, before, before - after))
                note(f"{label}: {fmt_s(seconds)}, {human_bytes(before - after)} given back of {human_bytes(before)}")
    measured = []
    for label, _ in variants:
        seconds = statistics.median(r[0] for r in runs[label])
        measured.append((label, seconds, runs[label][0][1], int(statistics.median(r[2] for r in runs[label]))))

    ops_row, *baselines = measured
    best = min(baselines, key=lambda m: m[1])
    byte_share = ops_row[3] / baselines[0][3] if baselines[0][3] else float("nan")
    time_share = ops_row[1] / best[1]

    # the estimate over 200+ indexes, and its error against pgstatindex
    with seeded.fresh(template, "maint_estimate") as db:
        dsn = seeded.cluster.dsn(db)
        with step("bloat estimate versus pgstatindex"):
            err = estimate_error(dsn, 64 * 1024)
        with step(f"add tables up to {TARGET_INDEXES} btree indexes"):
            n_indexes = add_indexes(dsn, TARGET_INDEXES)
        times, n_estimated = estimate_timing(dsn)
    median_est = statistics.median(times)

    rows = [
        [label, fmt_s(sec), human_bytes(given), f"{100 * given / before:.0f}%", human_bytes(before)]
        for label, sec, before, given in measured
    ]
    mae = statistics.mean(err["errors"]) if err["errors"] else float("nan")
    med = statistics.median(err["errors"]) if err["errors"] else float("nan")
    worst = err["worst"]
    notes = [
        f"Database: {s.describe()}, S10 indexes applied; then 90% of sessions deleted (scattered) and VACUUMed.",
        f"ops maintain reindex ran with --min-size {min_size} and its defaults (--min-bloat 40); "
        "its time includes starting Python, the estimate and pgstatindex of the candidates.",
        f"Wall times are medians of {REPEATS.get(s.name, 1)} run(s) of each, alternating, each on a fresh "
        "file copy of the same database.",
        f"Time share: ops / the faster reindexdb ({best[0]}) = {time_share:.2f}; "
        f"bytes share: ops / reindexdb = {byte_share:.3f}.",
        f"Bloat estimate over {n_estimated} btree indexes: median {fmt_ms(median_est * 1000)} "
        f"(min {fmt_ms(min(times) * 1000)}, max {fmt_ms(max(times) * 1000)}, {ESTIMATE_RUNS} runs).",
        f"Estimate error against pgstatindex over {len(err['pairs'])} indexes of 64 kB or more: mean "
        f"{mae:.1f} points, median {med:.1f}, worst {worst[0] if worst else '-'} "
        f"({worst[1] if worst else '-'}% estimated vs {worst[2] if worst else '-'}% measured); "
        f"same side of 40%: {err['agree']} of {len(err['pairs'])}.",
    ]
    return {
        "name": "maintenance",
        "title": "3. Targeted maintenance: `ops maintain reindex` versus `reindexdb --concurrently`",
        "columns": ["run", "wall time", "index bytes given back", "of all index bytes", "index bytes before"],
        "rows": rows,
        "targets": [
            target(
                "bytes given back, ops / reindexdb",
                ">= 95%",
                f"{100 * byte_share:.1f}%",
                byte_share >= 0.95,
            ),
            target(
                "time, ops / reindexdb (faster of -j 1 and -j 2)",
                "<= 0.5",
                f"{time_share:.2f} ({fmt_ratio(1 / time_share)} faster)",
                time_share <= 0.5,
            ),
            target(
                f"bloat estimate over {n_indexes} indexes",
                "< 1 s",
                fmt_ms(median_est * 1000),
                median_est < 1.0 and n_estimated >= TARGET_INDEXES,
            ),
        ],
        "notes": notes,
    }


if __name__ == "__main__":
    from bench.common import main

    main(run)
