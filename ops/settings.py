"""Validated settings for each environment, read from inventory host/group data.

Every model rejects bad values with the field and the reason before any host is touched.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

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
}


class DbSettings(BaseModel):
    """How the deploy reaches the primary's database and runs ``ops`` there."""

    model_config = ConfigDict(extra="forbid")

    ops_bin: str = Field(description="Path of the ops console script on the host")
    pg_env: dict[str, str] = Field(default_factory=dict, description="libpq environment, no password")
    lock_timeout: float = Field(3.0, gt=0, le=600)
    retries: int = Field(5, ge=0, le=100)

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
