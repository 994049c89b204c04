"""Bare Debian 12 containers, provisioned from nothing by one deploy (pyinfra's @docker connector).

The engine is started under .local/docker when none answers (and stopped at the end only then),
the bare image is built once and cached (ops/local/docker.py). The containers share this machine's
network namespace: every port here is a free loopback port.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ops import REPO_ROOT, SQL_DIR
from ops.local import docker
from ops.local.pg import free_port
from tests.conftest import run_ops

PYINFRA = Path(sys.executable).with_name("pyinfra")
RUN = f"t{os.getpid()}"

needs_docker = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("docker") or not (shutil.which("dockerd") or docker.answers()),
    reason="needs root and Docker (make system-packages installs docker.io and mmdebstrap)",
)


def name(role: str) -> str:
    return f"{RUN}{role}"


def sh(role: str, script: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return docker.exec_in(name(role), "sh", "-c", script, timeout=timeout)


def write_inventory(path: Path, groups: dict[str, list[tuple[str, dict]]]) -> Path:
    lines = []
    for group, hosts in groups.items():
        entries = ", ".join(repr(("@docker/" + docker.container_name(name(role)), data)) for role, data in hosts)
        lines.append(f"{group} = ([{entries}], {{}})")
    path.write_text("\n".join(lines) + "\n")
    return path


def pyinfra(inventory: Path, *flags: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKER_HOST": docker.docker_host()}
    return subprocess.run(
        # --dry without -y: with -y pyinfra skips its change detection (and the diffs)
        [str(PYINFRA), *([] if "--dry" in flags else ["-y"]), *flags, str(inventory), "deploy.py"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def changed(proc: subprocess.CompletedProcess[str]) -> int:
    """The Success column of pyinfra's Grand total: operations that changed something."""
    out = proc.stdout + proc.stderr
    m = re.search(r"Grand total\s+\d+\s+(\d+|-)", out)
    assert m, out[-2000:]
    return 0 if m.group(1) == "-" else int(m.group(1))


CORS = {
    "env": "dockertest",
    "cors_mode": "edge",
    "cors_origins": ["http://localhost:3000"],
    "cors_allow_credentials": True,
    "cors_max_age": 600,
}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    started = docker.engine_up()
    roles = ["db1", "web1", "app1", "broken", "runner"]
    docker.containers_up([name(r) for r in roles])
    pg_port, web_port = free_port(), free_port()
    house = str(docker.wheelhouse())
    db = {
        "env": "dockertest",
        "db_manage_server": True,
        "db_allow_restart": False,
        "db_port": pg_port,
        "db_ops_venv": "/opt/s10-ops/.venv",
        "db_ops_wheelhouse": house,
        "db_bootstrap_schema": str(SQL_DIR / "schema"),
        "maint_cron_user": "postgres",
        "maint_metrics_dir": "/var/lib/prometheus/node-exporter",
    }
    web = {
        **CORS,
        "web_listen": f"127.0.0.1:{web_port}",
        "web_upstream": "127.0.0.1:9",
        "web_reload_command": "service nginx reload",
    }
    app = {**CORS, "app_env_path": "/etc/s10/cors.env"}
    tmp = tmp_path_factory.mktemp("docker")
    full = write_inventory(
        tmp / "full.py",
        {"db_primary": [("db1", db)], "web": [("web1", web), ("broken", web)], "app": [("app1", app)]},
    )
    good = write_inventory(
        tmp / "good.py", {"db_primary": [("db1", db)], "web": [("web1", web)], "app": [("app1", app)]}
    )
    # A host whose package install fails: its apt sources point nowhere.
    sh(
        "broken",
        "echo 'deb http://127.0.0.1:9/debian bookworm main' > /etc/apt/sources.list; rm -rf /var/lib/apt/lists/*",
    )
    dry = pyinfra(full, "--dry")
    installed_by_dry = sh("web1", "test -e /usr/sbin/nginx").returncode == 0
    first = pyinfra(full)
    second = pyinfra(good)
    yield {
        "installed_by_dry": installed_by_dry,
        "dry": dry,
        "first": first,
        "second": second,
        "pg_port": pg_port,
        "web_port": web_port,
        "tmp": tmp,
        "house": house,
        "db": db,
    }
    docker.containers_down([name(r) for r in roles])
    if started:
        docker.engine_down()


pytestmark = [needs_docker, pytest.mark.slow]


def test_dry_run_on_bare_hosts_lists_every_change_with_diffs(fleet):
    dry = fleet["dry"]
    assert dry.returncode == 0, dry.stdout[-3000:] + dry.stderr[-2000:]
    out = dry.stdout + dry.stderr
    for wanted in (
        "Will create /etc/nginx/conf.d/s10.conf",
        "Will create /etc/cron.d/s10-ops-maintenance",
        "Will create /etc/s10-ops/pg_service.conf",
        "server_tokens off;",
        "Access-Control-Max-Age",
        "/etc/s10/cors.env",
        "CORS_ENABLED=false",
        "auto_explain.log_min_duration = '100ms'",
        "ops installed in /opt/s10-ops/.venv",
        "PostgreSQL 15 packages",
        "Nginx package",
    ):
        assert wanted in out, wanted
    # nothing was installed by the dry run
    assert not fleet["installed_by_dry"]


def test_one_deploy_makes_a_working_primary(fleet):
    first = fleet["first"]
    assert re.search(r"broken.*(Error|failed)", first.stdout + first.stderr), first.stdout[-3000:]
    env = "export PGSERVICE=s10 PGSERVICEFILE=/etc/s10-ops/pg_service.conf; "
    verify = sh("db1", env + "/opt/s10-ops/.venv/bin/ops migrate verify")
    assert verify.returncode == 0 and verify.stdout.startswith("OK:"), verify.stdout + verify.stderr
    sh("db1", env + "psql -XAtq -c 'select pg_sleep(0.15)' -c 'select pg_sleep(0.01)'")
    log = sh("db1", "sleep 0.5; cat /var/log/postgresql/postgresql-15-main.log").stdout
    assert re.search(r"duration: 1[5-9]\d\.\d+ ms\s+plan:\n(.*\n)*?.*pg_sleep\(0\.15\)", log), log[-2000:]
    assert "pg_sleep(0.01)" not in log
    stats = sh("db1", env + "psql -XAtq -c \"select count(*) from pg_stat_statements where query like '%pg_sleep%'\"")
    assert int(stats.stdout.strip()) >= 1, stats.stdout + stats.stderr
    ext = sh("db1", env + "psql -XAtq -c 'select extname from pg_extension'")
    for e in ("amcheck", "hypopg", "pg_stat_statements", "pgstattuple"):
        assert e in ext.stdout, ext.stdout + ext.stderr
    files = sh(
        "db1",
        "stat -c '%a %U %n' /etc/s10-ops/pgpass /etc/s10-ops/pg_service.conf "
        "/var/lib/prometheus/node-exporter; grep -c 'ops maintain' /etc/cron.d/s10-ops-maintenance; "
        "/etc/init.d/cron status; cat /etc/logrotate.d/s10-ops",
    )
    assert (
        "600 postgres /etc/s10-ops/pgpass" in files.stdout
        and "600 postgres /etc/s10-ops/pg_service.conf" in files.stdout
    )
    assert "postgres /var/lib/prometheus/node-exporter" in files.stdout
    assert "cron is running" in files.stdout and "/var/log/s10-ops/maintenance.log" in files.stdout
    assert "password=" not in sh("db1", "cat /etc/s10-ops/pg_service.conf").stdout.lower()


def test_web_and_app_hosts(fleet):
    import httpx

    resp = httpx.options(
        f"http://127.0.0.1:{fleet['web_port']}/api/auth/me",
        headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "GET"},
    )
    assert resp.status_code == 204
    assert resp.headers["access-control-max-age"] == "600"
    assert resp.headers["server"] == "nginx"  # server_tokens off: no version
    env = sh("app1", "cat /etc/s10/cors.env").stdout
    assert "CORS_ENABLED=false" in env


def test_failed_package_install_fails_that_host_alone(fleet):
    first = fleet["first"]
    assert first.returncode != 0
    text = first.stdout + first.stderr
    assert re.search(r"\[@docker/\S*broken\]\s+Error", text), text[-3000:]
    for ok in ("db1", "web1", "app1"):
        assert not re.search(rf"\[@docker/\S*{ok}\]\s+Error", text), ok


def test_second_deploy_changes_nothing(fleet):
    second = fleet["second"]
    assert second.returncode == 0, second.stdout[-3000:]
    assert changed(second) == 0, second.stdout[-3000:]


def test_managed_database_does_what_it_may_and_names_the_rest(fleet):
    """db_manage_server false: a runner host runs ops against db1's PostgreSQL as a role that is no superuser."""
    port = fleet["pg_port"]
    script = (
        f"runuser -u postgres -- psql -XAtq -p {port} -c \"create role s10_runner login password 'runner-pw'\" "
        "-c 'create database s10_managed owner s10_runner'"
    )
    assert sh("db1", script).returncode == 0
    # the password file is placed out of band (not by the deploy, not in the inventory)
    sh("runner", f"umask 077; echo 'localhost:{port}:*:s10_runner:runner-pw' > /root/.pgpass")
    schema = (SQL_DIR / "schema" / "001_app_tables.sql").read_text()
    load = subprocess.run(
        [
            "docker",
            "exec",
            "-i",
            docker.container_name(name("db1")),
            "runuser",
            "-u",
            "postgres",
            "--",
            "psql",
            "-XAtq",
            "-v",
            "ON_ERROR_STOP=1",
            "-p",
            str(port),
            "-d",
            "s10_managed",
            "-c",
            "set role s10_runner",
            "-f",
            "-",
        ],
        input=schema,
        env={**os.environ, "DOCKER_HOST": docker.docker_host()},
        capture_output=True,
        text=True,
        check=False,
    )
    assert load.returncode == 0, load.stderr
    runner = {
        "env": "dockertest",
        "db_ops_venv": "/opt/s10-ops/.venv",
        "db_ops_wheelhouse": fleet["house"],
        "db_pg_env": {
            "PGHOST": "localhost",
            "PGPORT": str(port),
            "PGUSER": "s10_runner",
            "PGDATABASE": "s10_managed",
            "PGPASSFILE": "/root/.pgpass",
        },
        "maint_cron_file": "/root/s10-maintenance.crontab",
        "maint_cron_user": "",
        "maint_log_file": "/root/maintenance.log",
    }
    inv = write_inventory(fleet["tmp"] / "managed.py", {"db_primary": [("runner", runner)]})
    deploy = pyinfra(inv)
    text = deploy.stdout + deploy.stderr
    assert deploy.returncode == 0, text[-3000:]
    assert re.search(r"could not: extension pg_stat_statements: permission denied", text), text[-3000:]
    verify = sh(
        "runner",
        f"PGHOST=localhost PGPORT={port} PGUSER=s10_runner PGDATABASE=s10_managed "
        "/opt/s10-ops/.venv/bin/ops migrate verify",
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "postgresql-15" not in sh("runner", "dpkg -l | grep postgresql || true").stdout


def test_restart_needed_is_reported_and_done_only_where_allowed(fleet):
    """A running server without auto_explain preloaded: the deploy reloads, says "restart needed" and exits
    non-zero (db_allow_restart false); with db_allow_restart true it restarts and the library is loaded."""
    conf = "/etc/postgresql/15/main/conf.d/s10-ops.conf"
    sh("db1", f"sed -i 's/pg_stat_statements,auto_explain/pg_stat_statements/' {conf} && pg_ctlcluster 15 main restart")
    show = "runuser -u postgres -- psql -XAtq -p {} -c 'show shared_preload_libraries'".format(fleet["pg_port"])
    assert sh("db1", show).stdout.strip() == "pg_stat_statements"
    no_restart = write_inventory(fleet["tmp"] / "norestart.py", {"db_primary": [("db1", fleet["db"])]})
    refused = pyinfra(no_restart)
    text = refused.stdout + refused.stderr
    assert refused.returncode != 0, text[-3000:]
    assert re.search(r"restart needed: PostgreSQL 15/main must restart for: shared_preload_libraries", text), text[
        -3000:
    ]
    assert sh("db1", show).stdout.strip() == "pg_stat_statements"  # not restarted
    again = pyinfra(no_restart)  # still pending: said again, still non-zero
    assert again.returncode != 0 and "restart needed" in again.stdout + again.stderr
    allowed = write_inventory(
        fleet["tmp"] / "restart.py", {"db_primary": [("db1", {**fleet["db"], "db_allow_restart": True})]}
    )
    done = pyinfra(allowed)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert sh("db1", show).stdout.strip() == "pg_stat_statements,auto_explain"


def test_gixy_passes_every_rendered_nginx_config(tmp_path):
    """Every Nginx config the inventories render (`ops render`, what the deploy writes) passes gixy."""
    # `ops render` runs as a subprocess: loading an inventory imports pyinfra_cli, which monkey-patches
    # threading with gevent, and that must not leak into this test process (threads + psycopg hang).
    gixy = Path(sys.executable).with_name("gixy")
    checked = 0
    for env in ("production", "staging", "local"):
        out = tmp_path / env
        proc = run_ops("render", "--env", env, "--out", str(out), "--json", env=dict(os.environ))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        for written in json.loads(proc.stdout)["files"]:
            if written["kind"] != "nginx-site":
                continue
            site = Path(written["file"])
            main = site.with_name("gixy-nginx.conf")
            main.write_text(f"events {{}}\nhttp {{\n    include {site};\n}}\n")
            check = subprocess.run([str(gixy), str(main)], capture_output=True, text=True, check=False)
            assert check.returncode == 0, f"{env} {written['host']}:\n{check.stdout}{check.stderr}"
            checked += 1
    assert checked >= 2
