"""The S10 deploy: which host gets what, nothing more.

    pyinfra inventory/<env>.py deploy.py        (add --dry to see what would change)

- db_primary: the index migrations (ops migrate apply, online), then the scheduled jobs
- web:        the Nginx CORS config (checked with nginx -t before reload)
- app:        the app's CORS environment file
"""

from pyinfra import host

from ops.deploy.cron import maintenance_cron
from ops.deploy.db import indexes_migrated
from ops.settings import DbSettings, MaintenanceSettings, host_settings

if "db_primary" in host.groups:
    db = host_settings(DbSettings, host.data, "db", f"{host.name} (db_primary)")
    indexes_migrated(name="S10 index migrations (online)", settings=db)
    maint = host_settings(MaintenanceSettings, host.data, "maint", f"{host.name} (db_primary maintenance)")
    maintenance_cron(name="S10 scheduled maintenance (cron)", settings=maint, db=db)
