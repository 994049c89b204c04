"""Which monitoring file lands on which host of an environment: one plan for the deploy and ``ops render``.

- every ``db_primary`` and ``db_replicas`` host: postgres_exporter's queries and its EnvironmentFile
  (the replicas too: the unused-index rule sums every node's scans);
- every ``monitoring`` host: the alert rules, Prometheus's configuration (scraping the database
  hosts' exporters and node_exporters, and its own node_exporter for the CORS textfile), the
  dashboard, and the synthetic CORS check's crontab.

Monitoring is deployed only in an inventory with a ``monitoring`` group. Each host's ``monitor_*``
settings are validated as the deploy validates them; thresholds and schedules come from the
``monitoring`` host's settings and the primary's ``maint_*`` settings.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from typing import Any, Protocol

from ops.cors import RenderedFile
from ops.monitor import dashboard, exporter, prometheus, rules
from ops.monitor.settings import MonitorSettings
from ops.settings import MaintenanceSettings, host_settings

DB_GROUPS = ("db_primary", "db_replicas")
MONITORING = "monitoring"


class HostLike(Protocol):
    """An inventory host as pyinfra's Host or ops.deploy.inventory.InventoryHost has it."""

    @property
    def name(self) -> str: ...

    @property
    def groups(self) -> list[str]: ...

    @property
    def data(self) -> Any: ...


def monitor_settings(h: HostLike) -> MonitorSettings:
    return host_settings(MonitorSettings, h.data, "monitor", f"{h.name} (monitoring)")


def _target_host(name: str) -> str:
    return "127.0.0.1" if name.startswith("@") else name.split("@")[-1]


def exporter_env(s: MonitorSettings) -> str:
    args = " ".join(
        [
            f"--web.listen-address=:{s.exporter_port}",
            f"--extend.query-path={s.exporter_queries_path}",
            "--disable-settings-metrics",
        ]
    )
    return (
        "# Written by the S10 deploy (ops/deploy/monitoring.py). No password here: lib/pq reads the\n"
        "# prometheus user's ~/.pgpass, or peer authentication on the Unix socket needs none.\n"
        f"DATA_SOURCE_NAME='{s.exporter_dsn}'\n"
        f'ARGS="{args}"\n'
    )


def cors_crontab(s: MonitorSettings) -> str:
    """The synthetic CORS check, as a /etc/cron.d file: its verdict and Max-Age per browser in a textfile."""
    assert s.cors_url and s.cors_origin
    cmd = [s.ops_bin, "playbook", "cors", s.cors_url, "--origin", s.cors_origin]
    cmd += [a for h in s.cors_headers for a in ("--header", h)]
    cmd += ["--metrics-file", f"{s.textfile_dir}/{rules.CORS_TEXTFILE}"]
    # the report goes to syslog; its exit code is the verdict (in the textfile), not a failure of cron's
    line = f"{' '.join(shlex.quote(c) for c in cmd)} 2>&1 | logger -t s10-ops-cors"
    return (
        "# S10 synthetic CORS check, written by the deploy (ops/deploy/monitoring.py). Do not edit.\n"
        "SHELL=/bin/sh\nPATH=/usr/bin:/bin\n"
        f"{s.cors_schedule} {s.cron_user} {line}\n"
    )


def _primary_maintenance(hosts: Sequence[HostLike]) -> MaintenanceSettings | None:
    for h in hosts:
        if "db_primary" in h.groups:
            return host_settings(MaintenanceSettings, h.data, "maint", f"{h.name} (db_primary maintenance)")
    return None


def host_files(h: HostLike, hosts: Sequence[HostLike]) -> list[RenderedFile]:
    """The monitoring files ``h`` gets in the environment made of ``hosts`` (none without a monitoring group)."""
    if not any(MONITORING in other.groups for other in hosts):
        return []
    files: list[RenderedFile] = []
    if any(g in h.groups for g in DB_GROUPS):
        s = monitor_settings(h)
        files.append(RenderedFile("exporter-queries", s.exporter_queries_path, exporter.render(s), 0o644))
        files.append(RenderedFile("exporter-env", s.exporter_env_path, exporter_env(s), 0o640))
    if MONITORING in h.groups:
        s = monitor_settings(h)
        env = str(h.data.get("env") or "unknown")
        db_hosts = [o for o in hosts if any(g in o.groups for g in DB_GROUPS)]
        targets = prometheus.Targets(
            postgres=[f"{_target_host(o.name)}:{monitor_settings(o).exporter_port}" for o in db_hosts],
            node=[
                f"{_target_host(o.name)}:{monitor_settings(o).node_port}"
                for o in hosts
                if "db_primary" in o.groups or MONITORING in o.groups
            ],
        )
        maint = _primary_maintenance(hosts)
        files += [
            RenderedFile("prometheus-rules", s.rules_path, rules.render(s, maint, env), 0o644),
            RenderedFile(
                "prometheus-config", s.prometheus_config_path, prometheus.render(s, targets, s.rules_path, env), 0o644
            ),
            RenderedFile("dashboard", s.dashboard_path, dashboard.render(env), 0o644),
        ]
        if s.cors_url and s.cors_origin:
            files.append(RenderedFile("cors-cron", s.cors_cron_file, cors_crontab(s), 0o644))
    return files
