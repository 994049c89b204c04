"""The S10 deploy: which host gets what, nothing more.

    pyinfra inventory/<env>.py deploy.py        (add --dry to see what would change)

- db_primary: the index migrations (ops migrate apply, online), then the scheduled jobs
- web:        the Nginx CORS config (checked with nginx -t before reload)
- app:        the app's CORS environment file
"""

from pyinfra import host

from ops.deploy import settings_for
from ops.deploy.db import indexes_migrated
from ops.settings import DbSettings

if "db_primary" in host.groups:
    db = settings_for(host, DbSettings, "db", "db_primary")
    indexes_migrated(name="S10 index migrations (online)", settings=db)
