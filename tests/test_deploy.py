"""pyinfra end to end against @local: the deploy applies the migrations through the ops CLI,
--dry predicts without changing, and a second run changes nothing."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from ops import REPO_ROOT

PYINFRA = Path(sys.executable).with_name("pyinfra")
OP = "S10 index migrations (online)"


def write_inventory(tmp_path: Path, db, **extra) -> Path:
    data = {
        "env": "test",
        "db_ops_bin": str(Path(sys.executable).with_name("ops")),
        "db_pg_env": db.cluster.env(db.name),
        "db_lock_timeout": 2,
        "db_retries": 3,
        **extra,
    }
    path = tmp_path / "test_inventory.py"
    path.write_text(f"_data = {data!r}\ndb_primary = (['@local'], _data)\n")
    return path


def pyinfra(inventory: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    """Run the deploy as devops do; -y (no prompt) unless it is a --dry run, which prints its detected changes."""
    yes = [] if "--dry" in flags else ["-y"]
    return subprocess.run(
        [str(PYINFRA), *yes, *flags, str(inventory), "deploy.py"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
    )


def result_row(output: str, op: str = OP) -> list[str]:
    """The Results table row for an operation: [hosts, success, error, no change]."""
    results = output.split("--> Results:")[-1]
    for line in results.splitlines():
        if line.strip().startswith(op):
            return line.strip()[len(op) :].split()
    raise AssertionError(f"no result row for {op!r} in:\n{output}")


def test_deploy_applies_then_changes_nothing(db, ops, tmp_path):
    inventory = write_inventory(tmp_path, db)

    dry = pyinfra(inventory, "--dry")
    assert dry.returncode == 0, dry.stdout
    assert re.search(rf"{re.escape(OP)}\s+1 \(@local\)", dry.stdout), dry.stdout
    assert db.fetchall("SELECT to_regclass('ops_migrations')")[0][0] is None, "--dry changed the database"

    first = pyinfra(inventory)
    assert first.returncode == 0, first.stdout
    assert result_row(first.stdout) == ["1", "1", "-", "-"]
    assert ops("migrate", "verify").returncode == 0

    second = pyinfra(inventory)
    assert second.returncode == 0, second.stdout
    assert result_row(second.stdout) == ["1", "-", "-", "1"]  # Success '-': nothing changed
    dry_again = pyinfra(inventory, "--dry")
    assert not re.search(rf"{re.escape(OP)}\s+1 \(@local\)", dry_again.stdout), dry_again.stdout


def test_deploy_repairs_a_dropped_index(db, ops, tmp_path):
    inventory = write_inventory(tmp_path, db)
    assert pyinfra(inventory).returncode == 0
    db.execute("DROP INDEX idx_sessions_user_id")
    again = pyinfra(inventory)
    assert again.returncode == 0, again.stdout
    assert result_row(again.stdout) == ["1", "1", "-", "-"]
    assert ops("migrate", "verify").returncode == 0


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"db_pg_env": {"PGPASSWORD": "hunter2"}}, "PGPASSWORD is not allowed"),
        ({"db_lock_timeout": -1}, "lock_timeout"),
        ({"db_ops_bin": "ops"}, "must be an absolute path"),
    ],
)
def test_bad_settings_rejected_before_touching_the_host(db, tmp_path, extra, message):
    inventory = write_inventory(tmp_path, db, **extra)
    proc = pyinfra(inventory)
    assert proc.returncode != 0
    out = proc.stdout
    assert message in out
    assert "hunter2" not in out
    assert db.fetchall("SELECT to_regclass('ops_migrations')")[0][0] is None


def test_unreachable_database_fails_the_deploy_clearly(db, tmp_path):
    env = dict(db.cluster.env(db.name), PGHOST="127.0.0.1", PGPORT="1")
    inventory = write_inventory(tmp_path, db, db_pg_env=env)
    proc = pyinfra(inventory)
    assert proc.returncode != 0
    assert re.search(r"cannot connect to the database", proc.stdout)
