"""Production: a database primary with two streaming replicas, three web hosts, three app hosts.

    pyinfra inventory/production.py deploy.py --dry
    pyinfra inventory/production.py deploy.py --limit db_primary     # one group at a time

Secrets are not here: on the primary, ops reaches PostgreSQL through the service file named
below, whose password lives in the deploy user's ~/.pgpass (mode 0600), placed out of band.
Migrations and scheduled maintenance run on db_primary only; a replica put there by mistake
is refused (pg_is_in_recovery()).
"""

_ssh = {"ssh_user": "deploy", "ssh_port": 22}

db_primary = (
    [("db1.prod.internal", _ssh)],
    {
        "env": "production",
        "db_ops_bin": "/opt/s10-ops/.venv/bin/ops",
        "db_pg_env": {"PGSERVICE": "s10", "PGSERVICEFILE": "/etc/s10-ops/pg_service.conf"},
        "db_lock_timeout": 2,  # production: give way to the app sooner, retry more
        "db_retries": 10,
    },
)

db_replicas = (
    [("db2.prod.internal", _ssh), ("db3.prod.internal", _ssh)],
    {"env": "production", "db_pg_env": {"PGSERVICE": "s10", "PGSERVICEFILE": "/etc/s10-ops/pg_service.conf"}},
)

web = (
    [("web1.prod.internal", _ssh), ("web2.prod.internal", _ssh), ("web3.prod.internal", _ssh)],
    {"env": "production"},
)

app = (
    [("app1.prod.internal", _ssh), ("app2.prod.internal", _ssh), ("app3.prod.internal", _ssh)],
    {"env": "production"},
)
