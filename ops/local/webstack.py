"""A throwaway web stack on loopback: the rendered Nginx in front of the stand-in app.

For the tests and the benchmarks (the demo uses the same pieces under .local/, via the deploy).
Files are rendered by :func:`ops.cors.render_host`, exactly as the deploy renders them.
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ops.cors import AppSettings, CorsSettings, RenderedFile, WebSettings, render_host
from ops.local.nginx import Nginx, prepare_prefix, wait_port
from ops.local.pg import free_port
from ops.local.standin import StandIn

REQUEST_RE = re.compile(r'"(?P<method>[A-Z]+) (?P<uri>\S+) HTTP/[0-9.]+" (?P<status>\d{3})')


@dataclass
class WebStack:
    """Nginx (``port``) -> stand-in app (``app_port``), all files under ``root``."""

    root: Path
    cors: CorsSettings
    port: int
    app_port: int
    files: list[RenderedFile] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def prefix(self) -> Path:
        return self.root / "nginx"

    @property
    def static_root(self) -> Path:
        return self.root / "www"

    @property
    def access_log(self) -> Path:
        return self.prefix / "logs" / "access.log"

    @property
    def nginx(self) -> Nginx:
        return Nginx(prefix=self.prefix, main_conf=self.prefix / "conf" / "nginx.conf")

    @property
    def app(self) -> StandIn:
        return StandIn(
            env_file=self.root / "app" / "cors.env",
            port=self.app_port,
            pidfile=self.root / "app" / "standin.pid",
            logfile=self.root / "app" / "standin.log",
        )

    def requests_seen(self, method: str | None = None, path: str | None = None, under: str | None = None) -> int:
        """Requests Nginx logged (its access log is written unbuffered), by method, exact path or path prefix."""
        if not self.access_log.exists():
            return 0
        count = 0
        for line in self.access_log.read_text().splitlines():
            m = REQUEST_RE.search(line)
            if not m or (method and m["method"] != method):
                continue
            if path and m["uri"].split("?", 1)[0] != path:
                continue
            if under and not m["uri"].startswith(under):
                continue
            count += 1
        return count

    def start(self) -> WebStack:
        self.app.start()
        self.nginx.start()
        wait_port("127.0.0.1", self.port)
        return self

    def stop(self) -> None:
        self.nginx.stop()
        self.app.stop()

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def web_settings(root: Path, port: int, app_port: int) -> WebSettings:
    prefix = root / "nginx"
    return WebSettings(
        prefix=str(prefix),
        main_conf=str(prefix / "conf" / "nginx.conf"),
        site_path=str(prefix / "conf" / "s10-site.conf"),
        access_log=str(prefix / "logs" / "access.log"),
        listen=f"127.0.0.1:{port}",
        upstream=f"127.0.0.1:{app_port}",
        static_root=str(root / "www"),
        staging_dir=str(prefix / "staging"),
        reload_command=f"{sys.executable} -m ops.local.nginx reload {prefix} {prefix}/conf/nginx.conf",
    )


def build_stack(
    cors: CorsSettings,
    app_cors: CorsSettings | None = None,
    static_files: dict[str, str] | None = None,
    root: Path | None = None,
) -> WebStack:
    """Render and write the stack's files (not started). ``app_cors`` renders the app's env file
    from other settings than Nginx's (to prove Nginx hides an app that adds CORS headers too)."""
    root = root or Path(tempfile.mkdtemp(prefix="s10web-"))
    root.chmod(0o755)  # Nginx workers (nobody, when we are root) read the front end and temp dirs
    stack = WebStack(root=root, cors=cors, port=free_port(), app_port=free_port())
    web = web_settings(root, stack.port, stack.app_port)
    app = AppSettings(env_path=str(root / "app" / "cors.env"))
    files = render_host("test", cors, web, None)
    files += [f for f in render_host("test", app_cors or cors, None, app)]
    prepare_prefix(stack.prefix)
    for f in files:
        Path(f.dest).parent.mkdir(parents=True, exist_ok=True)
        Path(f.dest).write_text(f.content)
        Path(f.dest).chmod(f.mode)
    stack.static_root.mkdir(exist_ok=True)
    stack.static_root.chmod(0o755)
    for name, text in (static_files or {}).items():
        (stack.static_root / name).write_text(text)
        (stack.static_root / name).chmod(0o644)
    stack.files = files
    return stack
