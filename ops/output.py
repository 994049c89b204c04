"""How commands print: a rich table on a terminal, JSON for machines, one line on stderr for errors.

Not on a terminal (cron logs, pipes, ``| less``) nothing is cut or wrapped: rich would otherwise
assume 80 columns. Every ``--json`` answer, errors included, is one envelope (see ``envelope``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table

from ops.errors import CRITICAL, OK, UNKNOWN, USAGE, WARNING

#: Wide enough that no line of ours is ever cut or wrapped when the output is not a terminal.
UNBOUNDED = 100_000


def _console(stderr: bool) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    tty = hasattr(stream, "isatty") and stream.isatty()
    return Console(stderr=stderr, width=None if tty else UNBOUNDED, soft_wrap=not tty, highlight=False)


console = _console(stderr=False)
err_console = _console(stderr=True)

CHECK_STATUS = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}


def status_word(exit_code: int, kind: str = "check") -> str:
    """The envelope's ``status``: a check's Nagios word, or OK/FAILED for an action, ERROR for bad input."""
    if kind == "error":
        return "ERROR" if exit_code == USAGE else "UNKNOWN" if exit_code == UNKNOWN else "FAILED"
    if kind == "action":
        return "OK" if exit_code == OK else "FAILED"
    return CHECK_STATUS.get(exit_code, "UNKNOWN")


def envelope(
    exit_code: int, summary: str, data: Mapping[str, Any] | None = None, kind: str = "check"
) -> dict[str, Any]:
    """The one JSON shape of every command: ``status``, ``exit_code`` (the process's), ``summary``, then data.

    ``kind`` is ``check`` (OK/WARNING/CRITICAL/UNKNOWN), ``action`` (OK/FAILED) or ``error``.
    """
    body = {k: v for k, v in (data or {}).items() if k not in ("status", "exit_code", "summary")}
    return {"status": status_word(exit_code, kind), "exit_code": exit_code, "summary": summary, **body}


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, set | tuple):
        return list(value)
    return str(value)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=_default) + "\n")
    sys.stdout.flush()


def emit_json(exit_code: int, summary: str, data: Mapping[str, Any] | None = None, kind: str = "check") -> None:
    """Print the envelope on stdout."""
    print_json(envelope(exit_code, summary, data, kind))


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], *, stderr: bool = False) -> None:
    """A table for people; on stderr when stdout's first line must stay the verdict."""
    t = Table(title=title, title_justify="left")
    for col in columns:
        t.add_column(col, overflow="fold")
    for row in rows:
        t.add_row(*("" if v is None else str(v) for v in row))
    (err_console if stderr else console).print(t)


def line(message: str) -> None:
    """One line on stdout, never wrapped or marked up."""
    console.print(message, markup=False, soft_wrap=True)


def info(message: str) -> None:
    """Progress and notes go to stderr so stdout stays clean for --json."""
    err_console.print(message, markup=False, soft_wrap=True)
