"""Throwaway PostgreSQL clusters for the demo and the tests: initdb, start, stop, on loopback.

PostgreSQL refuses to run as root, so when we are root the server binaries run as the
``postgres`` OS user (``runuser -u postgres --``), and the cluster directory is handed to it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ops.errors import OpsError

SERVER_CONF = """
listen_addresses = '{host}'
port = {port}
unix_socket_directories = '{socket_dir}'
shared_preload_libraries = 'pg_stat_statements'
max_connections = 100
fsync = {fsync}
synchronous_commit = {fsync}
full_page_writes = {fsync}
wal_level = replica
max_wal_senders = 5
hot_standby = on
log_min_messages = warning
log_min_duration_statement = -1
"""


def bindir() -> Path:
    """The PostgreSQL server binaries (pg_config --bindir; PG_BINDIR overrides)."""
    if os.environ.get("PG_BINDIR"):
        return Path(os.environ["PG_BINDIR"])
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False).stdout.strip()
        if out and (Path(out) / "initdb").exists():
            return Path(out)
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    raise OpsError("PostgreSQL server binaries not found (install postgresql-15 or set PG_BINDIR)")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_taken(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on (e.g. "Address already in use"), or None when it can.

    SO_REUSEADDR as the servers themselves set it (PostgreSQL, Nginx, uvicorn): connections left in
    TIME-WAIT by a server that just stopped do not make the port taken, only a listener does.
    """
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def _as_server_user(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


@dataclass
class Cluster:
    """A project-local cluster: data in ``root/data``, the socket in ``root/run``."""

    root: Path
    port: int
    host: str = "127.0.0.1"
    superuser: str = "postgres"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "run"

    @property
    def logfile(self) -> Path:
        return self.root / "server.log"

    def env(self, dbname: str = "postgres") -> dict[str, str]:
        """libpq environment that reaches this cluster through its Unix socket."""
        return {
            "PGHOST": str(self.socket_dir),
            "PGPORT": str(self.port),
            "PGUSER": self.superuser,
            "PGDATABASE": dbname,
        }

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host={self.socket_dir} port={self.port} user={self.superuser} dbname={dbname}"

    def _run(self, cmd: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(_as_server_user(cmd), capture_output=True, text=True, check=False)
        if check and proc.returncode != 0:
            raise OpsError(f"{Path(cmd[0]).name} failed: {(proc.stderr or proc.stdout).strip().splitlines()[-1:]}")
        return proc

    def _hand_over(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            for path in self.root.rglob("*"):
                shutil.chown(path, "postgres", "postgres")

    def _prepare_root(self) -> None:
        """The cluster's directory and socket directory, owned by the server's OS user."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        self._hand_over()

    def init(self, fsync: bool = True) -> None:
        if (self.data / "PG_VERSION").exists():
            return
        self._prepare_root()
        self._run(
            [
                str(bindir() / "initdb"),
                "-D",
                str(self.data),
                "-U",
                self.superuser,
                "--auth-local=trust",
                "--auth-host=trust",
                "-E",
                "UTF8",
                "--no-instructions",
            ]
        )
        conf = SERVER_CONF.format(
            host=self.host, port=self.port, socket_dir=self.socket_dir, fsync="on" if fsync else "off"
        )
        with open(self.data / "postgresql.conf", "a") as fh:
            fh.write(conf)
        with open(self.data / "pg_hba.conf", "a") as fh:
            fh.write(f"host replication all {self.host}/32 trust\n")
        self._hand_over()

    def running(self) -> bool:
        if not (self.data / "PG_VERSION").exists():
            return False
        return self._run([str(bindir() / "pg_ctl"), "-D", str(self.data), "status"], check=False).returncode == 0

    def start(self) -> None:
        """Start the server; a taken port or a failed start names the port and the log to read."""
        if self.running():
            return
        taken = port_taken(self.host, self.port)
        if taken:
            raise OpsError(f"PostgreSQL cannot listen on {self.host}:{self.port}: the port is taken ({taken})")
        self.root.chmod(0o755)
        proc = self._run(
            [
                str(bindir() / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.logfile),
                "-o",
                f"-p {self.port} -k {self.socket_dir}",
                "-w",
                "-t",
                "60",
                "start",
            ],
            check=False,
        )
        if proc.returncode != 0:
            raise OpsError(
                f"PostgreSQL did not start on port {self.port}: {self._last_log_line()} (log: {self.logfile})"
            )
        deadline = time.monotonic() + 30
        while not (self.socket_dir / f".s.PGSQL.{self.port}").exists():
            if time.monotonic() > deadline:
                raise OpsError(f"PostgreSQL did not open its socket; see {self.logfile}")
            time.sleep(0.1)

    def _last_log_line(self) -> str:
        """The server log's last error (FATAL/ERROR/PANIC), which says why it would not start."""
        try:
            lines = self.logfile.read_text(errors="replace").splitlines()
        except OSError:
            return "no server log"
        errors = [ln for ln in lines if any(w in ln for w in ("FATAL:", "ERROR:", "PANIC:"))]
        return (errors or lines or ["empty server log"])[-1].strip()

    def stop(self, mode: str = "fast") -> None:
        if self.running():
            self._run([str(bindir() / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"], check=False)

    def createdb(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                from psycopg import sql

                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def replica_of(self, primary: Cluster) -> None:
        """Make this cluster a streaming replica of ``primary`` (pg_basebackup -R), then start it."""
        if (self.data / "PG_VERSION").exists():
            self.start()
            return
        self._prepare_root()
        self._run(
            [
                str(bindir() / "pg_basebackup"),
                "-D",
                str(self.data),
                "-h",
                primary.host,
                "-p",
                str(primary.port),
                "-U",
                primary.superuser,
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
            ]
        )
        with open(self.data / "postgresql.conf", "a") as fh:
            fh.write(f"\nport = {self.port}\nunix_socket_directories = '{self.socket_dir}'\n")
        self._hand_over()
        self.start()

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def load_schema(dsn: str, schema_dir: Path) -> None:
    """Run sql/schema/*.sql in order (the app's tables, for the demo and tests only)."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        for path in sorted(schema_dir.glob("*.sql")):
            conn.execute(path.read_text())  # type: ignore[arg-type]
