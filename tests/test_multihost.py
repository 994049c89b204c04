"""pyinfra over real SSH to several test hosts, and a real streaming replica.

Each test host is an sshd on its own loopback address with its own paths; pyinfra deploys to
all of them in one run. The database primary is the session's test cluster; the replica is
made from it with pg_basebackup -R and started on another port.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from ops import REPO_ROOT
from ops.local.pg import Cluster, free_port
from tests.conftest import run_ops
from tests.sshhosts import SshHost, make_key

PYINFRA = Path(sys.executable).with_name("pyinfra")
OPS = str(Path(sys.executable).with_name("ops"))
MIGRATE_OP = "S10 index migrations (online)"
HOSTS = {"db1": "127.0.0.2", "web1": "127.0.0.3", "web2": "127.0.0.4", "app1": "127.0.0.5"}


@pytest.fixture(scope="module")
def ssh_hosts():
    root = Path(tempfile.mkdtemp(prefix="s10ssh-"))
    key = make_key(root / "id_ed25519")
    hosts = {name: SshHost(name, addr, root / name, key) for name, addr in HOSTS.items()}
    for host in hosts.values():
        host.start()
    yield hosts
    for host in hosts.values():
        host.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def replica(pg_cluster):
    root = Path(tempfile.mkdtemp(prefix="s10replica-"))
    standby = Cluster(root=root, port=free_port())
    standby.replica_of(pg_cluster)
    yield standby
    standby.destroy()


def wait_replayed(primary_db, standby: Cluster, timeout: float = 30) -> None:
    """Wait until the standby has replayed everything the primary has written so far."""
    (lsn,) = primary_db.fetchall("SELECT pg_current_wal_lsn()::text")[0]
    import psycopg

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(standby.dsn(primary_db.name)) as conn:
                done = conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,)).fetchone()[0]
            if done:
                return
        except psycopg.OperationalError:
            pass
        time.sleep(0.2)
    raise AssertionError("replica did not catch up")


WEB_PORT = free_port()  # each web host's nginx listens on its own address, same port


def nginx_cmd(root: Path) -> str:
    return f"nginx -p {root}/nginx/ -e logs/error.log -c {root}/nginx/conf/nginx.conf"


def host_data(name: str, host: SshHost, db_env: dict[str, str]) -> dict:
    """Each host's own paths (the hosts share this machine), as a real inventory gives them."""
    root = host.root
    data: dict = dict(host.inventory_data())
    if name.startswith("db"):
        data.update(
            {
                "db_ops_bin": OPS,
                "db_pg_env": db_env,
                "db_lock_timeout": 2,
                "db_retries": 2,
                "maint_cron_file": f"{root}/cron/s10-maintenance.crontab",
                "maint_cron_user": "",
                "maint_log_file": f"{root}/log/maintenance.log",
                "maint_lock_dir": f"{root}/run",
            }
        )
    if name.startswith("web"):
        data.update(
            {
                "web_prefix": f"{root}/nginx",
                "web_main_conf": f"{root}/nginx/conf/nginx.conf",
                "web_site_path": f"{root}/nginx/conf/s10-site.conf",
                "web_staging_dir": f"{root}/nginx/staging",
                "web_access_log": f"{root}/nginx/logs/access.log",
                "web_listen": f"{host.address}:{WEB_PORT}",
                "web_upstream": "127.0.0.1:9",
                # reload a running nginx, or start it: this host's own server on its own address
                "web_reload_command": f"mkdir -p {root}/nginx/logs && ({nginx_cmd(root)} -s reload 2>/dev/null || {nginx_cmd(root)})",
            }
        )
    if name.startswith("app"):
        data.update({"app_env_path": f"{root}/app/cors.env"})
    return data


CORS = {
    "cors_mode": "edge",
    "cors_origins": ["https://app.example.com"],
    "cors_allow_credentials": True,
    "cors_max_age": 7200,
}


def write_inventory(path: Path, hosts: dict[str, SshHost], db_env: dict[str, str]) -> Path:
    def entry(name: str) -> tuple[str, dict]:
        return (name, host_data(name, hosts[name], db_env))

    text = f"""
db_primary = ([{entry("db1")!r}], {{}})
web = ([{entry("web1")!r}, {entry("web2")!r}], {CORS!r})
app = ([{entry("app1")!r}], {CORS!r})
"""
    path.write_text(text)
    return path


def deployed_files(host: SshHost) -> set[str]:
    """What the deploy left under a host's root (its sshd files aside)."""
    ignore = {"sshd_config", "authorized_keys", "ssh_host_ed25519_key", "ssh_host_ed25519_key.pub", "sshd.pid"}
    return {
        str(p.relative_to(host.root))
        for p in host.root.rglob("*")
        if p.is_file() and p.name not in ignore and "logs" not in p.parts and "client_body_temp" not in str(p)
    }


def preflight(address: str) -> dict[str, str]:
    import urllib.request

    req = urllib.request.Request(
        f"http://{address}:{WEB_PORT}/api/auth/me",
        method="OPTIONS",
        headers={
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        return {"status": str(resp.status), **{k.lower(): v for k, v in resp.headers.items()}}


def stop_nginx(hosts: dict[str, SshHost]) -> None:
    for name in ("web1", "web2"):
        subprocess.run(f"{nginx_cmd(hosts[name].root)} -s quit", shell=True, capture_output=True, check=False)


def pyinfra(inventory: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PYINFRA), "-y", *flags, str(inventory), "deploy.py"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
    )


def result_row(output: str, op: str) -> list[str]:
    for line in output.split("--> Results:")[-1].splitlines():
        if line.strip().startswith(op):
            return line.strip()[len(op) :].split()
    raise AssertionError(f"no result row for {op!r} in:\n{output}")


def test_one_run_over_ssh_provisions_every_host_idempotently(db, ssh_hosts, tmp_path):
    inventory = write_inventory(tmp_path / "inv.py", ssh_hosts, db.cluster.env(db.name))
    try:
        first = pyinfra(inventory)
        assert first.returncode == 0, first.stdout
        for name in HOSTS:
            assert re.search(rf"\[{name}\]\s+Connected", first.stdout), first.stdout
        assert result_row(first.stdout, MIGRATE_OP) == ["1", "1", "-", "-"]  # once, on db1 only
        assert run_ops("migrate", "verify", env=db.env).returncode == 0

        # each host received exactly its pieces
        files = {name: deployed_files(host) for name, host in ssh_hosts.items()}
        assert files["db1"] == {"cron/s10-maintenance.crontab"}
        for web in ("web1", "web2"):
            assert {"nginx/conf/s10-site.conf", "nginx/conf/nginx.conf"} <= files[web]
            assert not any("cron" in f or f.endswith(".env") for f in files[web])
            answer = preflight(HOSTS[web])  # that host's own nginx answers at the edge
            assert answer["status"] == "204" and answer["access-control-max-age"] == "7200"
            assert answer["access-control-allow-origin"] == "https://app.example.com"
        assert files["app1"] == {"app/cors.env"}
        crontab = (ssh_hosts["db1"].root / "cron" / "s10-maintenance.crontab").read_text()
        assert "ops maintain reindex" in crontab and "PGPASSWORD" not in crontab

        second = pyinfra(inventory)
        assert second.returncode == 0, second.stdout
        assert result_row(second.stdout, MIGRATE_OP) == ["1", "-", "-", "1"]
        grand = result_row(second.stdout, "Grand total")
        assert grand[1] == "-", second.stdout  # no operation changed anything on any host
    finally:
        stop_nginx(ssh_hosts)


def test_one_host_down_fails_alone(db, ssh_hosts, tmp_path):
    inventory = write_inventory(tmp_path / "inv.py", ssh_hosts, db.cluster.env(db.name))
    ssh_hosts["web2"].stop()
    try:
        proc = pyinfra(inventory)
    finally:
        ssh_hosts["web2"].start()
    assert re.search(r"\[web2\]\s+Could not connect", proc.stdout), proc.stdout
    assert result_row(proc.stdout, MIGRATE_OP)[:2] == ["1", "1"]  # db1 still got its migrations
    assert run_ops("migrate", "verify", env=db.env).returncode == 0


def test_migrations_refuse_a_replica(db, replica, ssh_hosts, tmp_path):
    wait_replayed(db, replica)
    replica_env = replica.env(db.name)
    proc = run_ops("migrate", "apply", env=dict(db.env, **replica_env))
    assert proc.returncode == 1
    assert "is a replica" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    for job in ("reindex", "analyze"):  # the maintenance actions share the same guard
        refused = run_ops("maintain", job, env=dict(db.env, **replica_env))
        assert refused.returncode == 1, refused.stderr
        assert (
            f"is a replica (pg_is_in_recovery() is true): ops maintain {job} runs on the primary only" in refused.stderr
        )

    inventory = write_inventory(tmp_path / "inv.py", ssh_hosts, replica_env)
    deploy = pyinfra(inventory, "--limit", "db_primary")
    assert deploy.returncode != 0
    assert re.search(r"\[db1\]\s+ops: error: the database in db_primary is a replica", deploy.stdout), deploy.stdout
    assert "web1" not in deploy.stdout  # --limit works per group
    assert run_ops("migrate", "status", "--json", env=db.env).returncode == 1  # nothing was written anywhere


def test_cluster_wide_usage_counts_the_replicas_scans(db, replica):
    run_ops("migrate", "apply", env=db.env, check=True)
    db.execute(
        "INSERT INTO users (email) VALUES ('owner@example.com');"
        "INSERT INTO organizations (name, owner_id) SELECT 'o', id FROM users"
    )
    wait_replayed(db, replica)
    import psycopg

    # The replica's read traffic lives on idx_organizations_owner_id; the primary never uses it.
    with psycopg.connect(replica.dsn(db.name), autocommit=True) as conn:
        conn.execute("SET enable_seqscan = off")
        for _ in range(3):
            conn.execute("SELECT * FROM organizations WHERE owner_id = 1").fetchall()
        conn.execute("SELECT pg_stat_force_next_flush()")
        conn.execute("SELECT 1")  # the flush happens at the end of a transaction
    time.sleep(0.5)

    def unused(*extra: str) -> dict:
        proc = run_ops("maintain", "usage", "--json", "--min-stats-age", "0s", *extra, env=db.env)
        assert proc.returncode in (0, 1), proc.stderr
        return json.loads(proc.stdout)

    primary_only = unused()
    assert "idx_organizations_owner_id" in {f["index"] for f in primary_only["unused"]}

    cluster = unused("--replica", replica.dsn(db.name))
    assert "idx_organizations_owner_id" not in {f["index"] for f in cluster["unused"]}
    row = next(r for r in cluster["indexes"] if r["index"] == "idx_organizations_owner_id")
    replica_node = next(n["node"] for n in cluster["nodes"] if n["role"] == "replica")
    assert row["scans_by_node"][replica_node] >= 3 and row["scans"] >= 3
    assert [n["role"] for n in cluster["nodes"]] == ["primary", "replica"]
    assert all(n["counting_since"] for n in cluster["nodes"])

    down = run_ops("maintain", "usage", "--replica", "host=127.0.0.1 port=1 dbname=x", env=db.env)
    assert down.returncode == 3 and "replica host=127.0.0.1 port=1" in down.stdout  # the UNKNOWN verdict


def test_the_weekly_usage_job_counts_the_replicas(db, replica, tmp_path):
    """The crontab the deploy writes passes each replica to the usage report, and that line runs."""
    from ops.deploy.cron import cron_lines
    from ops.settings import DbSettings, MaintenanceSettings

    settings = MaintenanceSettings(
        cron_file=str(tmp_path / "crontab"),
        cron_user="",
        log_file=str(tmp_path / "maint.log"),
        lock_dir=str(tmp_path),
        replica_dsns=[replica.dsn(db.name)],
    )
    dbs = DbSettings(ops_bin=OPS, pg_env=db.cluster.env(db.name))
    usage = next(line for line in cron_lines(settings, dbs) if "usage" in line.command)
    assert f"--replica '{replica.dsn(db.name)}'" in usage.command
    # cron gives the job the crontab's PG* lines as its environment
    proc = subprocess.run(usage.command, shell=True, capture_output=True, text=True, timeout=120, env=db.env)
    assert proc.returncode == 0, proc.stderr
    log = (tmp_path / "maint.log").read_text()
    assert "UNKNOWN" not in log, log
    assert f"replica  {replica.socket_dir}:{replica.port}/{db.name}" in log, log


@pytest.mark.parametrize("env", ["staging", "production"])
def test_example_inventories_validate_and_render_without_connecting(env, tmp_path):
    """Every host's settings in the example inventories are valid; render writes each host's pieces."""
    proc = run_ops("render", "--env", env, "--out", str(tmp_path), "--json", env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    written = json.loads(proc.stdout)["files"]
    kinds = {}
    for w in written:
        kinds.setdefault(w["host"].split(".")[0][:-1], set()).add(w["kind"])
    assert kinds == {
        "db": {"crontab", "exporter-queries", "exporter-env"},
        "web": {"nginx-site"},
        "app": {"app-env"},
        "mon": {"prometheus-rules", "prometheus-config", "dashboard", "cors-cron"},
    }
    crontab = next(Path(w["file"]) for w in written if w["kind"] == "crontab").read_text()
    assert "--replica service=s10_db2" in crontab and "PGPASSWORD" not in crontab
