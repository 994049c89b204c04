"""The embedded default environment: everything under .local/ in the repo, nothing outside it.

    python -m ops.local.env demo       # what `make demo` runs: up, the app's data, deploy, web-up, workload
    python -m ops.local.env down       # what `make demo-down` runs
    python -m ops.local.env env        # libpq exports for the demo database: eval "$(... env)"
    python -m ops.local.env            # one line: what runs

Used by ``make demo``, ``make demo-down``, ``inventory/local.py`` and tests/test_runbook.py. When a
port is taken, move it: S10_LOCAL_PGPORT (PostgreSQL, 54329), S10_LOCAL_WEBPORT (Nginx, 8080),
S10_LOCAL_APPPORT (the stand-in app, 8000); S10_LOCAL_DIR moves the directory (default .local/).

Here this module plays the part systemd plays on a real host: it starts and stops the local
Nginx and the stand-in app (``web-up``/``down``), and the deploy calls ``nginx-reload`` and
``app-restart`` after it changed their config.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from ops import REPO_ROOT, SQL_DIR
from ops.errors import OpsError
from ops.local.nginx import Nginx
from ops.local.pg import Cluster, load_schema, port_taken
from ops.local.standin import StandIn

LOCAL_DIR = Path(os.environ.get("S10_LOCAL_DIR") or REPO_ROOT / ".local")
PG_PORT = int(os.environ.get("S10_LOCAL_PGPORT", "54329"))
DBNAME = "s10"
WEB_PORT = int(os.environ.get("S10_LOCAL_WEBPORT", "8080"))
APP_PORT = int(os.environ.get("S10_LOCAL_APPPORT", "8000"))
NGINX_PREFIX = LOCAL_DIR / "nginx"
APP_DIR = LOCAL_DIR / "app"
WORKLOAD_MARKER = LOCAL_DIR / "demo-workload.done"


def cluster() -> Cluster:
    return Cluster(root=LOCAL_DIR / "pg", port=PG_PORT)


def pg_env() -> dict[str, str]:
    """libpq environment for the local database (Unix socket, no password)."""
    return cluster().env(DBNAME)


def local_nginx() -> Nginx:
    return Nginx(prefix=NGINX_PREFIX, main_conf=NGINX_PREFIX / "conf" / "nginx.conf")


def local_standin() -> StandIn:
    return StandIn(
        env_file=APP_DIR / "cors.env",
        port=APP_PORT,
        pidfile=APP_DIR / "standin.pid",
        logfile=APP_DIR / "standin.log",
    )


def web_data() -> dict[str, object]:
    """The web_* and app_* inventory data of the embedded default (everything under .local/)."""
    python = REPO_ROOT / ".venv" / "bin" / "python"
    nginx = local_nginx()
    return {
        "web_prefix": str(nginx.prefix),
        "web_main_conf": str(nginx.main_conf),
        "web_site_path": str(NGINX_PREFIX / "conf" / "s10-site.conf"),
        "web_access_log": str(NGINX_PREFIX / "logs" / "access.log"),
        "web_listen": f"127.0.0.1:{WEB_PORT}",
        "web_upstream": f"127.0.0.1:{APP_PORT}",
        "web_static_root": str(LOCAL_DIR / "www"),
        "web_staging_dir": str(NGINX_PREFIX / "staging"),
        "web_reload_command": f"{python} -m ops.local.env nginx-reload",
        "app_env_path": str(local_standin().env_file),
        "app_restart_command": f"{python} -m ops.local.env app-restart",
    }


def web_up() -> None:
    """Start the stand-in app and Nginx from the deployed config (no-op for what already runs)."""
    app, nginx = local_standin(), local_nginx()
    if not app.env_file.exists() or not nginx.main_conf.exists():
        raise SystemExit("no deployed config under .local/: run pyinfra -y inventory/local.py deploy.py first")
    app.start()
    print(f"stand-in app (for the seed's API): 127.0.0.1:{APP_PORT}")
    nginx.start()
    print(f"Nginx: http://127.0.0.1:{WEB_PORT}/api/auth/me (prefix {nginx.prefix}); try the seed's preflight:")
    print(
        f"  curl -si -X OPTIONS http://127.0.0.1:{WEB_PORT}/api/auth/me -H 'Origin: http://localhost:3000' "
        "-H 'Access-Control-Request-Method: GET' -H 'Access-Control-Request-Headers: authorization'"
    )


def nginx_reload() -> None:
    print("Nginx reloaded" if local_nginx().reload() else "Nginx not running: nothing to reload")


def app_restart() -> None:
    print("stand-in app restarted" if local_standin().restart_if_running() else "stand-in app not running")


def check_ports(web: bool = True) -> None:
    """Before anything starts: each port the demo will listen on is free, or already ours.

    ``web=False``: PostgreSQL's only (``up`` starts nothing else).
    """
    servers = [("PostgreSQL", PG_PORT, "S10_LOCAL_PGPORT", cluster().running(), cluster().logfile)]
    if web:
        servers += [
            ("Nginx", WEB_PORT, "S10_LOCAL_WEBPORT", local_nginx().running(), local_nginx().error_log),
            ("the stand-in app", APP_PORT, "S10_LOCAL_APPPORT", local_standin().running(), local_standin().logfile),
        ]
    for name, port, variable, ours, log in servers:
        taken = None if ours else port_taken("127.0.0.1", port)
        if taken:
            raise OpsError(
                f"{name} cannot listen on 127.0.0.1:{port}: the port is taken ({taken}); "
                f"move it with {variable}=<free port> (log: {log})"
            )


def up() -> None:
    """PostgreSQL under .local/pg with the demo database and the app's (empty) tables."""
    check_ports(web=False)
    c = cluster()
    c.init()
    try:
        c.start()
    except OpsError as exc:
        raise OpsError(f"{exc}; S10_LOCAL_PGPORT moves the port") from None
    c.createdb(DBNAME)
    load_schema(c.dsn(DBNAME), SQL_DIR / "schema")
    print(f"PostgreSQL: {c.socket_dir} port {c.port}, database {DBNAME}")


def deploy() -> None:
    """The main job: ``pyinfra -y inventory/local.py deploy.py`` (indexes, Nginx and app configs, crontab)."""
    pyinfra = Path(sys.executable).with_name("pyinfra")
    proc = subprocess.run([str(pyinfra), "-y", "inventory/local.py", "deploy.py"], cwd=REPO_ROOT, check=False)
    if proc.returncode != 0:
        raise OpsError(f"the deploy failed (pyinfra exit {proc.returncode}): its output is above")


def apply_roles() -> None:
    """The three group roles of sql/roles.sql on the demo database (``ops roles apply``): the playbooks
    diagnose as s10_diagnosis. Safe to rerun. Skipped while this checkout has no ``ops roles``."""
    import importlib.util

    if importlib.util.find_spec("ops.roles") is None:
        return
    ops_bin = Path(sys.executable).with_name("ops")
    proc = subprocess.run(
        [str(ops_bin), "roles", "apply"], env={**os.environ, **pg_env()}, capture_output=True, text=True, check=False
    )
    said = (proc.stderr or proc.stdout).strip().splitlines()
    if proc.returncode == 1:  # some statements not done (listed): the others are, and the demo goes on
        print(f"roles: not all done ({said[-1] if said else 'see ops roles apply'})", file=sys.stderr)
    elif proc.returncode != 0:
        raise OpsError(f"ops roles apply failed on the demo database: {said[-1] if said else proc.returncode}")
    else:
        print("roles: s10_maintenance, s10_monitoring, s10_diagnosis (ops roles apply)")


def demo() -> None:
    """``make demo``: PostgreSQL with the app's data, the deploy, Nginx and the app, a short workload."""
    from ops.local import demo as demo_data

    check_ports()  # before anything starts: nothing half-done
    up()
    dsn = cluster().dsn(DBNAME)
    if demo_data.load_data(dsn):
        WORKLOAD_MARKER.unlink(missing_ok=True)
        print(f"the app's data loaded: {demo_data.DEMO_SCALE.describe()}")
    demo_data.app_owner(dsn)
    for name in demo_data.extensions(dsn):
        print(f"CREATE EXTENSION {name}")
    deploy()
    apply_roles()
    web_up()
    if demo_data.workload(dsn, WORKLOAD_MARKER):
        print(
            f"the app's workload ran ({demo_data.WORKLOAD_ROUNDS} rounds of its queries): see ops playbook top-queries"
        )


def down() -> None:
    local_nginx().stop()
    local_standin().stop()
    cluster().stop()
    print("Nginx, stand-in app and PostgreSQL stopped")


def env_exports() -> None:
    for key, value in pg_env().items():
        print(f"export {key}={value}")


def status() -> None:
    """One line: what of the demo runs."""
    parts = [
        f"PostgreSQL {'runs' if cluster().running() else 'stopped'} (port {PG_PORT})",
        f"Nginx {'runs' if local_nginx().running() else 'stopped'} (port {WEB_PORT})",
        f"stand-in app {'runs' if local_standin().running() else 'stopped'} (port {APP_PORT})",
    ]
    hint = "" if cluster().running() else "; start it with make demo"
    print(f"local demo under {LOCAL_DIR}: {', '.join(parts)}{hint}")


COMMANDS = {
    "status": (status, "one line: what of the demo runs (the default)"),
    "demo": (demo, "what make demo runs: up, the app's data, the deploy, web-up, the workload"),
    "up": (up, "start PostgreSQL with the demo database and the app's empty tables"),
    "web-up": (web_up, "start the stand-in app and Nginx from the deployed config"),
    "down": (down, "stop Nginx, the stand-in app and PostgreSQL (what make demo-down runs)"),
    "env": (env_exports, "print the libpq exports of the demo database, for eval"),
    "nginx-reload": (nginx_reload, "reload Nginx (the deploy calls it)"),
    "app-restart": (app_restart, "restart the stand-in app (the deploy calls it)"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ops.local.env", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, description=help_text)
    args = parser.parse_args(argv)
    try:
        COMMANDS[args.command or "status"][0]()
    except OpsError as exc:  # one line, no traceback (a port taken, nginx missing...)
        print(f"ops.local.env: {exc}", file=sys.stderr)
        return exc.exit_code or 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
