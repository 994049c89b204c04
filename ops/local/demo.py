"""What makes ``make demo`` worth diagnosing: the app's data, pg_stat_statements, and a short workload.

The demo database gets the app's tables filled at the ``demo`` scale (ops/local/demodata.py:
20k users, 200k content_jobs, 400k content_artifacts; about 4 s), the extensions a production
database of this app has (pg_stat_statements, and hypopg when its package is installed), and,
once the deploy has built the S10 indexes, a short run of the app's own queries. One of them,
"the organizations of a user", has no index that starts with ``memberships.user_id``: it is the
heaviest statement in ``ops playbook top-queries`` and the RUNBOOK's slow query.

Each step does nothing when already done (a second ``make demo`` changes nothing).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from ops.local import demodata

DEMO_SCALE = demodata.SCALES["demo"]

#: The app's requests, as the app sends them (psycopg binds the parameters: pg_stat_statements sees $n).
WORKLOAD: list[tuple[str, Callable[[random.Random], tuple[Any, ...]]]] = [
    # GET /api/orgs: the organizations of the signed-in user; no index starts with user_id
    (
        "SELECT org_id, role FROM memberships WHERE user_id = %s",
        lambda r: (r.randint(1, DEMO_SCALE.users),),
    ),
    # GET /api/jobs: the seed's query, served by idx_content_jobs_user_created_desc
    (
        "SELECT * FROM content_jobs WHERE user_id = %s ORDER BY created_at DESC LIMIT 50",
        lambda r: (r.randint(1, DEMO_SCALE.users),),
    ),
    # every request: the user behind the session token (ix_sessions_token), then the user
    ("SELECT user_id, expires_at FROM sessions WHERE token = %s", lambda r: (r.choice(_tokens),)),
    (
        "SELECT id, email, name FROM users WHERE id = %s AND deleted_at IS NULL",
        lambda r: (r.randint(1, DEMO_SCALE.users),),
    ),
    # GET /api/jobs/{id}: a job's artifacts (idx_content_artifacts_job_type)
    (
        "SELECT type, content FROM content_artifacts WHERE job_id = %s ORDER BY type",
        lambda r: (r.randint(1, DEMO_SCALE.content_jobs),),
    ),
]
WORKLOAD_ROUNDS = 300
_tokens: list[str] = []  # session tokens the workload presents, read from the data before it starts


def load_data(dsn: str) -> bool:
    """Fill the app's tables when they are empty; True when it loaded them."""
    with psycopg.connect(dsn) as conn:
        empty = conn.execute("SELECT NOT EXISTS (SELECT 1 FROM content_jobs)").fetchone()
    if empty and not empty[0]:
        return False
    demodata.load(dsn, DEMO_SCALE)
    return True


APP_OWNER = "s10_app"  # the role that owns the app's tables, as in production (never a superuser)


def app_owner(dsn: str) -> None:
    """The app's tables owned by their own NOLOGIN role, as the app's migrations leave them in production.

    ``ops roles apply`` refuses to make s10_maintenance a member of a superuser, so the demo's tables
    must not be owned by the cluster's superuser.
    """
    with psycopg.connect(dsn, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_OWNER,)).fetchone():
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(APP_OWNER)))
        owned = {
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tableowner = %s", (APP_OWNER,)
            )
        }
        for table, *_ in demodata.TABLES:
            if table not in owned:
                conn.execute(
                    sql.SQL("ALTER TABLE {} OWNER TO {}").format(
                        sql.Identifier("public", table), sql.Identifier(APP_OWNER)
                    )
                )


def extensions(dsn: str) -> list[str]:
    """pg_stat_statements (the cluster preloads it) and hypopg when installed; the names created."""
    created = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        available = {
            row[0]
            for row in conn.execute(
                "SELECT name FROM pg_available_extensions WHERE name IN ('pg_stat_statements', 'hypopg') "
                "AND installed_version IS NULL"
            )
        }
        for name in ("pg_stat_statements", "hypopg"):
            if name in available:
                conn.execute(sql.SQL("CREATE EXTENSION {}").format(sql.Identifier(name)))
                created.append(name)
    return created


def workload(dsn: str, marker: Path) -> bool:
    """Run the app's queries once (statistics reset first, so they are what top-queries shows).

    ``marker`` records that it ran: a second ``make demo`` does not add to the statistics.
    """
    if marker.exists():
        return False
    rnd = random.Random(13)
    with psycopg.connect(dsn, autocommit=True) as conn:
        _tokens[:] = [row[0] for row in conn.execute("SELECT token FROM sessions ORDER BY id LIMIT 500")]
        conn.execute("SELECT pg_stat_statements_reset()")
        for _ in range(WORKLOAD_ROUNDS):
            for statement, params in WORKLOAD:
                conn.execute(statement, params(rnd)).fetchall()  # type: ignore[arg-type]
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text("the demo workload ran; delete this file to run it again\n")
    return True
