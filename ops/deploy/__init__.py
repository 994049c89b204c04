"""pyinfra facts and operations: the only place that imports pyinfra. They call the ops CLI."""

from __future__ import annotations

import hashlib
import io
import shlex
from typing import Any

from pydantic import BaseModel
from pyinfra import host, state
from pyinfra.api import operation
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


@operation()
def text_file(content: str, dest: str, mode: str, user: str | None = None, group: str | None = None):
    """
    ``files.put`` of a rendered text, with its diff under ``--diff`` even where the directory is new.

    + content: the file's text
    + dest, mode, user, group: as for ``files.put``

    pyinfra's own put prints no diff for a file whose directory does not exist yet (most files
    on a bare host): the diff is printed here then, the same way.
    """
    import posixpath

    from pyinfra.facts.files import Directory
    from pyinfra.operations import files

    # pyinfra prints the diff itself only where the file's directory already exists.
    if not host.get_fact(Directory, path=posixpath.dirname(dest)):
        show_diff_if_changed(dest, content)
    yield from files.put._inner(src=io.StringIO(content), dest=dest, mode=mode, user=user, group=group)


def show_diff_if_changed(dest: str, content: str) -> None:
    """Under ``--diff`` (and ``--dry``, see deploy.py): the diff of ``dest`` when ``content`` differs from it."""
    from pyinfra.facts.files import Sha256File

    if state.config.DIFF and host.get_fact(Sha256File, path=dest) != hashlib.sha256(content.encode()).hexdigest():
        show_diff(dest, content)


def show_diff(dest: str, content: str) -> None:
    """Log a unified diff of the host's file against ``content`` (a new file shows every line as added)."""
    from pyinfra import logger
    from pyinfra.facts.files import FileContents
    from pyinfra.operations.util.files import generate_color_diff

    current = host.get_fact(FileContents, path=dest) or []
    host.log(f"Will {'modify' if current else 'create'} {dest}", logger.info)
    for diff_line in generate_color_diff([line + "\n" for line in current], content.splitlines(keepends=True)):
        logger.info("  %s", diff_line)
    logger.info("")
