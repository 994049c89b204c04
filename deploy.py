"""The S10 deploy: which host gets what, nothing more.

    pyinfra inventory/<env>.py deploy.py        (add --dry to see what would change, with diffs)

- db_primary: ops (into db_ops_venv, when set); PostgreSQL 15, its settings, the app database,
  login role and service file (when db_manage_server); extensions and roles (ops provision);
  the index migrations (ops migrate apply, online); cron, logrotate and the scheduled jobs
- web:        Nginx from Debian's packages (a host's own Nginx), then the CORS site (nginx -t before reload)
- app:        the app's CORS environment file
- monitoring (when the inventory has that group): postgres_exporter and its generated queries on
              db_primary and db_replicas; rules (promtool-checked), Prometheus config, dashboard and
              the synthetic CORS check on the monitoring hosts

README "Deploy" says what each kind of host gets, what needs a restart and how a managed database differs.
"""

import shlex
import sys

from pyinfra import host, inventory, state
from pyinfra.api.exceptions import PyinfraError

from ops.cors import host_plan
from ops.deploy import settings_for
from ops.deploy.cron import cron_system, maintenance_cron
from ops.deploy.db import indexes_migrated, ops_command, provisioned, quick_state
from ops.deploy.install import ops_installed, ops_is_current
from ops.deploy.packages import debian_packages
from ops.deploy.provisioning import db_settings
from ops.deploy.server import pending_restart_known, restart_check, server_managed
from ops.deploy.web import cors_deployed
from ops.errors import UsageError
from ops.monitor.plan import DB_GROUPS, MONITORING, host_files, monitor_settings
from ops.settings import MaintenanceSettings

# --dry shows what would change with diffs (the Nginx site, env file, crontab, PostgreSQL settings).
if "--dry" in sys.argv:
    state.config.DIFF = True

# Every setting is validated here, while pyinfra prepares, before any operation touches a host;
# a bad one stops the deploy with one line naming the field (a PyinfraError shows no traceback).
db = maint = prov = None
if "db_primary" in host.groups:
    try:
        prov, db = db_settings(host.data, f"{host.name} (db_primary)")
    except UsageError as exc:
        raise PyinfraError(str(exc)) from None
    maint = settings_for(host, MaintenanceSettings, "maint", "db_primary maintenance")
try:
    cors = host_plan(host.data, host.groups, host.name)
    # the monitoring files depend on the whole environment (targets, the primary's schedules)
    monitoring = host_files(host, list(inventory))
    monitor = monitor_settings(host) if monitoring else None
except UsageError as exc:
    raise PyinfraError(str(exc)) from None

if db is not None and maint is not None and prov is not None:
    conf = None
    if prov.manage_server:
        conf = server_managed(prov, owner=maint.cron_user or "postgres")
    fresh_ops = not ops_is_current(prov)
    # One psql query answers "nothing to do" for the migrations and ops provision without starting
    # Python on the host; anything else falls back to the full ops facts.
    quick = quick_state(db) if not fresh_ops else {"migrations_ok": False, "provision_ok": False}
    if prov.installs_ops:
        debian_packages(name="Python venv packages (for ops)", packages=["python3-venv"])
        ops_installed(name=f"ops installed in {prov.ops_venv}", prov=prov)
    if prov.manage_server:
        # Superuser steps as postgres over the local socket (peer authentication): no password.
        provision = "runuser -u postgres -- env " + " ".join(
            [f"PGPORT={prov.port}", f"PGDATABASE={shlex.quote(prov.name)}", shlex.quote(db.ops_bin), "provision"]
            + ["--extension-schema", shlex.quote(prov.extension_schema), "--grant-to", prov.login_role]
        )
    else:
        provision = ops_command(db, "provision", "--extension-schema", prov.extension_schema)
    provisioned(
        name="Extensions and roles (ops provision)",
        command=provision,
        fresh_ops=fresh_ops,
        strict=prov.manage_server,
        quick_ok=quick["provision_ok"],
    )
    indexes_migrated(
        name="S10 index migrations (online)", settings=db, fresh_ops=fresh_ops, quick_ok=quick["migrations_ok"]
    )
    if prov.installs_ops:
        cron_system(maint)  # the deploy installs ops, so also what runs its jobs: cron and logrotate
    maintenance_cron(name="S10 scheduled maintenance (cron)", settings=maint, db=db)

if cors is not None:
    cors_deployed(cors)

if monitor is not None:
    from ops.deploy.monitoring import exporter_deployed, monitoring_deployed

    if any(g in host.groups for g in DB_GROUPS):
        exporter_deployed(monitor, monitoring)
    if MONITORING in host.groups:
        monitoring_deployed(monitor, monitoring)

if prov is not None and prov.manage_server and conf is not None:
    # Last: a setting that waits for a restart the inventory does not allow fails the deploy here.
    pending = pending_restart_known(prov)
    restart_check(name="PostgreSQL restart needed?", prov=prov, _if=lambda: pending or conf.did_change())
