"""The local monitoring stack: Prometheus, node_exporter and postgres_exporter on loopback.

For ``make demo`` (``python -m ops.local.monitoring up|down|cors-check``, everything under .local/monitoring)
and the tests (:class:`MonitoringStack` in a temp directory). The files each process reads are
the ones ``ops render`` writes for a real environment: the exporter's queries, the rules and the
scrape configuration. Ports: S10_LOCAL_PROMPORT (19090), S10_LOCAL_NODEPORT (19100) and
S10_LOCAL_PGEXPORTERPORT (19187), away from the usual 9090/9100/9187 a person may run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ops.errors import OpsError
from ops.local.nginx import pid_alive, stop_pidfile, wait_port
from ops.monitor import exporter, prometheus, rules
from ops.monitor.settings import MonitorSettings
from ops.settings import MaintenanceSettings

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
NODE_EXPORTER = shutil.which("prometheus-node-exporter") or "/usr/bin/prometheus-node-exporter"
POSTGRES_EXPORTER = shutil.which("prometheus-postgres-exporter") or "/usr/bin/prometheus-postgres-exporter"


@dataclass
class Daemon:
    """One background process with a pidfile and a log, listening on a loopback port."""

    name: str
    command: list[str]
    port: int
    root: Path
    env: dict[str, str] = field(default_factory=dict)
    host: str = "127.0.0.1"

    @property
    def pidfile(self) -> Path:
        return self.root / f"{self.name}.pid"

    @property
    def logfile(self) -> Path:
        return self.root / f"{self.name}.log"

    def start(self) -> None:
        if pid_alive(self.pidfile):
            return
        if not Path(self.command[0]).exists():
            raise OpsError(f"{self.command[0]} not found: install the Debian package (make setup)")
        with open(self.logfile, "ab") as log:
            proc = subprocess.Popen(
                self.command,
                env={**os.environ, **self.env},
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pidfile.write_text(f"{proc.pid}\n")
        try:
            wait_port(self.host, self.port, timeout=30)
        except OpsError:
            proc.kill()
            raise OpsError(f"{self.name} did not start on {self.host}:{self.port}; see {self.logfile}") from None

    def stop(self) -> None:
        stop_pidfile(self.pidfile, grace=15, kill=True)


@dataclass
class MonitoringStack:
    """Prometheus scraping one postgres_exporter (``dsn``: libpq key=value, no password) and one
    node_exporter (``textfile_dir``), with the rules rendered from ``settings``."""

    root: Path
    dsn: str
    textfile_dir: Path
    settings: MonitorSettings
    maint: MaintenanceSettings | None = None
    env: str = "local"
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.settings.prometheus_port}"

    def write_files(self) -> None:
        s = self.settings
        self.root.mkdir(parents=True, exist_ok=True)
        self.textfile_dir.mkdir(parents=True, exist_ok=True)
        (self.root / "queries.yml").write_text(exporter.render(s))
        (self.root / "rules.yml").write_text(rules.render(s, self.maint, self.env))
        targets = prometheus.Targets(postgres=[f"{self.host}:{s.exporter_port}"], node=[f"{self.host}:{s.node_port}"])
        (self.root / "prometheus.yml").write_text(prometheus.render(s, targets, str(self.root / "rules.yml"), self.env))

    def daemons(self) -> list[Daemon]:
        s, h = self.settings, self.host
        return [
            Daemon(
                "postgres_exporter",
                [
                    POSTGRES_EXPORTER,
                    f"--web.listen-address={h}:{s.exporter_port}",
                    f"--extend.query-path={self.root / 'queries.yml'}",
                    "--disable-default-metrics",
                    "--disable-settings-metrics",
                    "--log.level=warn",
                ],
                s.exporter_port,
                self.root,
                # the DSN goes through the environment, as on a host (never on the command line)
                env={"DATA_SOURCE_NAME": self.dsn},
            ),
            Daemon(
                "node_exporter",
                [
                    NODE_EXPORTER,
                    f"--web.listen-address={h}:{s.node_port}",
                    "--collector.disable-defaults",
                    "--collector.textfile",
                    f"--collector.textfile.directory={self.textfile_dir}",
                    "--log.level=warn",
                ],
                s.node_port,
                self.root,
            ),
            Daemon(
                "prometheus",
                [
                    PROMETHEUS,
                    f"--config.file={self.root / 'prometheus.yml'}",
                    f"--storage.tsdb.path={self.root / 'data'}",
                    f"--web.listen-address={h}:{s.prometheus_port}",
                    "--web.enable-lifecycle",
                    "--log.level=warn",
                ],
                s.prometheus_port,
                self.root,
            ),
        ]

    def start(self) -> MonitoringStack:
        self.write_files()
        started = []
        try:
            for d in self.daemons():
                d.start()
                started.append(d)
        except OpsError:
            for d in started:
                d.stop()
            raise
        return self

    def stop(self) -> None:
        for d in reversed(self.daemons()):
            d.stop()


# --------------------------------------------------------------------------- make demo


def local_settings() -> MonitorSettings:
    """The demo's settings: loopback ports from S10_LOCAL_*, alerts after seconds rather than hours."""
    return MonitorSettings(
        exporter_port=int(os.environ.get("S10_LOCAL_PGEXPORTERPORT", "19187")),
        node_port=int(os.environ.get("S10_LOCAL_NODEPORT", "19100")),
        prometheus_port=int(os.environ.get("S10_LOCAL_PROMPORT", "19090")),
        scrape_interval="5s",
        evaluation_interval="5s",
        rate_window="1m",
        for_override="30s",
    )


def local_stack() -> MonitoringStack:
    from ops.local.env import DBNAME, LOCAL_DIR, cluster

    return MonitoringStack(
        root=LOCAL_DIR / "monitoring",
        dsn=cluster().dsn(DBNAME) + " sslmode=disable",
        textfile_dir=LOCAL_DIR / "metrics",
        settings=local_settings(),
        maint=MaintenanceSettings(),
    )


def prepare_database() -> None:
    """The demo database's statement statistics: the cluster preloads pg_stat_statements (ops.local.pg)."""
    import psycopg

    from ops.local.env import DBNAME, cluster

    with psycopg.connect(cluster().dsn(DBNAME), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements SCHEMA public")


def cors_check() -> int:
    """The synthetic CORS check once, as the monitoring host's cron runs it (ops playbook cors --metrics-file)."""
    from ops.local.env import LOCAL_DIR, WEB_PORT

    ops = Path(sys.executable).with_name("ops")
    cmd = [
        str(ops), "playbook", "cors", f"http://127.0.0.1:{WEB_PORT}/api/auth/me", "--origin", "http://localhost:3000",
        "--header", "Authorization", "--metrics-file", str(LOCAL_DIR / "metrics" / rules.CORS_TEXTFILE),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    print(f"synthetic CORS check: {(proc.stdout.splitlines() or [proc.stderr.strip()])[0]}")
    return proc.returncode


def up() -> None:
    prepare_database()
    stack = local_stack().start()
    cors_check()
    s = stack.settings
    print(f"postgres_exporter: http://127.0.0.1:{s.exporter_port}/metrics")
    print(f"node_exporter (textfiles in {stack.textfile_dir}): http://127.0.0.1:{s.node_port}/metrics")
    print(f"Prometheus alerts: {stack.url}/alerts")


def down() -> None:
    local_stack().stop()
    print("Prometheus, node_exporter and postgres_exporter stopped")


if __name__ == "__main__":
    commands = {"up": up, "down": down, "cors-check": cors_check}
    try:
        commands[sys.argv[1] if len(sys.argv) > 1 else "up"]()
    except OpsError as exc:
        raise SystemExit(f"ops.local.monitoring: {exc}") from None
