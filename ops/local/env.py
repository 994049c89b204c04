"""The embedded default environment: everything under .local/ in the repo, nothing outside it.

Used by ``make demo``, ``make demo-down`` and ``inventory/local.py``. The ports can be moved
with S10_LOCAL_PGPORT (54329), S10_LOCAL_WEBPORT (Nginx, 8080) and S10_LOCAL_APPPORT (the
stand-in app, 8000) when taken, and the directory with S10_LOCAL_DIR (the deploy benchmark
uses a throwaway one).

Here this module plays the part systemd plays on a real host: it starts and stops the local
Nginx and the stand-in app (``web-up``/``down``), and the deploy calls ``nginx-reload`` and
``app-restart`` after it changed their config.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ops import REPO_ROOT, SQL_DIR
from ops.errors import OpsError
from ops.local.nginx import Nginx
from ops.local.pg import Cluster, load_schema
from ops.local.standin import StandIn

LOCAL_DIR = Path(os.environ.get("S10_LOCAL_DIR") or REPO_ROOT / ".local")
PG_PORT = int(os.environ.get("S10_LOCAL_PGPORT", "54329"))
DBNAME = "s10"
WEB_PORT = int(os.environ.get("S10_LOCAL_WEBPORT", "8080"))
APP_PORT = int(os.environ.get("S10_LOCAL_APPPORT", "8000"))
NGINX_PREFIX = LOCAL_DIR / "nginx"
APP_DIR = LOCAL_DIR / "app"


def cluster() -> Cluster:
    return Cluster(root=LOCAL_DIR / "pg", port=PG_PORT)


def pg_env() -> dict[str, str]:
    """libpq environment for the local database (Unix socket, no password)."""
    return cluster().env(DBNAME)


def local_nginx() -> Nginx:
    return Nginx(prefix=NGINX_PREFIX, main_conf=NGINX_PREFIX / "conf" / "nginx.conf")


def local_standin() -> StandIn:
    return StandIn(
        env_file=APP_DIR / "cors.env",
        port=APP_PORT,
        pidfile=APP_DIR / "standin.pid",
        logfile=APP_DIR / "standin.log",
    )


def web_data() -> dict[str, object]:
    """The web_* and app_* inventory data of the embedded default (everything under .local/)."""
    python = REPO_ROOT / ".venv" / "bin" / "python"
    nginx = local_nginx()
    return {
        "web_prefix": str(nginx.prefix),
        "web_main_conf": str(nginx.main_conf),
        "web_site_path": str(NGINX_PREFIX / "conf" / "s10-site.conf"),
        "web_access_log": str(NGINX_PREFIX / "logs" / "access.log"),
        "web_listen": f"127.0.0.1:{WEB_PORT}",
        "web_upstream": f"127.0.0.1:{APP_PORT}",
        "web_static_root": str(LOCAL_DIR / "www"),
        "web_staging_dir": str(NGINX_PREFIX / "staging"),
        "web_reload_command": f"{python} -m ops.local.env nginx-reload",
        "app_env_path": str(local_standin().env_file),
        "app_restart_command": f"{python} -m ops.local.env app-restart",
    }


def web_up() -> None:
    """Start the stand-in app and Nginx from the deployed config (no-op for what already runs)."""
    app, nginx = local_standin(), local_nginx()
    if not app.env_file.exists() or not nginx.main_conf.exists():
        raise SystemExit("no deployed config under .local/: run pyinfra -y inventory/local.py deploy.py first")
    app.start()
    print(f"stand-in app (for the seed's API): 127.0.0.1:{APP_PORT}")
    nginx.start()
    print(f"Nginx: http://127.0.0.1:{WEB_PORT}/api/auth/me (prefix {nginx.prefix}); try the seed's preflight:")
    print(
        f"  curl -si -X OPTIONS http://127.0.0.1:{WEB_PORT}/api/auth/me -H 'Origin: http://localhost:3000' "
        "-H 'Access-Control-Request-Method: GET' -H 'Access-Control-Request-Headers: authorization'"
    )


def nginx_reload() -> None:
    print("Nginx reloaded" if local_nginx().reload() else "Nginx not running: nothing to reload")


def app_restart() -> None:
    print("stand-in app restarted" if local_standin().restart_if_running() else "stand-in app not running")


def up() -> None:
    c = cluster()
    c.init()
    c.start()
    c.createdb(DBNAME)
    load_schema(c.dsn(DBNAME), SQL_DIR / "schema")
    print(f"PostgreSQL: {c.socket_dir} port {c.port}, database {DBNAME}")


def down() -> None:
    local_nginx().stop()
    local_standin().stop()
    cluster().stop()
    print("Nginx, stand-in app and PostgreSQL stopped")


def env_exports() -> None:
    for key, value in pg_env().items():
        print(f"export {key}={value}")


if __name__ == "__main__":
    commands = {
        "up": up,
        "down": down,
        "env": env_exports,
        "web-up": web_up,
        "nginx-reload": nginx_reload,
        "app-restart": app_restart,
    }
    try:
        commands[sys.argv[1] if len(sys.argv) > 1 else "up"]()
    except OpsError as exc:  # one line, no traceback (a port taken, nginx missing...)
        raise SystemExit(f"ops.local.env: {exc}") from None
