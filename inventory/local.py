"""The embedded default: this machine (@local), everything under .local/ in the repo.

`make demo` starts the PostgreSQL it points at. Nothing here touches /etc or the machine's crontab.
"""

from ops import REPO_ROOT
from ops.localenv import LOCAL_DIR, pg_env

_here = "@local"
_data = {
    "env": "local",
    "local_dir": str(LOCAL_DIR),
    # db_primary
    "db_ops_bin": str(REPO_ROOT / ".venv" / "bin" / "ops"),
    "db_pg_env": pg_env(),
    "db_lock_timeout": 3,
    "db_retries": 5,
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
