# Defaults for every environment; each inventory file overrides what differs.
db_lock_timeout = 3  # seconds a migration step may wait for a lock, per attempt
db_retries = 5  # attempts after the first, with backoff
