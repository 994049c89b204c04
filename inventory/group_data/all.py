# Defaults for every environment; each inventory file overrides what differs.
db_lock_timeout = 3  # seconds a migration step may wait for a lock, per attempt
db_retries = 5  # attempts after the first, with backoff
# Scheduled maintenance on the primary (ops/settings.py MaintenanceSettings has the defaults:
# usage weekly, reindex + analyze on the first Sunday 03:00, bloat quarterly, /etc/cron.d file).
maint_reindex = {"schedule": "0 3 1-7 * *", "weekday": 7, "options": ["--max-duration", "2h"]}
