"""CORS settings per environment and the files rendered from them (Nginx site, app env file).

Three modes decide which single layer owns the CORS headers:

- ``edge``: Nginx answers preflights itself (204) and adds every CORS header; the app's own
  CORS headers are hidden and the app is told not to add any (``CORS_ENABLED=false``).
- ``app``: Nginx passes CORS through untouched; the app's ``CORSMiddleware`` answers.
- ``same-origin``: the front end and ``/api`` share one origin, so there is no CORS at all.

One function, :func:`render_host`, produces what a host gets; ``ops render`` and the pyinfra
deploy both call it, so what a reviewer reads is what lands on the host.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import jinja2
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ops import TEMPLATES_DIR
from ops.errors import UsageError

# Browser caps on Access-Control-Max-Age (REFERENCE.md, "Browsers and CORS").
CHROMIUM_MAX_AGE = 7200
SAFARI_MAX_AGE = 600
FIREFOX_MAX_AGE = 86400

# scheme://host[:port], lowercase as browsers serialise it: no path, no trailing slash, no userinfo.
ORIGIN_RE = re.compile(
    r"^(?P<scheme>https?)://(?P<host>[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*)(:(?P<port>[0-9]{1,5}))?$"
)
# Header names and methods as real APIs spell them; narrower than RFC 9110's token on purpose,
# since '$', quotes or ';' would mean something else inside the rendered Nginx config.
TOKEN_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
DEFAULT_PORTS = {"http": 80, "https": 443}

Mode = Literal["edge", "app", "same-origin"]


def _check_origin(origin: str) -> str:
    if origin == "null":
        raise ValueError("'null' is never allowed (sandboxed iframes and file: pages can forge it)")
    if origin != origin.strip() or not origin:
        raise ValueError(f"{origin!r}: empty or surrounded by spaces")
    if origin.endswith("/"):
        raise ValueError(f"{origin!r}: no trailing slash (an origin is scheme://host[:port])")
    if origin.lower() != origin:
        raise ValueError(f"{origin!r}: must be lowercase, as browsers send it")
    m = ORIGIN_RE.match(origin)
    if not m:
        raise ValueError(f"{origin!r}: not scheme://host[:port] with scheme http or https and no path")
    port = m.group("port")
    if port is not None:
        if not 1 <= int(port) <= 65535 or port.startswith("0"):
            raise ValueError(f"{origin!r}: port out of range")
        if int(port) == DEFAULT_PORTS[m.group("scheme")]:
            raise ValueError(
                f"{origin!r}: drop the default port (browsers send {m.group('scheme')}://{m.group('host')})"
            )
    return origin


def _check_tokens(values: list[str], what: str) -> list[str]:
    seen: set[str] = set()
    for value in values:
        if value != "*" and not TOKEN_RE.match(value):
            raise ValueError(f"{value!r} is not a valid {what}")
        if value.lower() in seen:
            raise ValueError(f"{value!r} is listed twice")
        seen.add(value.lower())
    return values


class CorsSettings(BaseModel):
    """The ``cors_*`` keys of an environment's inventory data."""

    model_config = ConfigDict(extra="forbid")

    mode: Mode = Field("edge", description="edge (Nginx answers), app (the app answers) or same-origin (no CORS)")
    origins: list[str] = Field(
        default_factory=list, description="exact scheme://host[:port]; ['*'] only without credentials"
    )
    allow_credentials: bool = Field(True, strict=True)
    methods: list[str] = Field(
        default_factory=lambda: ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"], min_length=1
    )
    headers: list[str] = Field(default_factory=lambda: ["Authorization", "Content-Type", "X-Request-ID"])
    expose_headers: list[str] = Field(default_factory=lambda: ["X-Request-ID"])
    max_age: int = Field(
        86400, ge=0, le=FIREFOX_MAX_AGE, strict=True, description="seconds a browser may cache a preflight"
    )

    @field_validator("origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        if "*" in value:
            if len(value) > 1:
                raise ValueError("'*' must be the only origin")
            return value
        for origin in value:
            _check_origin(origin)
        dupes = {o for o in value if value.count(o) > 1}
        if dupes:
            raise ValueError(f"listed twice: {', '.join(sorted(dupes))}")
        return value

    @field_validator("methods")
    @classmethod
    def _methods(cls, value: list[str]) -> list[str]:
        _check_tokens(value, "method")
        lower = [m for m in value if m != "*" and m.upper() != m]
        if lower:
            raise ValueError(f"methods are case-sensitive and uppercase: {', '.join(lower)}")
        return value

    @field_validator("headers", "expose_headers")
    @classmethod
    def _headers(cls, value: list[str]) -> list[str]:
        return _check_tokens(value, "header name")

    @model_validator(mode="after")
    def _consistent(self) -> CorsSettings:
        if self.mode == "same-origin":
            if self.origins:
                raise ValueError("same-origin mode serves the front end and /api on one origin: origins must be empty")
            return self
        if not self.origins:
            raise ValueError(f"{self.mode} mode needs at least one allowed origin in cors_origins")
        if self.allow_credentials:
            for field in ("origins", "methods", "headers", "expose_headers"):
                if "*" in getattr(self, field):
                    raise ValueError(f"{field}: '*' cannot be used with allow_credentials (browsers reject it)")
        return self

    @property
    def wildcard(self) -> bool:
        return self.origins == ["*"]

    def warnings(self) -> list[str]:
        """What browsers really do with ``max_age`` (they cap it silently)."""
        if self.mode == "same-origin" or self.max_age <= SAFARI_MAX_AGE:
            return []
        chromium = min(self.max_age, CHROMIUM_MAX_AGE)
        return [
            f"cors_max_age {self.max_age} s is capped by browsers: Chromium caches a preflight for "
            f"{chromium} s, Safari for {SAFARI_MAX_AGE} s, Firefox for {self.max_age} s"
        ]


def _absolute_path(value: str | None) -> str | None:
    """Paths land in Nginx directives and shell commands: absolute, nothing that would end them early."""
    if value is not None and (not value.startswith("/") or re.search(r"[\s;{}\"'$]", value)):
        raise ValueError("must be an absolute path without spaces, quotes, ';', '{', '}' or '$'")
    return value


class WebSettings(BaseModel):
    """The ``web_*`` keys: where the Nginx site goes and how Nginx is checked and reloaded."""

    model_config = ConfigDict(extra="forbid")

    nginx_bin: str = "nginx"
    site_path: str = Field("/etc/nginx/conf.d/s10.conf", description="where the site config lands")
    main_conf: str | None = Field(
        None, description="set for a standalone Nginx (the demo): the deploy also writes this main config"
    )
    prefix: str | None = Field(None, description="nginx -p prefix of a standalone Nginx (pid, logs, temp under it)")
    listen: str = "80"
    server_name: str = "_"
    upstream: str = Field("127.0.0.1:8000", description="the app: host:port or unix:/path")
    access_log: str = "/var/log/nginx/s10-access.log"
    static_root: str | None = Field(None, description="the front end's files (same-origin mode)")
    staging_dir: str = Field(
        "/var/lib/s10-ops/nginx", description="where candidates wait for nginx -t (outside any include glob)"
    )
    reload_command: str = Field("systemctl reload-or-restart nginx", description="run after a checked change")

    _paths = field_validator("site_path", "main_conf", "prefix", "access_log", "static_root", "staging_dir")(
        _absolute_path
    )

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        if not re.match(r"^((\d{1,3}\.){3}\d{1,3}:|\[[0-9a-f:]+\]:)?\d{1,5}$", value):
            raise ValueError("must be PORT, IPv4:PORT or [IPv6]:PORT")
        return value

    @field_validator("upstream")
    @classmethod
    def _upstream(cls, value: str) -> str:
        if not re.match(r"^(unix:/[^\s;{}]+|[A-Za-z0-9.-]+:\d{1,5}|\[[0-9a-f:]+\]:\d{1,5})$", value):
            raise ValueError("must be host:port or unix:/path")
        return value

    @field_validator("server_name")
    @classmethod
    def _server_name(cls, value: str) -> str:
        if not re.match(r"^[A-Za-z0-9_.*-]+( [A-Za-z0-9_.*-]+)*$", value):
            raise ValueError("must be nginx server names separated by single spaces")
        return value

    @model_validator(mode="after")
    def _standalone(self) -> WebSettings:
        if (self.main_conf is None) != (self.prefix is None):
            raise ValueError("main_conf and prefix go together (a standalone Nginx needs both)")
        return self


class AppSettings(BaseModel):
    """The ``app_*`` keys: where the app's CORS environment file goes."""

    model_config = ConfigDict(extra="forbid")

    env_path: str = "/etc/s10/cors.env"
    env_group: str | None = Field(None, description="group that may read the file (mode 0640)")
    restart_command: str | None = Field(None, description="run when the env file changed")

    _paths = field_validator("env_path")(_absolute_path)


@dataclass(frozen=True)
class RenderedFile:
    """One file a host gets: what it is, where it lands, its text and mode."""

    kind: str  # nginx-site, nginx-main, app-env
    dest: str
    content: str
    mode: int


def templates_dir() -> Path:
    """templates/ in the repo; S10_TEMPLATES_DIR points elsewhere (to review a template change)."""
    return Path(os.environ.get("S10_TEMPLATES_DIR") or TEMPLATES_DIR)


def nginx_regex(origin: str) -> str:
    """An anchored, case-sensitive PCRE matching exactly this origin (dots escaped)."""
    return "^" + re.sub(r"([.\\+*?\[\]^$(){}|])", r"\\\1", origin) + "$"


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["nginx_regex"] = nginx_regex
    return env


def render_template(name: str, **context: object) -> str:
    return _env().get_template(name).render(**context)


def render_main(web: WebSettings, site_include: str) -> str:
    """A standalone main config (paths relative to ``nginx -p``) that includes one site file."""
    return render_template("nginx/nginx.conf.j2", site_include=site_include)


def render_site(cors: CorsSettings, web: WebSettings, env_name: str) -> str:
    if cors.mode == "same-origin" and not web.static_root:
        raise UsageError("web_static_root: same-origin mode needs the front end's files")
    return render_template("nginx/s10-site.conf.j2", cors=cors, web=web, env=env_name)


def render_app_env(cors: CorsSettings, env_name: str) -> str:
    return render_template("app/cors.env.j2", cors=cors, env=env_name)


def render_host(
    env_name: str, cors: CorsSettings, web: WebSettings | None, app: AppSettings | None
) -> list[RenderedFile]:
    """Every file the deploy writes on a host in the web and/or app group."""
    files: list[RenderedFile] = []
    if web is not None:
        files.append(RenderedFile("nginx-site", web.site_path, render_site(cors, web, env_name), 0o644))
        if web.main_conf:
            files.append(RenderedFile("nginx-main", web.main_conf, render_main(web, web.site_path), 0o644))
    if app is not None:
        files.append(RenderedFile("app-env", app.env_path, render_app_env(cors, env_name), 0o640))
    return files


@dataclass(frozen=True)
class HostPlan:
    """What one host gets from the CORS feature: validated settings and the rendered files."""

    env_name: str
    cors: CorsSettings
    web: WebSettings | None
    app: AppSettings | None
    files: list[RenderedFile]


def host_plan(data: object, groups: list[str], where: str) -> HostPlan | None:
    """Validate a host's ``cors_*``/``web_*``/``app_*`` data and render its files; None when not web/app.

    ``data`` is anything with ``.get(key)`` (pyinfra's host.data). Raises UsageError naming the
    field and the reason, before anything is written anywhere.
    """
    from ops.settings import host_settings

    in_web, in_app = "web" in groups, "app" in groups
    if not (in_web or in_app):
        return None
    env_name = str(data.get("env") or "unnamed")  # type: ignore[attr-defined]
    models: dict[str, type[BaseModel]] = {"cors": CorsSettings, "web": WebSettings, "app": AppSettings}
    _no_unknown_keys(data, models, where)
    cors = host_settings(CorsSettings, data, "cors", f"{where}, cors_*")
    web = host_settings(WebSettings, data, "web", f"{where}, web_*") if in_web else None
    app = host_settings(AppSettings, data, "app", f"{where}, app_*") if in_app else None
    if web is not None and cors.mode == "same-origin" and not web.static_root:
        raise UsageError(f"bad settings for {where}: web_static_root: same-origin mode needs the front end's files")
    return HostPlan(env_name, cors, web, app, render_host(env_name, cors, web, app))


def _no_unknown_keys(data: object, models: dict[str, type[BaseModel]], where: str) -> None:
    """A misspelt key (cors_origin for cors_origins) would silently fall back to a default: refuse it."""
    keys = data.dict().keys() if hasattr(data, "dict") else data.keys()  # type: ignore[attr-defined]
    for key in sorted(keys):
        prefix, _, field = key.partition("_")
        if prefix in models and field not in models[prefix].model_fields:
            known = ", ".join(f"{prefix}_{f}" for f in models[prefix].model_fields)
            raise UsageError(f"bad settings for {where}: unknown setting {key!r} (known: {known})")
