"""The embedded default: this machine (@local), everything under .local/ in the repo.

`make demo` starts the PostgreSQL, Nginx and stand-in app it points at. Nothing here touches /etc or the machine's crontab.
"""

from ops import REPO_ROOT
from ops.local.env import LOCAL_DIR, pg_env, web_data

_here = "@local"
_data = {
    "env": "local",
    "local_dir": str(LOCAL_DIR),
    # db_primary
    "db_ops_bin": str(REPO_ROOT / ".venv" / "bin" / "ops"),
    "db_pg_env": pg_env(),
    "db_lock_timeout": 3,
    "db_retries": 5,
    # web + app: Nginx under .local/nginx in front of the stand-in app, CORS answered at the edge
    **web_data(),
    "cors_mode": "edge",
    "cors_origins": ["http://localhost:3000", "http://127.0.0.1:3000"],
    "cors_allow_credentials": True,
    "cors_max_age": 86400,  # the seed's value; browsers cap it (the deploy warns)
    # db_primary: scheduled maintenance, written as a crontab file under .local/ (not the machine's crontab)
    "maint_cron_file": str(LOCAL_DIR / "cron" / "s10-maintenance.crontab"),
    "maint_cron_user": "",
    "maint_log_file": str(LOCAL_DIR / "log" / "maintenance.log"),
    "maint_lock_dir": str(LOCAL_DIR / "run"),
    "maint_metrics_dir": str(LOCAL_DIR / "metrics"),
}

db_primary = ([_here], _data)
web = ([_here], _data)
app = ([_here], _data)
