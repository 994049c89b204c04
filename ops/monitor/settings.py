"""Monitoring settings of one environment, from inventory keys ``monitor_<field>`` (validated)."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ops.errors import UsageError
from ops.maintain.analyze import AnalyzeOptions
from ops.maintain.reindex import ReindexOptions
from ops.maintain.units import parse_duration
from ops.maintain.usage import DEFAULT_MIN_STATS_AGE
from ops.settings import CRON_FIELD, SAFE_NAME, SAFE_PATH

SAFE_URL = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~/-]*)?$")


def _duration(value: str) -> str:
    """A duration as Prometheus writes it (``90s``, ``5m``, ``1h``, ``1d``): checked here, not on the host."""
    parse_duration(value, "duration")  # raises a one-line UsageError on nonsense
    if not all(c.isdigit() or c in "smhdw" for c in value) or not value[-1:].isalpha():
        raise ValueError(f"{value!r} is not a Prometheus duration (e.g. 30s, 5m, 1h, 1d)")
    return value


class MonitorSettings(BaseModel):
    """Thresholds, ports and the synthetic CORS check of one environment."""

    model_config = ConfigDict(extra="forbid")

    # statements (pg_stat_statements through postgres_exporter)
    slow_ms: float = Field(100.0, gt=0, description="A statement's mean time above this over `rate_window` alerts")
    slow_min_calls: int = Field(20, ge=1, description="...and only with at least this many calls in that window")
    top_statements: int = Field(20, ge=1, le=200, description="Statements exported (top N by total time)")
    pgss_schema: str = Field("public", description="Schema pg_stat_statements is installed in (extnamespace)")
    app_schema: str = Field("public", description="The app's schema: index and table figures cover it only")
    rate_window: str = Field("10m", description="Window of the slow-statement rate")
    # indexes and statistics
    bloat_threshold_pct: float = Field(
        ReindexOptions.min_bloat, gt=0, lt=100, description="Bloat % at which the reindex job rebuilds an index"
    )
    unused_min_stats_age: str = Field(
        f"{int(DEFAULT_MIN_STATS_AGE // 86400)}d", description="Unused only when the counters are this old"
    )
    stale_min_rows: int = Field(AnalyzeOptions.min_rows, ge=0)
    stale_fraction: float = Field(AnalyzeOptions.fraction, gt=0, le=1)
    # the scheduled jobs
    maintenance_grace: str = Field("1d", description="How late a scheduled job may be before it alerts")
    # alerts: `for_override` replaces every alert's `for:` (the tests and the demo use seconds)
    for_override: str | None = None
    evaluation_interval: str = "30s"
    scrape_interval: str = "30s"
    # the synthetic CORS check (cron on the monitoring host); no url: no check
    cors_url: str | None = Field(None, description="API URL the browser calls, e.g. https://api.example.com/api/me")
    cors_origin: str | None = Field(None, description="The page's origin")
    cors_headers: list[str] = Field(default_factory=lambda: ["Authorization"])
    cors_schedule: str = Field("*/5 * * * *", description="Cron schedule of the check")
    # the exporter on each database host: a login role granted s10_monitoring (sql/roles.sql), no password
    # here (lib/pq reads the exporter user's ~/.pgpass; a Unix socket with peer auth needs none)
    exporter_dsn: str = Field(
        "host=/var/run/postgresql dbname=s10 user=s10_exporter sslmode=disable",
        description="postgres_exporter's DATA_SOURCE_NAME (libpq key=value, no password)",
    )
    exporter_queries_path: str = "/etc/prometheus-postgres-exporter/s10-queries.yml"
    exporter_env_path: str = Field(
        "/etc/default/prometheus-postgres-exporter", description="The Debian unit's EnvironmentFile"
    )
    # the monitoring host
    rules_path: str = "/etc/prometheus/s10-alerts.yml"
    prometheus_config_path: str = "/etc/prometheus/prometheus.yml"
    dashboard_path: str = Field(
        "/etc/s10-ops/grafana/s10-dashboard.json", description="For Grafana's file provisioning"
    )
    prometheus_reload_command: str = Field(
        "systemctl reload prometheus", description="Run after the rules or the config changed (and passed promtool)"
    )
    exporter_restart_command: str = "systemctl restart prometheus-postgres-exporter"
    ops_bin: str = Field("/opt/s10-ops/.venv/bin/ops", description="ops on the monitoring host (the CORS check)")
    cors_cron_file: str = "/etc/cron.d/s10-ops-cors"
    cron_user: str = Field("prometheus", description="Runs the CORS check; must write textfile_dir")
    # where things live and listen
    textfile_dir: str = Field("/var/lib/prometheus/node-exporter", description="node_exporter textfile directory")
    exporter_port: int = Field(9187, gt=0, lt=65536)
    node_port: int = Field(9100, gt=0, lt=65536)
    prometheus_port: int = Field(9090, gt=0, lt=65536)
    runbook_base: str = Field(
        "https://git.example.com/s10/s10-ops/-/blob/main/RUNBOOK.md", description="runbook_url = base + '#anchor'"
    )

    @field_validator(
        "rate_window",
        "unused_min_stats_age",
        "maintenance_grace",
        "for_override",
        "evaluation_interval",
        "scrape_interval",
    )
    @classmethod
    def _prom_duration(cls, value: str | None) -> str | None:
        return None if value is None else _duration(value)

    @field_validator("pgss_schema")
    @classmethod
    def _schema(cls, value: str) -> str:
        if not SAFE_NAME.match(value):
            raise ValueError("a plain schema name (letters, digits, _ . -)")
        return value

    @field_validator(
        "textfile_dir", "exporter_queries_path", "exporter_env_path", "rules_path", "prometheus_config_path",
        "dashboard_path", "ops_bin", "cors_cron_file",
    )  # fmt: skip
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/") or not SAFE_PATH.match(value):
            raise ValueError("must be an absolute plain path")
        return value

    @field_validator("cors_headers")
    @classmethod
    def _headers(cls, value: list[str]) -> list[str]:
        for h in value:
            if not SAFE_NAME.match(h):
                raise ValueError(f"{h!r} is not a header name")
        return value

    @field_validator("exporter_dsn")
    @classmethod
    def _dsn(cls, value: str) -> str:
        from ops.db import check_dsn

        try:
            check_dsn(value)
        except UsageError as exc:
            raise ValueError(str(exc).replace("--dsn", "the exporter DSN")) from None
        if any(c in value for c in "'\"\\$`\n"):
            raise ValueError("no quotes, backslashes, $ or ` (it goes into a systemd EnvironmentFile)")
        return value

    @field_validator("cors_url", "cors_origin")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not SAFE_URL.match(value):
            raise ValueError(f"{value!r} is not a plain http(s) URL (it goes into a crontab line)")
        return value

    @field_validator("cors_schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        fields = value.split()
        if len(fields) != 5 or not all(CRON_FIELD.match(f) for f in fields):
            raise ValueError(f"{value!r} is not five cron fields")
        return " ".join(fields)

    @field_validator("cron_user")
    @classmethod
    def _user(cls, value: str) -> str:
        if not re.match(r"^[a-z_][a-z0-9_-]*$", value):
            raise ValueError(f"{value!r} is not a user name")
        return value

    def seconds(self, field: str) -> float:
        return parse_duration(getattr(self, field), field)
