"""pyinfra operations for monitoring: postgres_exporter on the database hosts; Prometheus's rules and
configuration (checked with promtool before a reload), the dashboard and the CORS check on the
``monitoring`` hosts. The files come from :func:`ops.monitor.plan.host_files`, the code ``ops render``
runs, so what render shows is what the deploy writes.
"""

from __future__ import annotations

import posixpath
import shlex
from io import StringIO

from pyinfra import host
from pyinfra.api import FileUploadCommand, StringCommand, operation
from pyinfra.facts.files import Sha256File
from pyinfra.operations import apt, files, server
from pyinfra.operations.util import any_changed

from ops.cors import RenderedFile
from ops.deploy.web import _sha256
from ops.monitor.settings import MonitorSettings

EXPORTER_PACKAGES = ["prometheus-postgres-exporter", "prometheus-node-exporter"]
MONITORING_PACKAGES = ["prometheus", "prometheus-node-exporter"]
CANDIDATE = ".s10-candidate"
PREVIOUS = ".s10-previous"


def _directories(rendered: list[RenderedFile]) -> None:
    for path in sorted({posixpath.dirname(f.dest) for f in rendered}):
        files.directory(name=f"Directory {path}", path=path, present=True)


def _put(f: RenderedFile) -> object:
    return files.put(name=f"{f.kind} {f.dest}", src=StringIO(f.content), dest=f.dest, mode=f"{f.mode:o}")


def exporter_deployed(settings: MonitorSettings, rendered: list[RenderedFile]) -> None:
    """A database host: the Debian exporters, the generated queries and the exporter's EnvironmentFile;
    the exporter restarts only when one of them changed (postgres_exporter reads its queries at start)."""
    apt.packages(name="postgres_exporter and node_exporter (Debian packages)", packages=EXPORTER_PACKAGES)
    files.directory(name=f"Textfile directory {settings.textfile_dir}", path=settings.textfile_dir, present=True)
    _directories([f for f in rendered if f.kind in ("exporter-queries", "exporter-env")])
    puts = [_put(f) for f in rendered if f.kind in ("exporter-queries", "exporter-env")]
    server.shell(
        name="Restart postgres_exporter (its queries or connection changed)",
        commands=[settings.exporter_restart_command],
        _if=any_changed(*puts),  # type: ignore[arg-type]
    )


def promtool_install_command(settings: MonitorSettings, targets: list[RenderedFile]) -> str:
    """Shell: check the candidate rules and config with promtool, move them in (keeping the live files
    until the checks pass), then reload Prometheus. On failure the live files stay and the deploy fails
    with promtool's words."""
    q = shlex.quote
    moves = [(q(f.dest + CANDIDATE), q(f.dest), q(f.dest + PREVIOUS)) for f in targets]
    restore = "; ".join(f"if [ -e {prev} ]; then mv -f {prev} {dest}; fi" for _, dest, prev in moves)
    rules = next((f for f in targets if f.kind == "prometheus-rules"), None)
    lines = []
    if rules is not None:
        lines.append(
            f"if ! out=$(promtool check rules {q(rules.dest + CANDIDATE)} 2>&1); then "
            f'rm -f {" ".join(c for c, *_ in moves)}; echo "promtool rejected the rules, nothing changed: $out" >&2; exit 1; fi'
        )
    lines += [f"rm -f {prev}; if [ -e {dest} ]; then cp -p {dest} {prev}; fi" for _, dest, prev in moves]
    lines += [f"mv -f {cand} {dest} || exit 1" for cand, dest, _ in moves]
    lines.append(
        f"if ! out=$(promtool check config {q(settings.prometheus_config_path)} 2>&1); then {restore}; "
        'echo "promtool rejected the configuration, the previous one stays: $out" >&2; exit 1; fi'
    )
    lines.append(f"rm -f {' '.join(prev for *_, prev in moves)}")
    lines.append(settings.prometheus_reload_command)
    return "; ".join(lines)


@operation()
def prometheus_configured(settings: MonitorSettings, rendered: list[RenderedFile]):
    """
    Install the S10 alert rules and Prometheus's configuration, only after ``promtool check``.

    + settings: validated ``MonitorSettings`` (rules_path, prometheus_config_path, prometheus_reload_command)
    + rendered: the files from ``ops.monitor.plan.host_files`` (kinds ``prometheus-rules``, ``prometheus-config``)

    Compares each file's SHA-256 with the host's copy: nothing changed means no upload, no check and
    no reload, so a second deploy changes nothing.

    **Example:**

    .. code:: python

        prometheus_configured(name="S10 Prometheus", settings=settings, rendered=files)
    """
    targets = [f for f in rendered if f.kind in ("prometheus-rules", "prometheus-config")]
    if all(host.get_fact(Sha256File, path=f.dest) == _sha256(f.content) for f in targets):
        host.noop(f"{settings.rules_path} and {settings.prometheus_config_path} are up to date")
        return
    for f in targets:
        yield FileUploadCommand(StringIO(f.content), f.dest + CANDIDATE)
    yield StringCommand(promtool_install_command(settings, targets))


def monitoring_deployed(settings: MonitorSettings, rendered: list[RenderedFile]) -> None:
    """A monitoring host: Prometheus and node_exporter (Debian), the checked rules and config, the
    dashboard file for Grafana's provisioning, and the synthetic CORS check's crontab."""
    apt.packages(name="Prometheus and node_exporter (Debian packages)", packages=MONITORING_PACKAGES)
    files.directory(name=f"Textfile directory {settings.textfile_dir}", path=settings.textfile_dir, present=True)
    _directories([f for f in rendered if not f.kind.startswith("exporter-")])
    prometheus_configured(name="S10 alert rules and Prometheus config (promtool before reload)",
                          settings=settings, rendered=rendered)  # fmt: skip
    for f in rendered:
        if f.kind in ("dashboard", "cors-cron"):
            _put(f)
