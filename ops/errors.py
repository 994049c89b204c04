"""Errors the CLI turns into one clear line and an exit code (never a traceback)."""

from __future__ import annotations

# Exit codes. Checks follow Nagios / check_postgres; actions are 0 done, 1 failed.
OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
FAILED = 1
USAGE = 2


class OpsError(Exception):
    """An expected failure with a message meant for a person. ``exit_code`` is what the CLI exits with."""

    exit_code = FAILED
    #: True once the command has already printed its own --json output for this failure.
    reported = False

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(OpsError):
    """Bad input: a flag, a file, a setting."""

    exit_code = USAGE


class ConnectError(OpsError):
    """The database could not be reached. Checks report it as UNKNOWN (3)."""

    exit_code = UNKNOWN
