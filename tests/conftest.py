"""Fixtures that start real services on loopback: a throwaway PostgreSQL cluster per session,
a fresh database per test (cloned from a template with the app's tables), and the ops CLI."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from ops import REPO_ROOT, SQL_DIR
from ops.local.pg import Cluster, free_port, load_schema

OPS_BIN = Path(sys.executable).with_name("ops")
TEMPLATE_DB = "s10_template"


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    root = Path(tempfile.mkdtemp(prefix="s10pg-"))
    cluster = Cluster(root=root, port=free_port())
    cluster.init(fsync=False)
    cluster.start()
    cluster.createdb(TEMPLATE_DB)
    load_schema(cluster.dsn(TEMPLATE_DB), SQL_DIR / "schema")
    yield cluster
    cluster.destroy()


@dataclass
class Database:
    cluster: Cluster
    name: str

    @property
    def dsn(self) -> str:
        return self.cluster.dsn(self.name)

    @property
    def env(self) -> dict[str, str]:
        """The process environment with libpq pointed at this database (no password anywhere)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(self.cluster.env(self.name))
        env["COLUMNS"] = "200"
        return env

    def connect(self, autocommit: bool = True) -> psycopg.Connection:
        return psycopg.connect(self.dsn, autocommit=autocommit)

    def fetchall(self, query: str, params: tuple | dict | None = None) -> list[tuple]:
        with self.connect() as conn:
            return conn.execute(query, params).fetchall()  # type: ignore[arg-type]

    def execute(self, query: str, params: tuple | dict | None = None) -> None:
        with self.connect() as conn:
            conn.execute(query, params)  # type: ignore[arg-type]


@pytest.fixture
def db(pg_cluster: Cluster) -> Iterator[Database]:
    """A fresh database with the app's tables (sql/schema/), dropped after the test."""
    with fresh_database(pg_cluster) as database:
        yield database


@contextlib.contextmanager
def fresh_database(cluster: Cluster, prefix: str = "t_") -> Iterator[Database]:
    """A clone of the template (the app's tables, empty), dropped at the end of the block."""
    name = f"{prefix}{uuid.uuid4().hex[:10]}"
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(TEMPLATE_DB))
        )
    try:
        yield Database(cluster, name)
    finally:
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def run_ops(
    *args: str, env: dict[str, str], timeout: float = 120, check: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run the real ops CLI as a user would."""
    proc = subprocess.run(
        [str(OPS_BIN), *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"ops {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def run_local_env(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``python -m ops.local.env`` (what make demo and make demo-down run) as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "ops.local.env", *args],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def ops(db: Database):
    """ops(*args) runs the CLI against the test's database."""

    def _run(*args: str, **kw) -> subprocess.CompletedProcess[str]:
        return run_ops(*args, env=db.env, **kw)

    return _run


# --- CORS: the rendered Nginx in front of the stand-in app, real processes on loopback ---

TEST_ORIGINS = ["http://localhost:3000", "http://127.0.0.1:3000"]


@pytest.fixture(scope="session")
def page_port() -> int:
    """The port of the browser tests' page server: its origin is allowlisted in every stack."""
    return free_port()


@pytest.fixture(scope="session")
def web_stack(page_port: int):
    """web_stack(mode, app_mode=None, **cors) -> a started WebStack, one per distinct set of arguments.

    Stacks are shared by the whole session and stopped at its end. ``app_mode`` renders the
    app's env file for another mode than Nginx's config.
    """
    from ops.cors import CorsSettings
    from ops.local.webstack import WebStack, build_stack

    stacks: dict[tuple, WebStack] = {}

    def settings(mode: str, **kw) -> CorsSettings:
        origins = [] if mode == "same-origin" else [*TEST_ORIGINS, f"http://127.0.0.1:{page_port}"]
        return CorsSettings(**{"mode": mode, "origins": origins, **kw})

    def get(mode: str = "edge", app_mode: str | None = None, **kw) -> WebStack:
        key = (mode, app_mode, repr(sorted(kw.items())))
        if key not in stacks:
            stack = build_stack(
                settings(mode, **kw),
                app_cors=settings(app_mode, **kw) if app_mode else None,
                static_files={"index.html": "<!doctype html><title>S10 front end (test)</title><p>front end</p>"},
            )
            stacks[key] = stack.start()
        return stacks[key]

    yield get
    for stack in stacks.values():
        stack.destroy()


@pytest.fixture
def bloated(db, ops):
    """The seed's indexes, sample rows, and content_jobs' indexes bloated (90% of rows deleted + VACUUM)."""
    ops("migrate", "apply", check=True)
    from ops.db import connect
    from ops.maintain import sample

    with connect(db.dsn) as conn:
        sample.fill(conn, users=5000, orgs=100, sessions=20000, jobs=60000)
        sample.bloat(conn, "content_jobs")
    return db


@pytest.fixture(scope="module")
def edge():
    """A real nginx with one location per CORS fault (tests/playbook_edge.py), for the cors playbook."""
    from tests.nginx_helper import http_config, start_nginx
    from tests.playbook_edge import edge_config

    edge_port, app_port = free_port(), free_port()
    maps, servers = edge_config(edge_port, app_port)
    with start_nginx(http_config(servers, http_extra=maps)) as nginx:
        nginx.ports = [edge_port, app_port]
        yield nginx


@pytest.fixture(autouse=True)
def _threads_are_real_threads(request):
    """pyinfra_cli monkey-patches threading with gevent when imported; in this process that turns the
    tests' threads into greenlets that a blocking psycopg call never yields from (a silent hang).
    Inventories are loaded through `ops render` or pyinfra in a subprocess instead."""
    yield
    patched = sys.modules.get("gevent.monkey")
    if patched is not None and patched.is_module_patched("threading"):
        pytest.fail(f"{request.node.nodeid} imported pyinfra_cli in the test process (gevent patched threading)")
