"""Three bare Debian 12 containers (make docker-demo): db1 (db_primary), web1 (web), app1 (app).

    make docker-demo      # engine, image, containers, then: pyinfra -y inventory/docker.py deploy.py

The containers share this machine's network namespace, so every service listens on a loopback
port chosen not to collide with `make demo`: PostgreSQL on S10_DOCKER_PGPORT (55432), Nginx on
S10_DOCKER_WEBPORT (18080). They cannot reach the package index over TLS, so ops's dependencies
go up as a wheelhouse (db_ops_wheelhouse). Nothing secret here: the login role's password is
generated on db1 and stays in its password file.
"""

import os

from ops import SQL_DIR
from ops.local.docker import container_name, wheelhouse

PREFIX = os.environ.get("S10_DOCKER_PREFIX", "")  # the benchmark's own containers: b<pid>db1, ...
PG_PORT = int(os.environ.get("S10_DOCKER_PGPORT", "55432"))
WEB_PORT = int(os.environ.get("S10_DOCKER_WEBPORT", "18080"))

_cors = {
    "env": "docker",
    "cors_mode": "edge",
    "cors_origins": ["http://localhost:3000", "http://127.0.0.1:3000"],
    "cors_allow_credentials": True,
    "cors_max_age": 86400,
}

db_primary = (
    [f"@docker/{container_name(PREFIX + 'db1')}"],
    {
        "env": "docker",
        "db_manage_server": True,
        "db_allow_restart": True,
        "db_port": PG_PORT,
        "db_name": "s10",
        "db_ops_venv": "/opt/s10-ops/.venv",
        "db_ops_wheelhouse": str(wheelhouse()),
        # the app's tables for the new, empty database (in a real environment the app creates them)
        "db_bootstrap_schema": str(SQL_DIR / "schema"),
        "db_lock_timeout": 3,
        "db_retries": 5,
        "maint_cron_file": "/etc/cron.d/s10-ops-maintenance",
        "maint_cron_user": "postgres",
        "maint_metrics_dir": "/var/lib/prometheus/node-exporter",
    },
)

web = (
    [f"@docker/{container_name(PREFIX + 'web1')}"],
    {
        **_cors,
        "web_listen": f"127.0.0.1:{WEB_PORT}",
        "web_upstream": "127.0.0.1:9",  # no app runs in the demo: the preflight is answered at the edge
        "web_reload_command": "service nginx reload",
    },
)

app = ([f"@docker/{container_name(PREFIX + 'app1')}"], {**_cors, "app_env_path": "/etc/s10/cors.env"})
