"""Monitoring settings of one environment, from inventory keys ``monitor_<field>`` (validated)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ops.maintain.analyze import AnalyzeOptions
from ops.maintain.reindex import ReindexOptions
from ops.maintain.units import parse_duration
from ops.maintain.usage import DEFAULT_MIN_STATS_AGE
from ops.settings import SAFE_NAME, SAFE_PATH


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
    # where things live and listen
    textfile_dir: str = Field("/var/lib/prometheus/node-exporter", description="node_exporter textfile directory")
    exporter_port: int = Field(9187, gt=0, lt=65536)
    node_port: int = Field(9100, gt=0, lt=65536)
    prometheus_port: int = Field(9090, gt=0, lt=65536)
    runbook_base: str = Field(
        "https://git.example.com/s10/s10-ops/-/blob/main/RUNBOOK.md", description="runbook_url = base + '#anchor'"
    )

    @field_validator("rate_window", "unused_min_stats_age", "maintenance_grace", "for_override",
                     "evaluation_interval", "scrape_interval")
    @classmethod
    def _prom_duration(cls, value: str | None) -> str | None:
        return None if value is None else _duration(value)

    @field_validator("pgss_schema")
    @classmethod
    def _schema(cls, value: str) -> str:
        if not SAFE_NAME.match(value):
            raise ValueError("a plain schema name (letters, digits, _ . -)")
        return value

    @field_validator("textfile_dir")
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

    def seconds(self, field: str) -> float:
        return parse_duration(getattr(self, field), field)
