"""Data for the benchmarks: the app's tables (sql/schema/) filled at a chosen scale with COPY.

Rows are made in Python in chunks and streamed with ``COPY ... FROM STDIN`` (text format), so
generation runs on one core while the server parses on the other. Foreign keys are not checked
during the load (``session_replication_role = replica``); the generator only makes valid
references. Deterministic: the same scale gives the same data.

Shapes, chosen to look like the app's: a user's jobs are skewed (a few heavy users, many light
ones), jobs and artifacts are created in id order over two years, each job has 1 to 3 artifacts.

    python -m bench.datagen --scale small     # load into a throwaway cluster and print the sizes
"""

from __future__ import annotations

import atexit
import contextlib
import random
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter

from bench.common import Scale, bench_cluster, get_scale, human, note, progress, timed
from ops import SQL_DIR
from ops.local.pg import Cluster, load_schema

CHUNK = 50_000
START = datetime(2024, 1, 1, tzinfo=UTC)
SPAN_S = 2 * 365 * 86400  # two years of history
_DAYS = [(START + timedelta(days=d)).strftime("%Y-%m-%d") for d in range(SPAN_S // 86400 + 40)]
JOB_STATUSES = ("completed",) * 16 + ("failed", "running", "queued", "cancelled")
ARTIFACT_TYPES = ("outline", "draft", "final", "image_prompt")
TOPICS = ("pricing page", "onboarding email", "release notes", "product launch", "weekly digest", "case study")
SUB_STATUSES = ("active",) * 6 + ("canceled", "past_due", "trialing")
PLANS = ("free", "pro", "team", "enterprise")

Rows = Iterator[str]


def ts(seconds: int) -> str:
    """Seconds since START as a timestamptz literal (string building: datetime objects are slow)."""
    d, r = divmod(seconds, 86400)
    return f"{_DAYS[d]} {r // 3600:02d}:{r // 60 % 60:02d}:{r % 60:02d}+00"


def user_of_job(rnd: Callable[[], float], users: int) -> int:
    """Skewed: user 1 has thousands of jobs at full scale, the median user a handful."""
    return int(users * rnd() ** 2) + 1


# ---------------------------------------------------------------- row generators (tab-separated lines)


def gen_users(s: Scale, r: random.Random) -> Rows:
    for i in range(1, s.users + 1):
        created = int(SPAN_S * (i - 1) / s.users)
        deleted = ts(created + 86400 * 30) if i % 50 == 0 else r"\N"
        pw = f"$2b$12${r.getrandbits(248):062x}"[:60]
        yield f"{i}\tuser{i}.{r.getrandbits(20):05x}@example.com\tUser {i}\t{pw}\t{ts(created)}\t{deleted}\n"


def gen_sessions(s: Scale, r: random.Random) -> Rows:
    for i in range(1, s.sessions + 1):
        created = int(SPAN_S * (i - 1) / s.sessions)
        token = f"{r.getrandbits(256):064x}"
        yield f"{i}\t{token}\t{r.randint(1, s.users)}\t{ts(created)}\t{ts(created + 14 * 86400)}\n"


def gen_organizations(s: Scale, r: random.Random) -> Rows:
    for i in range(1, s.organizations + 1):
        created = int(SPAN_S * (i - 1) / s.organizations)
        yield f"{i}\tOrg {i}\t{r.randint(1, s.users)}\t{ts(created)}\n"


def gen_memberships(s: Scale, r: random.Random) -> Rows:
    owners = random.Random(3)  # the same owners as gen_organizations draws (same seed, same order)
    for i in range(1, s.memberships + 1):
        if i <= s.organizations:
            org, user, role = i, owners.randint(1, s.users), "owner"
        else:
            org, user, role = r.randint(1, s.organizations), r.randint(1, s.users), "member"
        yield f"{i}\t{org}\t{user}\t{role}\t{ts(int(SPAN_S * (i - 1) / s.memberships))}\n"


def gen_subscriptions(s: Scale, r: random.Random) -> Rows:
    for i in range(1, s.subscriptions + 1):
        org = i if i <= s.organizations else r.randint(1, s.organizations)
        end = ts(r.randrange(SPAN_S))
        yield f"{i}\t{org}\t{r.choice(SUB_STATUSES)}\t{r.choice(PLANS)}\t{end}\n"


def gen_usage_counters(s: Scale, r: random.Random) -> Rows:
    months = [date(2024 + m // 12, m % 12 + 1, 1).isoformat() for m in range(24)]
    for i in range(1, s.usage_counters + 1):
        org, month = divmod(i - 1, len(months))
        yield f"{i}\t{org % s.organizations + 1}\t{months[month]}\t{r.randrange(5000)}\n"


def gen_content_jobs(s: Scale, r: random.Random) -> Rows:
    rnd = r.random
    step = SPAN_S / s.content_jobs
    for i in range(1, s.content_jobs + 1):
        created = int(step * (i - 1) + rnd() * step)
        updated = created + int(rnd() * 600)
        user = user_of_job(rnd, s.users)
        org = r.randint(1, s.organizations)
        topic = TOPICS[i % len(TOPICS)]
        yield f"{i}\t{org}\t{user}\t{JOB_STATUSES[i % 20]}\t{topic} #{i}\t{ts(created)}\t{ts(updated)}\n"


def gen_content_artifacts(s: Scale, r: random.Random) -> Rows:
    """Artifacts in job order: 1 to 3 per job (2 on average), until the count is reached."""
    rnd = r.random
    per_job = s.content_artifacts / s.content_jobs
    step = SPAN_S / s.content_jobs
    i = 0
    job = 0
    while i < s.content_artifacts:
        job = job % s.content_jobs + 1
        n = max(1, min(3, int(per_job - 1 + 3 * rnd())))
        created = int(step * (job - 1) + step * rnd())
        for k in range(n):
            i += 1
            if i > s.content_artifacts:
                return
            kind = ARTIFACT_TYPES[k if k < 2 else 2 + (i & 1)]
            body = f"Section {k + 1} of job {job}: generated {kind} text, about eighty characters long."
            yield f"{i}\t{job}\t{kind}\t{body}\t{ts(created + 30 * (k + 1))}\n"


def gen_billing_events(s: Scale, r: random.Random) -> Rows:
    for i in range(1, s.billing_events + 1):
        provider = "stripe" if i % 10 else "paddle"
        payload = f'{{"type": "invoice.paid", "amount": {r.randrange(100, 90000)}}}'
        yield f"{i}\t{provider}\tevt_{i:08d}\t{payload}\t{ts(int(SPAN_S * (i - 1) / s.billing_events))}\n"


#: Load order respects the foreign keys; the seed of each generator is fixed.
TABLES: list[tuple[str, tuple[str, ...], Callable[[Scale, random.Random], Rows], int]] = [
    ("users", ("id", "email", "name", "password_hash", "created_at", "deleted_at"), gen_users, 1),
    ("sessions", ("id", "token", "user_id", "created_at", "expires_at"), gen_sessions, 2),
    ("organizations", ("id", "name", "owner_id", "created_at"), gen_organizations, 3),
    ("memberships", ("id", "org_id", "user_id", "role", "created_at"), gen_memberships, 4),
    ("subscriptions", ("id", "org_id", "status", "plan", "current_period_end"), gen_subscriptions, 5),
    ("usage_counters", ("id", "org_id", "period_month", "used"), gen_usage_counters, 6),
    ("content_jobs", ("id", "org_id", "user_id", "status", "topic", "created_at", "updated_at"), gen_content_jobs, 7),
    ("content_artifacts", ("id", "job_id", "type", "content", "created_at"), gen_content_artifacts, 8),
    ("billing_events", ("id", "provider", "provider_event_id", "payload", "created_at"), gen_billing_events, 9),
]


def load(dsn: str, scale: Scale) -> dict[str, int]:
    """Create the app's tables in an empty database and fill them; returns the row counts."""
    load_schema(dsn, SQL_DIR / "schema")
    counts = scale.counts()
    total = sum(counts[t] for t, *_ in TABLES)
    with timed() as elapsed, progress() as prog, psycopg.connect(dsn, autocommit=True) as conn:
        task = prog.add_task(f"COPY {human(total)} rows", total=total)
        conn.execute("SET session_replication_role = replica")  # no FK triggers during the bulk load
        for table, cols, gen, seed in TABLES:
            prog.update(task, description=f"COPY {table}")
            stmt = sql.SQL("COPY {} ({}) FROM STDIN").format(
                sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, cols))
            )
            buf: list[str] = []
            with conn.cursor() as cur, cur.copy(stmt, writer=QueuedLibpqWriter(cur)) as copy:
                for line in gen(scale, random.Random(seed)):
                    buf.append(line)
                    if len(buf) >= CHUNK:
                        copy.write("".join(buf))
                        prog.advance(task, len(buf))
                        buf.clear()
                if buf:
                    copy.write("".join(buf))
                    prog.advance(task, len(buf))
            conn.execute(
                sql.SQL("SELECT setval(pg_get_serial_sequence({t}, 'id'), (SELECT max(id) FROM {i}))").format(
                    t=sql.Literal(table), i=sql.Identifier(table)
                )
            )
            note(f"COPY {table}: {human(counts[table])} rows at {elapsed():.1f} s")
        prog.update(task, description="VACUUM ANALYZE")
        conn.execute("VACUUM (ANALYZE)")
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
