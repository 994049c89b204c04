"""Sample data with real bloat, for the tests, the benchmark and a demo: never run it on production.

``fill`` loads the app's tables with generated rows (set-based INSERTs, fast); ``bloat`` deletes
most rows of one table, scattered so that every index page keeps a few, then VACUUMs: the index
pages stay allocated at low leaf density, which is what pgstatindex and ``ops maintain bloat`` see.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

FILL = """
INSERT INTO {schema}.users (email, name, created_at)
SELECT 'user' || lpad(g::text, 9, '0') || '@example.com', 'User ' || g, now() - make_interval(mins => g)
FROM generate_series(1, %(users)s) g;
INSERT INTO {schema}.organizations (name, owner_id)
SELECT 'Org ' || g, 1 + (g::bigint * 7919) %% %(users)s FROM generate_series(1, %(orgs)s) g;
INSERT INTO {schema}.sessions (token, user_id, created_at)
SELECT md5(g::text), 1 + (g::bigint * 104729) %% %(users)s, now() - make_interval(secs => g)
FROM generate_series(1, %(sessions)s) g;
INSERT INTO {schema}.content_jobs (org_id, user_id, status, topic, created_at)
SELECT 1 + (g::bigint * 31) %% %(orgs)s, 1 + (g::bigint * 7919) %% %(users)s,
       (ARRAY['queued', 'running', 'done', 'failed'])[1 + g %% 4], 'topic ' || g %% 1000,
       now() - make_interval(secs => g)
FROM generate_series(1, %(jobs)s) g;
"""


def fill(
    conn: psycopg.Connection[Any], *, users: int, orgs: int, sessions: int, jobs: int, schema: str = "public"
) -> None:
    """Insert generated rows into users, organizations, sessions and content_jobs of ``schema``, then ANALYZE."""
    params = {"users": users, "orgs": orgs, "sessions": sessions, "jobs": jobs}
    for statement in FILL.split(";"):
        if statement.strip():
            conn.execute(sql.SQL(statement).format(schema=sql.Identifier(schema)), params)  # type: ignore[arg-type]
    conn.execute("ANALYZE")


def bloat(conn: psycopg.Connection[Any], table: str, keep_every: int = 10, schema: str = "public") -> None:
    """Delete all rows of ``table`` but one in ``keep_every`` (by id), then VACUUM it: bloated indexes."""
    name = sql.Identifier(schema, table)
    conn.execute(sql.SQL("DELETE FROM {} WHERE id %% %s <> 0").format(name), (keep_every,))
    conn.execute(sql.SQL("VACUUM {}").format(name))
