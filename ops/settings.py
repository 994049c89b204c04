"""Validated settings for each environment, read from inventory host/group data.

Every model rejects bad values with the field and the reason before any host is touched.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ops.errors import UsageError

# libpq variables a deploy may pass; PGPASSWORD is deliberately absent (it would show in ps).
PG_ENV_KEYS = {
    "PGHOST",
    "PGPORT",
    "PGUSER",
    "PGDATABASE",
    "PGSERVICE",
    "PGSERVICEFILE",
    "PGPASSFILE",
    "PGSSLMODE",
    "PGSSLROOTCERT",
    "PGCONNECT_TIMEOUT",
    "PGAPPNAME",
    "PGTARGETSESSIONATTRS",
    # not libpq's, ops's own: the app's schema and the ledger's (ops migrate, maintain, roles)
    "S10_SCHEMA",
    "S10_LEDGER_SCHEMA",
}


class DbSettings(BaseModel):
    """How the deploy reaches the primary's database and runs ``ops`` there."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)  # inputs may hold secrets

    ops_bin: str = Field(description="Path of the ops console script on the host")
    pg_env: dict[str, str] = Field(default_factory=dict, description="libpq environment, no password")
    lock_timeout: float = Field(3.0, ge=0.05, le=600)  # the range of the CLI's --lock-timeout
    retries: int = Field(5, ge=0, le=100)
    maintenance_work_mem: str | None = Field(
        None, description="Sort memory per index build, e.g. 1GB (default: sized for the server)"
    )
    parallel_workers: int | None = Field(None, ge=0, le=64, description="max_parallel_maintenance_workers per build")

    @field_validator("maintenance_work_mem")
    @classmethod
    def _size(cls, value: str | None) -> str | None:
        if value is not None:
            from ops.maintain.units import parse_size

            try:
                n = parse_size(value)
            except UsageError as exc:
                raise ValueError(str(exc)) from None
            if not 1024**2 <= n <= 2 * 1024**4:
                raise ValueError("must be between 1MB and 2TB")
        return value

    @field_validator("pg_env")
    @classmethod
    def _no_password(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if key == "PGPASSWORD":
                raise ValueError("PGPASSWORD is not allowed (it shows in ps): use PGPASSFILE or PGSERVICEFILE")
            if key not in PG_ENV_KEYS:
                raise ValueError(f"unknown libpq variable {key!r} (allowed: {', '.join(sorted(PG_ENV_KEYS))})")
        return value

    @field_validator("ops_bin")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must be an absolute path")
        return value


def validate(model: type[BaseModel], data: dict[str, Any], where: str) -> Any:
    """Build a settings model; one clear line per problem, naming the field, on failure."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(settings)'}: {err['msg']}" for err in exc.errors()
        )
        raise UsageError(f"bad settings for {where}: {problems}") from None


def host_settings(model: type[BaseModel], host_data: Any, prefix: str, where: str) -> Any:
    """Collect ``<prefix>_<field>`` keys from pyinfra host data into a model (e.g. db_ops_bin)."""
    data = {}
    for key in model.model_fields:
        value = host_data.get(f"{prefix}_{key}")
        if value is not None:
            data[key] = value
    return validate(model, data, where)


SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


CRON_FIELD = re.compile(r"^[0-9*,/-]+$")


class MaintenanceJob(BaseModel):
    """One scheduled maintenance job: when it runs and the extra flags its commands get."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)  # inputs may hold secrets

    schedule: str = Field(description="Five cron fields: minute hour day-of-month month day-of-week")
    weekday: int | None = Field(
        None, ge=1, le=7, description="Run only on this ISO weekday (7 = Sunday); with days 1-7: 'first Sunday'"
    )
    options: list[str] = Field(default_factory=list, description="Extra flags, e.g. ['--min-size', '10MB']")
    enabled: bool = True

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        fields = value.split()
        if len(fields) != 5 or not all(CRON_FIELD.match(f) for f in fields):
            raise ValueError(f"{value!r} is not five cron fields (minute hour day-of-month month day-of-week)")
        return " ".join(fields)

    @field_validator("options")
    @classmethod
    def _safe_options(cls, value: list[str]) -> list[str]:
        for opt in value:
            if not SAFE_NAME.match(opt.replace("=", "").replace("%", "")):
                raise ValueError(f"option {opt!r} has characters a crontab line cannot carry safely")
            if "%" in opt:
                raise ValueError(f"option {opt!r}: '%' means newline in a crontab")
        return value


class MaintenanceSettings(BaseModel):
    """Where and when the deploy installs ``ops maintain`` jobs on the database primary."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)  # inputs may hold secrets

    cron_file: str = Field("/etc/cron.d/s10-ops-maintenance", description="The crontab file the deploy writes")
    cron_user: str = Field(
        "postgres", description="User column of a /etc/cron.d file; '' writes a user crontab (no user column)"
    )
    log_file: str = Field("/var/log/s10-ops/maintenance.log", description="Append job output here, or 'syslog'")
    lock_dir: str = Field("/run/lock", description="Directory of the flock files")
    metrics_dir: str | None = Field(None, description="node_exporter textfile directory; None writes no metrics")
    replica_dsns: list[str] = Field(
        default_factory=list,
        description="libpq DSNs (no password) of the replicas, so the usage report counts their scans",
    )
    usage: MaintenanceJob = MaintenanceJob(schedule="0 6 * * 1")  # weekly, Monday 06:00
    reindex: MaintenanceJob = MaintenanceJob(schedule="0 3 1-7 * *", weekday=7)  # first Sunday 03:00, then analyze
    bloat: MaintenanceJob = MaintenanceJob(schedule="0 4 1-7 1,4,7,10 *", weekday=7)  # quarterly, first Sunday

    @field_validator("cron_file", "lock_dir", "metrics_dir")
    @classmethod
    def _absolute_path(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError("must be an absolute path")
        if value is not None and not SAFE_PATH.match(value):
            raise ValueError("must be a plain path (letters, digits, / . _ -)")
        return value

    @field_validator("log_file")
    @classmethod
    def _log(cls, value: str) -> str:
        if value != "syslog" and (not value.startswith("/") or not SAFE_PATH.match(value)):
            raise ValueError("must be 'syslog' or an absolute plain path")
        return value

    @field_validator("replica_dsns")
    @classmethod
    def _replica_dsns(cls, value: list[str]) -> list[str]:
        from ops.db import check_dsn

        for number, dsn in enumerate(value, 1):
            try:
                check_dsn(dsn)
            except UsageError as exc:  # its message never repeats a password (ops.db.mask_secrets)
                reason = str(exc).replace("bad --dsn: ", "cannot parse it: ").replace("--dsn ", "")
                raise ValueError(f"replica DSN #{number}: {reason}") from None
        return value

    @model_validator(mode="after")
    def _job_options(self) -> MaintenanceSettings:
        """Each job's extra flags must be ones its command takes, with values in range."""
        from ops.options import check_command_line

        for job in ("usage", "reindex", "bloat"):
            options = getattr(self, job).options
            try:
                check_command_line(["maintain", job], options)
            except UsageError as exc:
                raise ValueError(f"{job}.options {options}: {exc}") from None
        return self

    @field_validator("cron_user")
    @classmethod
    def _user(cls, value: str) -> str:
        if value and not re.match(r"^[a-z_][a-z0-9_-]*$", value):
            raise ValueError(f"{value!r} is not a user name")
        return value


SAFE_PATH = re.compile(r"^[A-Za-z0-9_./-]+$")
