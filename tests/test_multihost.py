"""pyinfra over real SSH to several test hosts, and a real streaming replica.

Each test host is an sshd on its own loopback address with its own paths; pyinfra deploys to
all of them in one run. The database primary is the session's test cluster; the replica is
made from it with pg_basebackup -R and started on another port.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from ops import REPO_ROOT
from ops.localpg import Cluster, free_port
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


def write_inventory(path: Path, hosts: dict[str, SshHost], db_env: dict[str, str]) -> Path:
    def entry(name: str) -> tuple[str, dict]:
        return (name, hosts[name].inventory_data())

    text = f"""
db_primary = ([{entry("db1")!r}], {{"db_ops_bin": {OPS!r}, "db_pg_env": {db_env!r}, "db_lock_timeout": 2, "db_retries": 2}})
web = ([{entry("web1")!r}, {entry("web2")!r}], {{}})
app = ([{entry("app1")!r}], {{}})
"""
    path.write_text(text)
    return path


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
    first = pyinfra(inventory)
    assert first.returncode == 0, first.stdout
    for name in HOSTS:
        assert re.search(rf"\[{name}\]\s+Connected", first.stdout), first.stdout
    assert result_row(first.stdout, MIGRATE_OP) == ["1", "1", "-", "-"]  # once, on db1 only
    assert run_ops("migrate", "verify", env=db.env).returncode == 0
    second = pyinfra(inventory)
    assert second.returncode == 0, second.stdout
    assert result_row(second.stdout, MIGRATE_OP) == ["1", "-", "-", "1"]


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

    inventory = write_inventory(tmp_path / "inv.py", ssh_hosts, replica_env)
    deploy = pyinfra(inventory, "--limit", "db_primary")
    assert deploy.returncode != 0
    assert re.search(r"\[db1\]\s+ops: error: the database in db_primary is a replica", deploy.stdout), deploy.stdout
    assert "web1" not in deploy.stdout  # --limit works per group
    assert run_ops("migrate", "status", "--json", env=db.env).returncode == 1  # nothing was written anywhere
