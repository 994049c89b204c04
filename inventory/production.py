"""Production: a database primary with two streaming replicas, three web hosts, three app hosts.

    pyinfra inventory/production.py deploy.py --dry
    pyinfra inventory/production.py deploy.py --limit db_primary     # one group at a time

Secrets are not here: on the primary, ops reaches PostgreSQL through the service file named
below, whose password lives in the deploy user's ~/.pgpass (mode 0600), placed out of band.
Migrations and scheduled maintenance run on db_primary only; a replica put there by mistake
is refused (pg_is_in_recovery()).
"""

_ssh = {"ssh_user": "deploy", "ssh_port": 22}

# CORS, for both places it can live: Nginx (web) answers preflights at the edge; the app's env
# file (app) then tells the app not to add CORS headers itself, so exactly one layer does.
_cors = {
    "cors_mode": "edge",
    "cors_origins": ["https://app.example.com"],
    "cors_allow_credentials": True,
    "cors_max_age": 86400,  # the seed's value; Chromium caps it at 7200 s, Safari at 600 s
}

# Monitoring (ops/monitor): postgres_exporter with the generated queries on every database host;
# Prometheus with the rendered rules, the dashboard file and the synthetic CORS check on the monitoring
# host. Thresholds are MonitorSettings' defaults (slow statements over 100 ms, bloat over 40 %...).
_monitor = {
    "monitor_exporter_dsn": "host=/var/run/postgresql dbname=s10 user=s10_exporter sslmode=disable",
    "monitor_pgss_schema": "public",  # where CREATE EXTENSION pg_stat_statements put it (extnamespace)
}

db_primary = (
    [("db1.prod.internal", _ssh)],
    {
        "env": "production",
        "db_ops_venv": "/opt/s10-ops/.venv",  # the deploy installs ops there (db_ops_bin: <venv>/bin/ops)
        "db_pg_env": {"PGSERVICE": "s10", "PGSERVICEFILE": "/etc/s10-ops/pg_service.conf"},
        "db_lock_timeout": 2,  # production: give way to the app sooner, retry more
        # scheduled maintenance: /etc/cron.d, metrics for node_exporter's textfile collector;
        # the usage report counts the replicas' scans (services defined in the same service file)
        "maint_cron_file": "/etc/cron.d/s10-ops-maintenance",
        "maint_cron_user": "postgres",
        "maint_metrics_dir": "/var/lib/prometheus/node-exporter",
        "maint_replica_dsns": ["service=s10_db2", "service=s10_db3"],
        **_monitor,
        "db_retries": 10,
    },
)

db_replicas = (
    [("db2.prod.internal", _ssh), ("db3.prod.internal", _ssh)],
    {
        "env": "production",
        "db_pg_env": {"PGSERVICE": "s10", "PGSERVICEFILE": "/etc/s10-ops/pg_service.conf"},
        **_monitor,
    },
)

web = (
    [("web1.prod.internal", _ssh), ("web2.prod.internal", _ssh), ("web3.prod.internal", _ssh)],
    {"env": "production", **_cors, "web_reload_command": "systemctl reload nginx"},
)

app = (
    [("app1.prod.internal", _ssh), ("app2.prod.internal", _ssh), ("app3.prod.internal", _ssh)],
    {"env": "production", **_cors, "app_restart_command": "systemctl restart s10-api"},
)

monitoring = (
    [("mon1.prod.internal", _ssh)],
    {
        "env": "production",
        **_monitor,
        # the synthetic CORS check: the page's origin calling the API, every 5 minutes
        "monitor_cors_url": "https://api.example.com/api/auth/me",
        "monitor_cors_origin": _cors["cors_origins"][0],
    },
)
