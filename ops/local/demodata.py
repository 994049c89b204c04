"""The app's tables filled with realistic data: the demo's data set and the benchmarks' (bench/datagen.py).

Rows are made in Python in chunks and streamed with ``COPY ... FROM STDIN`` (text format), so
generation runs on one core while the server parses on the other. Foreign keys are not checked
during the load (``session_replication_role = replica``); the generator only makes valid
references. Deterministic: the same scale gives the same data.

Shapes, chosen to look like the app's: a user's jobs are skewed (a few heavy users, many light
ones), jobs and artifacts are created in id order over two years, each job has 1 to 3 artifacts.

Scales: ``full`` is the issue's size (200k users, 2M content_jobs, 4M content_artifacts); the
others divide it. ``demo`` (a tenth: 200k content_jobs) loads in seconds and is large enough that
a missing index shows as a sequential scan.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta

import psycopg
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter

from ops import SQL_DIR
from ops.local.pg import load_schema


@dataclass(frozen=True)
class Scale:
    """Row counts of the app's tables. ``full`` is the issue's; the others divide it."""

    name: str
    users: int
    sessions: int
    organizations: int
    memberships: int
    subscriptions: int
    usage_counters: int
    content_jobs: int
    content_artifacts: int
    billing_events: int

    @classmethod
    def divided(cls, name: str, divisor: int) -> Scale:
        full = SCALES["full"]
        counts = {k: max(10, v // divisor) for k, v in asdict(full).items() if k != "name"}
        return cls(name=name, **counts)

    def counts(self) -> dict[str, int]:
        return {k: v for k, v in asdict(self).items() if k != "name"}

    def describe(self) -> str:
        return ", ".join(f"{human(v)} {k}" for k, v in self.counts().items())


SCALES: dict[str, Scale] = {
    "full": Scale(
        name="full",
        users=200_000,
        sessions=500_000,
        organizations=20_000,
        memberships=250_000,
        subscriptions=24_000,
        usage_counters=240_000,
        content_jobs=2_000_000,
        content_artifacts=4_000_000,
        billing_events=100_000,
    )
}
SCALES["demo"] = Scale.divided("demo", 10)
SCALES["small"] = Scale.divided("small", 20)
SCALES["tiny"] = Scale.divided("tiny", 1000)


def human(n: float) -> str:
    """200000 -> 200k, 2000000 -> 2M."""
    for div, suffix in ((1_000_000, "M"), (1_000, "k")):
        if abs(n) >= div:
            value = n / div
            return f"{value:.0f}{suffix}" if value == int(value) else f"{value:.1f}{suffix}"
    return str(n)


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


def load(dsn: str, scale: Scale, advance: Callable[[str, int], None] | None = None) -> dict[str, int]:
    """Create the app's tables in an empty database and fill them; returns the row counts.

    ``advance(table, rows)`` is called after each chunk (the benchmarks draw a progress bar with it).
    """
    load_schema(dsn, SQL_DIR / "schema")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")  # no FK triggers during the bulk load
        for table, cols, gen, seed in TABLES:
            stmt = sql.SQL("COPY {} ({}) FROM STDIN").format(
                sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, cols))
            )
            buf: list[str] = []
            with conn.cursor() as cur, cur.copy(stmt, writer=QueuedLibpqWriter(cur)) as copy:
                for line in gen(scale, random.Random(seed)):
                    buf.append(line)
                    if len(buf) >= CHUNK:
                        copy.write("".join(buf))
                        if advance:
                            advance(table, len(buf))
                        buf.clear()
                if buf:
                    copy.write("".join(buf))
                    if advance:
                        advance(table, len(buf))
            conn.execute(
                sql.SQL("SELECT setval(pg_get_serial_sequence({t}, 'id'), (SELECT max(id) FROM {i}))").format(
                    t=sql.Literal(table), i=sql.Identifier(table)
                )
            )
        # the COPYs' row counts reach the statistics at the next flush: force it before ANALYZE
        # resets them, or a table would look changed since its last ANALYZE
        conn.execute("SELECT pg_stat_force_next_flush()")
        conn.execute("SELECT 1")
        conn.execute("VACUUM (ANALYZE)")
    return scale.counts()
