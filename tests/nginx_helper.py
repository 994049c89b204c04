"""A real nginx for tests: a local process on loopback with a config written to a temp dir.

    port = free_port()
    with start_nginx(http_config(f"server {{ listen 127.0.0.1:{port}; ... }}")) as nginx:
        httpx.get(f"http://127.0.0.1:{port}/")

``start_nginx(conf_text)`` takes a whole main-context config (``http_config`` wraps server blocks in
one), checks it with ``nginx -t``, runs ``nginx -p PREFIX -c CONF -g 'daemon off;'`` and waits until
every ``listen`` port accepts. Stopping sends QUIT and waits.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def http_config(server_blocks: str, http_extra: str = "") -> str:
    """A minimal main config around ``server_blocks``: one worker, logs and temp files in the prefix."""
    return f"""
worker_processes 1;
pid nginx.pid;
error_log error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path tmp/body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
    default_type text/plain;
    {http_extra}
    {server_blocks}
}}
"""


@dataclass
class Nginx:
    prefix: Path
    conf: Path
    process: subprocess.Popen[bytes]
    ports: list[int]

    def url(self, path: str = "/", port: int | None = None) -> str:
        return f"http://127.0.0.1:{port or self.ports[0]}{path}"

    def error_log(self) -> str:
        log = self.prefix / "error.log"
        return log.read_text() if log.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(3)  # SIGQUIT: graceful shutdown
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.prefix, ignore_errors=True)

    def __enter__(self) -> Nginx:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _accepts(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def start_nginx(conf_text: str, *, timeout: float = 10.0) -> Nginx:
    """Run nginx with ``conf_text`` (a main-context config) until stopped; raises with nginx's own words."""
    prefix = Path(tempfile.mkdtemp(prefix="s10nginx-"))
    (prefix / "tmp").mkdir()
    prefix.chmod(0o755)
    conf = prefix / "nginx.conf"
    conf.write_text(conf_text)
    cmd = [NGINX, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")]
    test = subprocess.run([*cmd, "-t", "-q"], capture_output=True, text=True, check=False)
    if test.returncode != 0:
        shutil.rmtree(prefix, ignore_errors=True)
        raise RuntimeError(f"nginx -t rejected the test config: {test.stderr.strip()}")
    ports = sorted({int(p) for p in re.findall(r"listen\s+(?:127\.0\.0\.1:)?(\d+)", conf_text)})
    process = subprocess.Popen([*cmd, "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    nginx = Nginx(prefix, conf, process, ports)
    deadline = time.monotonic() + timeout
    while not all(_accepts(p) for p in ports):
        if process.poll() is not None or time.monotonic() > deadline:
            log = nginx.error_log()
            nginx.stop()
            raise RuntimeError(f"nginx did not start: {log.strip() or 'no error log'}")
        time.sleep(0.05)
    return nginx
