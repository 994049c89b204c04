"""The database server, where the inventory says the deploy manages it (``db_manage_server``).

PostgreSQL 15 from Debian's packages, cluster 15/main on ``db_port``, the settings the tools rely
on (pg_stat_statements and auto_explain preloaded, ``track_io_timing``), the app database, a login
role whose password is generated on the host and lives only in the password file (the database
keeps its SCRAM verifier), the libpq service file, then ``ops provision`` (extensions, roles).

The superuser steps run as the ``postgres`` OS user over the local socket (peer authentication):
no password anywhere. Nothing here prints or passes a password on a command line.
"""

from __future__ import annotations

import posixpath
import shlex
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from pyinfra import host
from pyinfra.api import FactBase, operation
from pyinfra.facts.files import File
from pyinfra.operations import files, server

from ops import TEMPLATES_DIR
from ops.deploy import fail_command, text_file
from ops.deploy.packages import debian_packages
from ops.deploy.provisioning import PG_MAJOR, ProvisionSettings
from ops.sqlfiles import query

CLUSTER = "main"
CONF_DIR = f"/etc/postgresql/{PG_MAJOR}/{CLUSTER}/conf.d"
CONF_FILE = f"{CONF_DIR}/s10-ops.conf"
NO_MAIN_CLUSTER = "/etc/postgresql-common/createcluster.d/s10-ops.conf"
PACKAGES = [f"postgresql-{PG_MAJOR}", f"postgresql-{PG_MAJOR}-hypopg", f"postgresql-client-{PG_MAJOR}"]
q = shlex.quote


def psql(port: int, sql_text: str, db: str = "postgres") -> str:
    """psql as the postgres OS user on the local socket (peer authentication, no password)."""
    return f"runuser -u postgres -- psql -X -A -t -q -v ON_ERROR_STOP=1 -p {port} -d {q(db)} -c {q(sql_text)}"


def render_conf(prov: ProvisionSettings) -> str:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES_DIR / "postgresql")), undefined=StrictUndefined)
    return env.get_template("s10-ops.conf.j2").render(major=PG_MAJOR, slow_ms=prov.slow_ms) + "\n"


def service_file(prov: ProvisionSettings) -> str:
    return (
        "# libpq service file written by the s10-ops deploy. The password is in the passfile, never here.\n"
        "[s10]\n"
        f"host=localhost\nport={prov.port}\ndbname={prov.name}\nuser={prov.login_role}\npassfile={prov.passfile}\n"
    )


class PgCluster(FactBase[dict[str, Any]]):
    """Cluster 15/main as ``pg_lsclusters`` shows it: port and status ({} when there is none)."""

    @staticmethod
    def default() -> dict[str, Any]:
        return {}

    def command(self) -> str:  # type: ignore[override]
        return f"pg_lsclusters --no-header {PG_MAJOR} {CLUSTER} 2>/dev/null || true"

    def process(self, output: list[str]) -> dict[str, Any]:  # type: ignore[override]
        fields = (output[0] if output else "").split()
        if len(fields) < 4:
            return {}
        return {"port": int(fields[2]), "status": fields[3]}


class PgQuery(FactBase[str]):
    """One value from a read-only query run as postgres ('' when the server is not there or not running)."""

    @staticmethod
    def default() -> str:
        return ""

    def command(self, port: int, sql_text: str, db: str = "postgres") -> str:  # type: ignore[override]
        return f"{psql(port, sql_text, db)} 2>/dev/null || true"

    def process(self, output: list[str]) -> str:  # type: ignore[override]
        return "\n".join(output).strip()


@operation()
def cluster_created(prov: ProvisionSettings):
    """Cluster 15/main on ``db_port`` (pg_createcluster); an existing one on another port is refused."""
    cluster = host.get_fact(PgCluster)
    if not cluster:
        # UTF8 whatever the host's locale (a bare host has none: SQL_ASCII would hand clients bytes).
        yield f"pg_createcluster --port {prov.port} --encoding UTF8 --locale C.UTF-8 {PG_MAJOR} {CLUSTER}"
    elif cluster["port"] != prov.port:
        yield fail_command(
            f"cluster {PG_MAJOR}/{CLUSTER} listens on port {cluster['port']}, the inventory says db_port {prov.port}: "
            "change one of them (the deploy does not move a running cluster)"
        )
    else:
        host.noop(f"cluster {PG_MAJOR}/{CLUSTER} on port {prov.port}")


@operation()
def settings_applied(prov: ProvisionSettings):
    """Reload; a setting still pending is applied by a restart only when ``db_allow_restart`` allows it."""
    pending = f"$({psql(prov.port, query('pending_restart'))})"
    restart = (
        f'pg_ctlcluster {PG_MAJOR} {CLUSTER} restart && echo "s10-ops: restarted PostgreSQL for: $p" >&2'
        if prov.allow_restart
        else 'echo "s10-ops: restart needed for: $p (db_allow_restart is false)" >&2'
    )
    yield f'pg_ctlcluster {PG_MAJOR} {CLUSTER} reload && sleep 0.5 && p="{pending}" && if [ -n "$p" ]; then {restart}; fi'


@operation()
def restart_check(prov: ProvisionSettings):
    """The last step: fail (non-zero exit) while a setting waits for a restart the inventory does not allow."""
    sql_text = query("pending_restart")
    yield (
        f"p=$({psql(prov.port, sql_text)}) || exit 1; "
        f'if [ -n "$p" ]; then echo "ops: error: restart needed: PostgreSQL {PG_MAJOR}/{CLUSTER} must restart for: '
        '$p (db_allow_restart is false: restart it in a maintenance window)" >&2; exit 1; fi'
    )


# Runs on the host with its own python3: makes the password (never leaves the host), writes the
# password file (0600, the cron user's) and prints ALTER ROLE with the SCRAM verifier only, so
# neither the password nor its text reaches argv, the server log or pg_stat_statements.
LOGIN_SCRIPT = r"""
import base64, hashlib, hmac, os, pwd, secrets, sys
role, port, passfile, owner = sys.argv[1:5]
pw = None
if os.path.exists(passfile):
    for row in open(passfile).read().splitlines():
        parts = row.split(":")
        if len(parts) >= 5 and parts[3] == role:
            pw = ":".join(parts[4:])
if pw is None:
    pw = secrets.token_urlsafe(32)
    old = os.umask(0o077)
    with open(passfile, "a") as f:
        f.write(f"localhost:{port}:*:{role}:{pw}\n")
    os.umask(old)
u = pwd.getpwnam(owner)
os.chown(passfile, u.pw_uid, u.pw_gid)
os.chmod(passfile, 0o600)
salt, it = secrets.token_bytes(16), 4096
salted = hashlib.pbkdf2_hmac("sha256", pw.encode(), salt, it)
ck = hmac.new(salted, b"Client Key", "sha256").digest()
sk = hmac.new(salted, b"Server Key", "sha256").digest()
b64 = lambda b: base64.b64encode(b).decode()
verifier = f"SCRAM-SHA-256${it}:{b64(salt)}${b64(hashlib.sha256(ck).digest())}:{b64(sk)}"
ident = '"' + role.replace('"', '""') + '"'
print(f"DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN CREATE ROLE {ident} LOGIN; END IF; END$$;")
print(f"ALTER ROLE {ident} LOGIN PASSWORD '{verifier}';")
"""


@operation()
def login_role(prov: ProvisionSettings, owner: str):
    """The login role ops and the cron jobs use, with a password generated on the host (in ``db_passfile`` only)."""
    sql_text = f"SELECT rolpassword IS NOT NULL FROM pg_authid WHERE rolname = '{prov.login_role}'"
    has_password = host.get_fact(PgQuery, port=prov.port, sql_text=sql_text) == "t"
    if has_password and host.get_fact(File, path=prov.passfile):
        host.noop(f"login role {prov.login_role} and {prov.passfile} in place")
        return
    script = q(LOGIN_SCRIPT)
    args = " ".join(q(a) for a in (prov.login_role, str(prov.port), prov.passfile, owner))
    yield (
        f"mkdir -p {q(posixpath.dirname(prov.passfile))} && python3 -c {script} {args} | "
        f"runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p {prov.port} -d postgres"
    )


@operation()
def app_database(prov: ProvisionSettings):
    """The app database, owned by the login role; the bootstrap schema (demo only) loads into a new one."""
    sql_text = f"SELECT 1 FROM pg_database WHERE datname = '{prov.name}'"
    if host.get_fact(PgQuery, port=prov.port, sql_text=sql_text) == "1":
        host.noop(f"database {prov.name}")
        return
    yield f"runuser -u postgres -- createdb -p {prov.port} -O {q(prov.login_role)} {q(prov.name)}"
    if prov.bootstrap_schema:
        for path in sorted(Path(prov.bootstrap_schema).glob("*.sql")):
            remote = f"/tmp/s10-ops-bootstrap-{path.name}"
            yield from files.put._inner(src=str(path), dest=remote, mode="644")
            yield (
                f"env PGSERVICE=s10 PGSERVICEFILE={q(prov.service_file)} psql -X -q -v ON_ERROR_STOP=1 -f {q(remote)} "
                f"&& rm -f {q(remote)}"
            )


def server_managed(prov: ProvisionSettings, owner: str) -> Any:
    """Every step of a managed server, in order; returns the settings step (restart_check depends on it)."""
    text_file(
        name="PostgreSQL: no automatic main cluster (the deploy creates it on db_port)",
        content="create_main_cluster = false\n",
        dest=NO_MAIN_CLUSTER,
        mode="644",
    )
    debian_packages(name=f"PostgreSQL {PG_MAJOR} packages", packages=PACKAGES)
    cluster_created(name=f"PostgreSQL cluster {PG_MAJOR}/{CLUSTER}", prov=prov)
    running_before = host.get_fact(PgCluster).get("status") == "online"
    # A restart still owed from an earlier deploy (db_allow_restart was false then) is done once allowed.
    pending_before = running_before and pending_restart_known(prov)
    conf = text_file(
        name=f"PostgreSQL settings {CONF_FILE}",
        content=render_conf(prov),
        dest=CONF_FILE,
        user="postgres",
        group="postgres",
        mode="644",
    )
    server.service(name="PostgreSQL running and enabled", service="postgresql", running=True, enabled=True)
    if running_before:
        settings_applied(
            name="PostgreSQL settings applied (reload; restart where allowed)",
            prov=prov,
            _if=lambda: pending_before or conf.did_change(),
        )
    files.directory(
        name=f"Directory {posixpath.dirname(prov.service_file)}",
        path=posixpath.dirname(prov.service_file),
        user=owner,
        mode="750",
    )
    login_role(name=f"Login role {prov.login_role} (password generated on the host)", prov=prov, owner=owner)
    text_file(
        name=f"libpq service file {prov.service_file}",
        content=service_file(prov),
        dest=prov.service_file,
        user=owner,
        mode="600",
    )
    app_database(name=f"Database {prov.name}", prov=prov)
    return conf


def pending_restart_known(prov: ProvisionSettings) -> bool:
    """True when the running server already waits for a restart (seen before any change of this deploy)."""
    return bool(host.get_fact(PgQuery, port=prov.port, sql_text=query("pending_restart")))
