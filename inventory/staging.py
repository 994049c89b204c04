"""Staging: one database primary with one replica, two web hosts, two app hosts.

    pyinfra inventory/staging.py deploy.py --dry      # what would change
    pyinfra inventory/staging.py deploy.py            # apply

Secrets are not here: on the primary, ops reaches PostgreSQL through the service file named
below, whose password lives in the deploy user's ~/.pgpass (mode 0600), placed out of band.
"""

_ssh = {"ssh_user": "deploy", "ssh_port": 22}

db_primary = (
    [("db1.staging.internal", _ssh)],
    {
        "env": "staging",
        "db_ops_bin": "/opt/s10-ops/.venv/bin/ops",
        "db_pg_env": {"PGSERVICE": "s10", "PGSERVICEFILE": "/etc/s10-ops/pg_service.conf"},
        "db_lock_timeout": 3,
        "db_retries": 5,
    },
)

db_replicas = (
    [("db2.staging.internal", _ssh)],
    {"env": "staging", "db_pg_env": {"PGSERVICE": "s10", "PGSERVICEFILE": "/etc/s10-ops/pg_service.conf"}},
)

web = ([("web1.staging.internal", _ssh), ("web2.staging.internal", _ssh)], {"env": "staging"})

app = ([("app1.staging.internal", _ssh), ("app2.staging.internal", _ssh)], {"env": "staging"})
