"""pyinfra facts and operations: the only place that imports pyinfra. They call the ops CLI."""

from __future__ import annotations

import shlex
from typing import Any

from pydantic import BaseModel
from pyinfra.api.exceptions import PyinfraError

from ops.errors import UsageError
from ops.settings import host_settings


def settings_for(host: Any, model: type[BaseModel], prefix: str, group: str) -> Any:
    """Validated settings for this host, or a clean pyinfra error (one line, no traceback)."""
    try:
        return host_settings(model, host.data, prefix, f"{host.name} ({group})")
    except UsageError as exc:
        raise PyinfraError(str(exc)) from None


def fail_command(message: str) -> str:
    """A command that fails with one line on stderr: how an operation reports a host it must not change."""
    return f"echo {shlex.quote('ops: error: ' + message)} >&2; exit 1"
