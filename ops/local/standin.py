"""STAND-IN for the seed's FastAPI API (``api_server.py``). Not the real app.

It exists so the demo, the tests and the benchmarks have a real HTTP server behind Nginx that
configures CORS the way the seed does: Starlette's ``CORSMiddleware`` built from the rendered
environment file (``CORS_ORIGINS``, ``CORS_MAX_AGE``...), switched off when ``CORS_ENABLED=false``
because Nginx owns CORS (edge mode). It serves ``GET /api/auth/me`` with an ``X-Request-ID``
header (401 without ``Authorization: Bearer ...``, any token accepted), and answers any other
``/api/...`` path with a small JSON body.

    S10_APP_ENV_FILE=path/to/cors.env uvicorn --factory ops.local.standin:create_app --port 8000
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ops.errors import OpsError
from ops.local.nginx import pid_alive, stop_pidfile, wait_port
from ops.local.pg import port_taken

ENV_FILE_VAR = "S10_APP_ENV_FILE"


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines (the format systemd's EnvironmentFile and docker --env-file read)."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def _list(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def cors_middleware(env: dict[str, str]) -> list[Middleware]:
    """The seed's CORSMiddleware, from the CORS_* variables; none when CORS_ENABLED is false."""
    if env.get("CORS_ENABLED", "false").lower() != "true":
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=_list(env.get("CORS_ORIGINS", "")),
            allow_credentials=env.get("CORS_ALLOW_CREDENTIALS", "false").lower() == "true",
            allow_methods=_list(env.get("CORS_ALLOW_METHODS", "GET")),
            allow_headers=_list(env.get("CORS_ALLOW_HEADERS", "")),
            expose_headers=_list(env.get("CORS_EXPOSE_HEADERS", "")),
            max_age=int(env.get("CORS_MAX_AGE", "600")),
        )
    ]


async def auth_me(request: Request) -> JSONResponse:
    """Like the seed's endpoint: 401 without credentials. Any bearer token is accepted (stand-in)."""
    request_id = {"X-Request-ID": request.headers.get("x-request-id") or uuid.uuid4().hex}
    if not request.headers.get("authorization", "").startswith("Bearer "):
        return JSONResponse({"detail": "Not authenticated"}, status_code=401, headers=request_id)
    return JSONResponse({"id": 1, "email": "demo@example.com", "stand_in": True}, headers=request_id)


async def any_api(request: Request) -> JSONResponse:
    return JSONResponse(
        {"path": request.url.path, "method": request.method, "stand_in": True},
        headers={"X-Request-ID": uuid.uuid4().hex},
    )


def create_app() -> Starlette:
    """The ASGI app, configured from the env file named by S10_APP_ENV_FILE."""
    path = os.environ.get(ENV_FILE_VAR)
    env = read_env_file(Path(path)) if path else {}
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    return Starlette(
        routes=[
            Route("/api/auth/me", auth_me, methods=["GET"]),
            Route("/api/{rest:path}", any_api, methods=methods),
        ],
        middleware=cors_middleware(env),
    )


@dataclass
class StandIn:
    """The stand-in under uvicorn, as a background process on loopback."""

    env_file: Path
    port: int
    pidfile: Path
    logfile: Path
    host: str = "127.0.0.1"

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "uvicorn", "--factory", "ops.local.standin:create_app",
            "--host", self.host, "--port", str(self.port), "--log-level", "warning", "--no-access-log",
        ]  # fmt: skip

    def running(self) -> bool:
        return pid_alive(self.pidfile) is not None

    def start(self) -> None:
        if self.running():
            return
        taken = port_taken(self.host, self.port)  # something else on the port would answer in our place
        if taken:
            raise OpsError(f"cannot start the stand-in app: {self.host}:{self.port} is taken ({taken})")
        self.pidfile.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, ENV_FILE_VAR: str(self.env_file)}
        with open(self.logfile, "ab") as log:
            proc = subprocess.Popen(
                self.command(), env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True
            )
        self.pidfile.write_text(f"{proc.pid}\n")
        try:
            wait_port(self.host, self.port)
        except OpsError:
            proc.kill()
            raise OpsError(f"the stand-in app did not start on {self.host}:{self.port}; see {self.logfile}") from None
        if proc.poll() is not None:
            raise OpsError(f"the stand-in app exited at start (code {proc.returncode}); see {self.logfile}")

    def stop(self) -> None:
        stop_pidfile(self.pidfile, grace=10)

    def restart_if_running(self) -> bool:
        if not self.running():
            return False
        self.stop()
        self.start()
        return True
