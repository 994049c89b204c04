"""A standalone Nginx under a prefix directory, for the demo (.local/nginx), the tests and the benchmarks.

Everything it writes (pid, logs, temp files) stays under the prefix; the system's nginx
service is never touched. The config comes from :func:`ops.cors.render_host`, as on a host.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ops.errors import OpsError


def nginx_bin() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if not found:
        raise OpsError("nginx not found (install the Debian package nginx: make setup)")
    return found


def wait_port(host: str, port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise OpsError(f"nothing listens on {host}:{port} after {timeout:.0f} s") from None
            time.sleep(0.05)


def pid_alive(pidfile: Path) -> int | None:
    """The pid in ``pidfile`` when that process is alive, else None."""
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def stop_pidfile(pidfile: Path, grace: float = 10.0, kill: bool = False) -> None:
    """SIGTERM the process named in ``pidfile``, wait up to ``grace`` seconds (reaping it when it is our
    child), SIGKILL it after that when ``kill``, and remove the pidfile."""
    pid = pid_alive(pidfile)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            try:
                os.kill(pid, 0)
            except OSError:
                break
            time.sleep(0.05)
        else:
            if kill:
                os.kill(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)


def prepare_prefix(prefix: Path) -> None:
    """The directories a standalone Nginx needs; readable by its worker user when we are root."""
    for sub in ("conf", "logs", "temp"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    prefix.chmod(0o755)


@dataclass
class Nginx:
    """``nginx -p prefix -c main_conf``: start, reload, stop, test."""

    prefix: Path
    main_conf: Path

    @property
    def pidfile(self) -> Path:
        return self.prefix / "logs" / "nginx.pid"

    @property
    def error_log(self) -> Path:
        return self.prefix / "logs" / "error.log"

    def _cmd(self, *args: str) -> list[str]:
        return [nginx_bin(), "-p", f"{self.prefix}/", "-e", "logs/error.log", "-c", str(self.main_conf), *args]

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self._cmd(*args), capture_output=True, text=True, check=False)

    def running(self) -> bool:
        return pid_alive(self.pidfile) is not None

    def test(self) -> None:
        proc = self._run("-t", "-q")
        if proc.returncode != 0:
            raise OpsError(f"nginx -t failed: {proc.stderr.strip()}")

    def start(self) -> None:
        if self.running():
            return
        prepare_prefix(self.prefix)
        proc = self._run()
        if proc.returncode != 0:
            raise OpsError(f"nginx did not start: {proc.stderr.strip()}")
        deadline = time.monotonic() + 10
        while not self.running():
            if time.monotonic() > deadline:
                raise OpsError(f"nginx wrote no pid file; see {self.error_log}")
            time.sleep(0.05)

    def reload(self) -> bool:
        """Reload when running (the config was checked before); False when there is nothing to reload."""
        if not self.running():
            return False
        proc = self._run("-s", "reload")
        if proc.returncode != 0:
            raise OpsError(f"nginx reload failed: {proc.stderr.strip()}")
        return True

    def stop(self) -> None:
        pid = pid_alive(self.pidfile)
        if pid is None:
            return
        os.kill(pid, signal.SIGQUIT)  # graceful: finish requests in flight
        deadline = time.monotonic() + 10
        while pid_alive(self.pidfile) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid_alive(self.pidfile) is not None:
            os.kill(pid, signal.SIGTERM)


if __name__ == "__main__":
    # python -m ops.local.nginx reload PREFIX MAIN_CONF: reload a standalone Nginx when it runs (a deploy's reload_command)
    import sys

    if len(sys.argv) != 4 or sys.argv[1] != "reload":
        raise SystemExit("usage: python -m ops.local.nginx reload PREFIX MAIN_CONF")
    reloaded = Nginx(prefix=Path(sys.argv[2]), main_conf=Path(sys.argv[3])).reload()
    print("Nginx reloaded" if reloaded else "Nginx not running: nothing to reload")
