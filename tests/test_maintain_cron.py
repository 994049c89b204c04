"""The deploy installs the maintenance jobs as a crontab file; the lines it writes really run."""

from __future__ import annotations

import fcntl
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ops import REPO_ROOT
from ops.db import lock_key
from ops.deploy.cron import cron_lines, render
from ops.errors import UsageError
from ops.maintain import LOCK_NAME as MAINTENANCE_LOCK
from ops.settings import DbSettings, MaintenanceSettings, validate
from tests.conftest import run_ops

PYINFRA = Path(sys.executable).with_name("pyinfra")
PATH = "/usr/local/bin:/usr/bin:/bin"
OPS_BIN = Path(sys.executable).with_name("ops")

INVENTORY = """
db_primary = (["@local"], {{
    "db_ops_bin": {ops!r},
    "db_pg_env": {pg_env!r},
    "maint_cron_file": {root!r} + "/cron/s10-maintenance.crontab",
    "maint_cron_user": "",
    "maint_log_file": {root!r} + "/log/maintenance.log",
    "maint_lock_dir": {root!r} + "/run",
    "maint_metrics_dir": {root!r} + "/metrics",
    "maint_reindex": {{"schedule": "0 3 1-7 * *", "weekday": 7, "options": ["--min-size", "8kB"]}},
}})
"""


def deploy(inventory: Path) -> str:
    proc = subprocess.run(
        [str(PYINFRA), "-y", str(inventory), "deploy.py"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def parse_crontab(text: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """(environment lines, [(schedule, command)]) of a user crontab."""
    env, jobs = {}, []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        m = re.match(r"^([A-Z_]+)=(.*)$", line)
        if m:
            env[m.group(1)] = m.group(2)
            continue
        fields = line.split(None, 5)
        jobs.append((" ".join(fields[:5]), fields[5]))
    return env, jobs


def run_cron_command(command: str, env: dict[str, str]) -> None:
    """Run a crontab command as cron would: /bin/sh, the crontab's environment, '\\%' unescaped.
    The first-Sunday guard is taken off so the test runs on any day."""
    command = command.replace("\\%", "%")
    command = re.sub(r'^\[ "\$\(date \+%u\)" = \d \] && ', "", command)
    subprocess.run(["/bin/sh", "-c", command], env=env, check=False, timeout=300, cwd="/")


@pytest.fixture
def deployed(db, tmp_path):
    root = tmp_path / "local"
    inv = tmp_path / "inventory.py"
    pg_env = {k: v for k, v in db.env.items() if k.startswith("PG")}
    inv.write_text(INVENTORY.format(ops=str(OPS_BIN), pg_env=pg_env, root=str(root)))
    first = deploy(inv)
    return db, inv, root, first


def test_deploy_writes_the_crontab_once_and_its_lines_run(deployed):
    db, inv, root, first = deployed
    assert "S10 scheduled maintenance (cron)" in first
    crontab = root / "cron" / "s10-maintenance.crontab"
    text = crontab.read_text()
    env, jobs = parse_crontab(text)
    assert set(env) >= {"PGHOST", "PGPORT", "PGDATABASE", "SHELL", "PATH"}
    assert "PGPASSWORD" not in text and "password=" not in text.lower()
    schedules = [s for s, _ in jobs]
    assert schedules == ["0 6 * * 1", "0 3 1-7 * *", "0 4 1-7 1,4,7,10 *"]
    for _, command in jobs:
        assert "flock -n" in command and str(root / "log" / "maintenance.log") in command
    assert jobs[1][1].startswith('[ "$(date +\\%u)" = 7 ] && ')  # first Sunday only
    assert "maintain chain 'ops maintain reindex --lock-timeout" in jobs[1][1]
    assert (
        "'ops maintain analyze --metrics-file" in jobs[1][1]
        and "'ops playbook integrity --max-duration 30m'" in jobs[1][1]
    )

    # a second deploy changes nothing
    second = deploy(inv)
    assert re.search(r"Grand total\s+(\d+)\s+-\s+-\s+\1\s", second), second  # every operation: no change
    assert crontab.read_text() == text

    # the lines run the real commands against the database
    db.execute("CREATE EXTENSION IF NOT EXISTS amcheck")  # the deploy's ops provision may have made it
    run_env = {"HOME": "/root", **env}
    for _, command in jobs:
        run_cron_command(command, run_env)
    log = (root / "log" / "maintenance.log").read_text()
    assert "s10-ops usage: exit 1" in log  # WARNING: the seed's redundant indexes
    assert "s10-ops reindex: exit 0" in log and "done:" in log
    for step in ("analyze", "integrity", "monthly"):  # the monthly chain: each step's own status
        assert f"s10-ops {step}: exit 0" in log, log
    assert "OK: " in log and "btree index(es) checked with bt_index_check" in log
    assert "s10-ops bloat: exit" in log
    for job in ("usage", "reindex", "analyze", "bloat"):
        prom = root / "metrics" / f"s10_maintain_{job}.prom"
        check = subprocess.run(["promtool", "check", "metrics"], input=prom.read_text(), capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
    assert not db.fetchall("SELECT 1 FROM pg_stat_user_tables WHERE last_analyze IS NULL AND last_autoanalyze IS NULL")


def test_a_run_still_holding_the_lock_makes_the_next_skip(deployed):
    db, inv, root, _ = deployed
    env, jobs = parse_crontab((root / "cron" / "s10-maintenance.crontab").read_text())
    lock = root / "run" / "s10-ops-maintain-usage.lock"
    with open(lock, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        run_cron_command(jobs[0][1], {"HOME": "/root", **env})
    log = (root / "log" / "maintenance.log").read_text()
    assert "s10-ops usage: skipped, the previous run still holds" in log
    assert not (root / "metrics" / "s10_maintain_usage.prom").exists()


def test_settings_are_validated_before_anything_runs():
    db = DbSettings(ops_bin="/usr/bin/ops", pg_env={"PGSERVICE": "s10"})
    with pytest.raises(UsageError, match="reindex.schedule"):
        validate(MaintenanceSettings, {"reindex": {"schedule": "every sunday"}}, "test")
    with pytest.raises(UsageError, match="log_file"):
        validate(MaintenanceSettings, {"log_file": "relative.log"}, "test")
    with pytest.raises(UsageError, match="options"):
        validate(MaintenanceSettings, {"usage": {"schedule": "0 6 * * 1", "options": ["; rm -rf /"]}}, "test")
    # production defaults: an /etc/cron.d file with a user column, reached through a service
    text = render(MaintenanceSettings(), db)
    assert "PGSERVICE=s10" in text
    env, _ = parse_crontab(text)
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#") and "=" not in ln.split()[0]]
    assert all(ln.split()[5] == "postgres" for ln in lines)
    assert os.path.basename(MaintenanceSettings().cron_file) == "s10-ops-maintenance"
    assert json.dumps(MaintenanceSettings().model_dump())  # serialisable for pyinfra's --debug output


def test_a_failed_step_fails_the_monthly_chain_and_the_log_shows_which(db, tmp_path):
    """Another run holds the maintenance lock while REINDEX starts: REINDEX fails, ANALYZE and the
    integrity check still run, and the log and the exit status say REINDEX failed."""
    settings = MaintenanceSettings(
        cron_user="",
        log_file=str(tmp_path / "maintenance.log"),
        lock_dir=str(tmp_path),
        reindex={"schedule": "0 3 * * *", "options": ["--lock-wait", "0"]},
    )
    pg_env = {k: v for k, v in db.env.items() if k.startswith("PG")}
    [monthly] = [
        c for c in cron_lines(settings, DbSettings(ops_bin=str(OPS_BIN), pg_env=pg_env)) if "chain" in c.command
    ]
    db.execute("CREATE EXTENSION amcheck")
    log = tmp_path / "maintenance.log"
    with db.connect() as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (lock_key(MAINTENANCE_LOCK),))
        proc = subprocess.Popen(["/bin/sh", "-c", monthly.command], env={"HOME": "/root", **pg_env, "PATH": PATH})
        deadline = time.monotonic() + 60
        while "s10-ops reindex: exit" not in (log.read_text() if log.exists() else ""):
            assert time.monotonic() < deadline and proc.poll() is None, log.read_text()
            time.sleep(0.1)
        holder.execute("SELECT pg_advisory_unlock(%s)", (lock_key(MAINTENANCE_LOCK),))  # ANALYZE may go on
        proc.wait(timeout=120)
    text = log.read_text()
    assert "s10-ops reindex: exit 1" in text and "another 'maintain' run holds the lock" in text, text
    assert "s10-ops analyze: exit 0" in text and "s10-ops integrity: exit 0" in text, text
    assert "s10-ops monthly: exit 1" in text, text
    assert "chain: 1 of 3 step(s) failed: reindex (exit 1); exit 1" in text


def test_the_chain_command_runs_every_step_and_exits_with_the_first_failure(db):
    bad = run_ops("maintain", "chain", "ops maintain reindex --min-size huge", "playbook locks", env=db.env)
    assert bad.returncode == 2, bad.stdout + bad.stderr
    assert bad.stdout.splitlines() == [
        "s10-ops reindex: exit 2",
        "OK: no session waits for a lock",
        "s10-ops locks: exit 0",
    ]
    data = json.loads(run_ops("maintain", "chain", "--json", "playbook locks", "maintain analyze", env=db.env).stdout)
    assert (
        data["status"] == "OK" and data["exit_code"] == 0 and [s["step"] for s in data["steps"]] == ["locks", "analyze"]
    )
    assert data["steps"][0]["stdout"].startswith("OK: no session waits for a lock")
    for step in ("rm -rf /", "ops maintain chain 'maintain analyze'", "ops", ""):
        proc = run_ops("maintain", "chain", step, env=db.env)
        assert proc.returncode == 2 and "bad step" in proc.stderr and not proc.stdout, proc.stdout + proc.stderr
