"""Data for the benchmarks: the app's tables (sql/schema/) filled at a chosen scale with COPY.

The generator (shapes, scales, the COPY load) is ops/local/demodata.py, shared with ``make demo``;
this module adds the progress bar and the seeded template databases the benchmarks clone.

    python -m bench.datagen --scale small     # load into a throwaway cluster and print the sizes
"""

from __future__ import annotations

import atexit
import contextlib
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
from psycopg import sql

from bench.common import Scale, bench_cluster, get_scale, human, note, pg_env, progress, run_logged, timed
from ops.local import demodata
from ops.local.pg import Cluster

#: The revision before the S10 indexes (their migrations are 0607bc5b8539_*).
BEFORE_S10 = "0607bc5b8538"

user_of_job = demodata.user_of_job  # the benchmarks draw the same skewed users


def load(dsn: str, scale: Scale) -> dict[str, int]:
    """Create the app's tables in an empty database and fill them (ops.local.demodata), with a progress bar."""
    counts = scale.counts()
    total = sum(counts.values())
    with timed() as elapsed, progress() as prog:
        task = prog.add_task(f"COPY {human(total)} rows", total=total)

        def advance(table: str, rows: int) -> None:
            prog.update(task, description=f"COPY {table}", advance=rows)

        demodata.load(dsn, scale, advance)
    note(f"loaded {human(total)} rows at scale {scale.name} in {elapsed():.1f} s ({total / elapsed():,.0f} rows/s)")
    return counts


# ---------------------------------------------------------------- a seeded cluster shared by the benchmarks


class SeededCluster:
    """One throwaway cluster per process, holding one loaded template database per scale.

    Benchmarks clone the template (``CREATE DATABASE ... TEMPLATE ... STRATEGY FILE_COPY``, a file
    copy) so each starts from the same data without generating it again.
    """

    _lock = threading.Lock()
    _instance: SeededCluster | None = None

    def __init__(self) -> None:
        self._ctx = bench_cluster()
        self.cluster: Cluster = self._ctx.__enter__()
        self.templates: dict[str, str] = {}
        self.load_seconds: dict[str, float] = {}
        atexit.register(self.close)

    @classmethod
    def get(cls) -> SeededCluster:
        with cls._lock:
            if cls._instance is None:
                cls._instance = SeededCluster()
            return cls._instance

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._ctx.__exit__(None, None, None)
        SeededCluster._instance = None

    def admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.cluster.dsn(), autocommit=True)

    def before_s10(self, scale: Scale) -> str:
        """A template at the revision before the S10 indexes (``ops migrate apply --to BEFORE_S10``),
        vacuumed and analyzed: the baseline the online-migration and advisor benchmarks start from."""

        def prepare(name: str) -> None:
            run_logged(
                [sys.executable, "-m", "ops", "migrate", "apply", "--to", BEFORE_S10], env=pg_env(self.cluster, name)
            )
            with psycopg.connect(self.cluster.dsn(name), autocommit=True) as conn:
                conn.execute("VACUUM (ANALYZE)")

        return self.template(scale, derive="before_s10", prepare=prepare)

    def template(self, scale: Scale, *, derive: str = "", prepare: Callable[[str], None] | None = None) -> str:
        """The name of a loaded template database for ``scale`` (made on first use).

        ``derive`` names a variant made from the base template by ``prepare(dsn)`` (e.g. some
        migrations applied), also kept for reuse.
        """
        base = f"seed_{scale.name}"
        if base not in self.templates:
            self.cluster.createdb(base)
            with timed() as elapsed:
                load(self.cluster.dsn(base), scale)
            self.load_seconds[scale.name] = elapsed()
            self.templates[base] = base
        if not derive:
            return base
        name = f"{base}_{derive}"
        if name not in self.templates:
            self.clone(base, name)
            assert prepare is not None
            prepare(name)
            self.templates[name] = name
        return name

    def clone(self, template: str, name: str) -> str:
        with self.admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(
                    sql.Identifier(name), sql.Identifier(template)
                )
            )
        return name

    def drop(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    @contextlib.contextmanager
    def fresh(self, template: str, name: str) -> Iterator[str]:
        """A clone of ``template`` for one measurement, dropped afterwards."""
        self.clone(template, name)
        try:
            yield name
        finally:
            self.drop(name)


def table_sizes(dsn: str) -> list[tuple[str, int, str]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT relname, n_live_tup, pg_size_pretty(pg_total_relation_size(relid)) "
            "FROM pg_stat_user_tables ORDER BY pg_total_relation_size(relid) DESC"
        ).fetchall()


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="small")
    args = parser.parse_args()
    with bench_cluster() as c:
        c.createdb("s10")
        load(c.dsn("s10"), get_scale(args.scale))
        for row in table_sizes(c.dsn("s10")):
            print(*row, sep="\t")
