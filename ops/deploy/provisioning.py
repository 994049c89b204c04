"""What the deploy installs on a bare host, from the inventory's ``db_*`` provisioning keys.

The rules (README "Deploy"):

- ``db_ops_venv`` set: the deploy installs ``ops`` into that venv (``db_ops_bin`` is derived from it:
  ``<venv>/bin/ops``). Only ``db_ops_bin`` set: ``ops`` is already there (the embedded default, a
  host managed some other way) and the deploy does not install it.
- ``db_manage_server`` true: the primary's PostgreSQL 15 is the deploy's (Debian packages, cluster,
  settings, extensions, roles, login role, service and password files). False (the default): a
  managed database; the primary only runs ``ops`` against it and ``ops provision`` does what the
  connecting role may.
- web hosts with a system Nginx (no ``web_prefix``): Nginx comes from Debian packages.
- db_primary with a system crontab (``maint_cron_user`` set): cron and logrotate from Debian packages.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ops.settings import SAFE_NAME, SAFE_PATH

PG_MAJOR = 15

ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


def _plain_path(value: str | None) -> str | None:
    if value is not None and (not value.startswith("/") or not SAFE_PATH.match(value)):
        raise ValueError("must be an absolute plain path (letters, digits, / . _ -)")
    return value


class ProvisionSettings(BaseModel):
    """The ``db_*`` keys that say what the deploy installs on the primary (besides ``DbSettings``)."""

    model_config = ConfigDict(extra="ignore")

    ops_venv: str | None = Field(None, description="install ops into this venv (db_ops_bin becomes <venv>/bin/ops)")
    ops_bin: str | None = Field(None, description="where ops already is (not installed by the deploy)")
    ops_wheelhouse: str | None = Field(
        None, description="local directory of dependency wheels to upload, for hosts without a package index"
    )
    manage_server: bool = Field(False, description="the deploy installs and configures PostgreSQL on the primary")
    allow_restart: bool = Field(False, description="the deploy may restart PostgreSQL for a setting that needs it")
    slow_ms: int = Field(100, ge=1, le=3_600_000, description="auto_explain.log_min_duration (the slow-query alert)")
    port: int = Field(5432, ge=1, le=65535, description="port of the managed cluster")
    name: str = Field("s10", description="the app database")
    login_role: str = Field("s10_ops", description="login role ops connects as (member of the three s10_ roles)")
    service_file: str = Field("/etc/s10-ops/pg_service.conf", description="libpq service file (service s10)")
    passfile: str = Field("/etc/s10-ops/pgpass", description="libpq password file, generated on the host")
    bootstrap_schema: str | None = Field(
        None, description="local directory of .sql files loaded into a newly created app database (demo/tests only)"
    )
    extension_schema: str = Field("public", description="schema the extensions are created in")

    # ops_bin is checked by DbSettings (the same message as before)
    _paths = field_validator("ops_venv", "service_file", "passfile")(_plain_path)

    @field_validator("name", "extension_schema")
    @classmethod
    def _ident(cls, value: str) -> str:
        if not SAFE_NAME.match(value):
            raise ValueError("letters, digits, '.', '_' and '-' only")
        return value

    @field_validator("login_role")
    @classmethod
    def _role(cls, value: str) -> str:
        if not ROLE_NAME.match(value):
            raise ValueError("a lower-case role name (letters, digits, _)")
        return value

    @model_validator(mode="after")
    def _ops_location(self) -> ProvisionSettings:
        if self.ops_venv and self.ops_bin and self.ops_bin != self.venv_ops_bin:
            raise ValueError(
                f"db_ops_bin {self.ops_bin} disagrees with db_ops_venv (ops goes to {self.venv_ops_bin}): drop db_ops_bin"
            )
        if not self.ops_venv and not self.ops_bin:
            raise ValueError("set db_ops_venv (the deploy installs ops there) or db_ops_bin (ops is already installed)")
        if self.ops_wheelhouse and not self.ops_venv:
            raise ValueError("db_ops_wheelhouse needs db_ops_venv (it feeds the ops install)")
        return self

    @property
    def venv_ops_bin(self) -> str:
        return posixpath.join(self.ops_venv or "", "bin", "ops")

    @property
    def installs_ops(self) -> bool:
        return bool(self.ops_venv)

    @property
    def derived_ops_bin(self) -> str:
        return self.venv_ops_bin if self.ops_venv else str(self.ops_bin)

    @property
    def service_env(self) -> dict[str, str]:
        """The libpq environment of a managed server: the service file the deploy writes."""
        return {"PGSERVICE": "s10", "PGSERVICEFILE": self.service_file}


class Overlay:
    """pyinfra host data with a few keys filled in (``db_ops_bin`` derived from ``db_ops_venv``)."""

    def __init__(self, data: Any, extra: dict[str, Any]) -> None:
        self._data, self._extra = data, extra

    def get(self, key: str) -> Any:
        return self._extra[key] if key in self._extra else self._data.get(key)


def derived_db_data(host_data: Any, prov: ProvisionSettings) -> Overlay:
    """``db_ops_bin`` from the venv, and the service file's libpq environment on a managed server."""
    extra: dict[str, Any] = {"db_ops_bin": prov.derived_ops_bin}
    if prov.manage_server and host_data.get("db_pg_env") is None:
        extra["db_pg_env"] = prov.service_env
    return Overlay(host_data, extra)


def db_settings(host_data: Any, where: str) -> tuple[ProvisionSettings, Any]:
    """The primary's ``ProvisionSettings`` and ``DbSettings`` (``db_ops_bin`` derived), as the deploy validates
    them; ``ops render`` uses the same. Raises UsageError naming the field."""
    from ops.settings import DbSettings, host_settings

    prov = host_settings(ProvisionSettings, host_data, "db", where)
    return prov, host_settings(DbSettings, derived_db_data(host_data, prov), "db", where)
