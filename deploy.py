"""The S10 deploy: which host gets what, nothing more.

    pyinfra inventory/<env>.py deploy.py        (add --dry to see what would change)

- db_primary: the index migrations (ops migrate apply, online), then the scheduled jobs
- web:        the Nginx CORS config (checked with nginx -t before reload)
- app:        the app's CORS environment file
- monitoring (when the inventory has that group): postgres_exporter and its generated queries on
              db_primary and db_replicas; rules (promtool-checked), Prometheus config, dashboard and
              the synthetic CORS check on the monitoring hosts
"""

from pyinfra import host, inventory
from pyinfra.api.exceptions import PyinfraError

from ops.cors import host_plan
from ops.deploy import settings_for
from ops.deploy.cron import maintenance_cron
from ops.deploy.db import indexes_migrated
from ops.deploy.web import cors_deployed
from ops.errors import UsageError
from ops.monitor.plan import DB_GROUPS, MONITORING, host_files, monitor_settings
from ops.settings import DbSettings, MaintenanceSettings

# Every setting is validated here, while pyinfra prepares, before any operation touches a host;
# a bad one stops the deploy with one line naming the field (a PyinfraError shows no traceback).
db = maint = None
if "db_primary" in host.groups:
    db = settings_for(host, DbSettings, "db", "db_primary")
    maint = settings_for(host, MaintenanceSettings, "maint", "db_primary maintenance")
try:
    cors = host_plan(host.data, host.groups, host.name)
    # the monitoring files depend on the whole environment (targets, the primary's schedules)
    monitoring = host_files(host, list(inventory))
    monitor = monitor_settings(host) if monitoring else None
except UsageError as exc:
    raise PyinfraError(str(exc)) from None

if db is not None and maint is not None:
    indexes_migrated(name="S10 index migrations (online)", settings=db)
    maintenance_cron(name="S10 scheduled maintenance (cron)", settings=maint, db=db)

if cors is not None:
    cors_deployed(cors)

if monitor is not None:
    from ops.deploy.monitoring import exporter_deployed, monitoring_deployed

    if any(g in host.groups for g in DB_GROUPS):
        exporter_deployed(monitor, monitoring)
    if MONITORING in host.groups:
        monitoring_deployed(monitor, monitoring)
