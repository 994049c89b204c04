"""The embedded default environment: everything under .local/ in the repo, nothing outside it.

Used by ``make demo``, ``make demo-down`` and ``inventory/local.py``. The port can be moved
with S10_LOCAL_PGPORT when 54329 is taken, and the directory with S10_LOCAL_DIR (the deploy
benchmark uses a throwaway one).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ops import REPO_ROOT, SQL_DIR
from ops.localpg import Cluster, load_schema

LOCAL_DIR = Path(os.environ.get("S10_LOCAL_DIR") or REPO_ROOT / ".local")
PG_PORT = int(os.environ.get("S10_LOCAL_PGPORT", "54329"))
DBNAME = "s10"


def cluster() -> Cluster:
    return Cluster(root=LOCAL_DIR / "pg", port=PG_PORT)


def pg_env() -> dict[str, str]:
    """libpq environment for the local database (Unix socket, no password)."""
    return cluster().env(DBNAME)


def up() -> None:
    c = cluster()
    c.init()
    c.start()
    c.createdb(DBNAME)
    load_schema(c.dsn(DBNAME), SQL_DIR / "schema")
    print(f"PostgreSQL: {c.socket_dir} port {c.port}, database {DBNAME}")


def down() -> None:
    cluster().stop()
    print("PostgreSQL stopped")


def env_exports() -> None:
    for key, value in pg_env().items():
        print(f"export {key}={value}")


if __name__ == "__main__":
    {"up": up, "down": down, "env": env_exports}[sys.argv[1] if len(sys.argv) > 1 else "up"]()
