"""Test data for the playbooks: the seed's content_jobs at a size where plans mean something.

``load_jobs`` fills a database with 1,000 users, 10 organizations and ``jobs`` content_jobs
(200 per user, one a minute back in time) with generate_series, then ANALYZEs it, as a
production table would be. Autovacuum is switched off on content_jobs so that a test's
"bulk load without ANALYZE" stays un-analyzed while it looks.
"""

from __future__ import annotations

import psycopg

SEED_SLOW_QUERY = "SELECT * FROM content_jobs WHERE user_id = $1 ORDER BY created_at DESC LIMIT 50"

LOAD = [
    "INSERT INTO users (email) SELECT 'user' || g || '@example.test' FROM generate_series(1, 1000) AS g",
    "INSERT INTO organizations (name, owner_id) SELECT 'org ' || g, g FROM generate_series(1, 10) AS g",
    "INSERT INTO content_jobs (org_id, user_id, status, topic, created_at)"
    " SELECT 1 + g %% 10, 1 + g %% 1000, 'done', 'topic ' || g, now() - g * interval '1 minute'"
    " FROM generate_series(1, %(jobs)s) AS g",
    "ALTER TABLE content_jobs SET (autovacuum_enabled = off)",
]


def load_jobs(dsn: str, jobs: int = 200_000) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        with conn.transaction():
            for statement in LOAD:
                conn.execute(statement, {"jobs": jobs})
        conn.execute("ANALYZE")


def bulk_load_for_user(dsn: str, user_id: int, rows: int) -> None:
    """A bulk load that changes the data's shape (one user gets ``rows`` more jobs), without ANALYZE."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO content_jobs (org_id, user_id, created_at) "
            "SELECT 1, %(user)s, now() - g * interval '1 second' FROM generate_series(1, %(rows)s) AS g",
            {"user": user_id, "rows": rows},
        )
        conn.execute("SELECT pg_stat_force_next_flush()")  # the counters the playbook reads, now
        conn.execute("SELECT 1")


def hypopg_available(dsn: str) -> bool:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'hypopg'").fetchone() is not None


def grant_diagnosis_role(dsn: str) -> None:
    """The least-privileged diagnosis role with SELECT on the app's tables (as sql/roles.sql grants it).

    Roles are per cluster, grants per database: call it for each database (a template's grants are copied).
    """
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DO $$ BEGIN CREATE ROLE s10_diagnosis NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
        conn.execute("GRANT USAGE ON SCHEMA public TO s10_diagnosis")
        conn.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO s10_diagnosis")
