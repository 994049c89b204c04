"""RUNBOOK.md cannot rot, and it works on the demo: every command in its ```console blocks runs
here, in order, on a demo brought up by the demo's own set-up path (``python -m ops.local.env demo``,
what ``make demo`` runs), in a directory and on ports of its own. Each verdict the runbook shows
(the first output line's OK/WARNING/CRITICAL/UNKNOWN) must be the verdict the command gives, and
its exit code the one that verdict means.

Nothing is set up behind the reader's back: the runbook's commands are the whole scene. The only
rewrite is the demo's Nginx address: the runbook shows the default ``127.0.0.1:8080``, the test
uses its own port.

To refresh the runbook's sample output: ``RUNBOOK_SHOW=1 pytest -s tests/test_runbook.py`` prints
what each command printed.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ops import REPO_ROOT
from ops.local.pg import free_port
from tests.conftest import OPS_BIN, run_local_env

RUNBOOK = REPO_ROOT / "RUNBOOK.md"
DEMO_WEB = "127.0.0.1:8080"  # the demo's Nginx as the runbook prints it (S10_LOCAL_WEBPORT's default)
CONSOLE = re.compile(r"```console\n(?P<block>.*?)```", re.S)
VERDICT = re.compile(r"^(OK|WARNING|CRITICAL|UNKNOWN):")
EXIT = {"OK": 0, "WARNING": 1, "CRITICAL": 2, "UNKNOWN": 3}
RUNNABLE = {"ops", "psql", "pyinfra"}


@dataclass
class Step:
    command: str
    sample: list[str]


def steps(text: str) -> Iterator[Step]:
    for m in CONSOLE.finditer(text):
        current: Step | None = None
        lines = m["block"].splitlines()
        i = 0
        while i < len(lines):
            line = lines[i]
            if line.startswith("$ "):
                if current:
                    yield current
                command = line[2:]
                while command.endswith("\\"):
                    i += 1
                    command = command[:-1] + lines[i].strip()
                current = Step(command=command, sample=[])
            elif current is not None:
                current.sample.append(line)
            i += 1
        if current:
            yield current


def test_the_runbook_parses_into_commands_a_reader_can_run_on_the_demo():
    text = RUNBOOK.read_text()
    commands = list(steps(text))
    assert len(commands) >= 10
    for step in commands:
        assert shlex.split(step.command)[0] in RUNNABLE, f"the test cannot run: {step.command}"
    assert "runbook-test" not in text, "no hidden set-up: the commands shown are the whole scene"
    for step in commands:  # what a reader runs on the demo calls the demo's Nginx
        assert "example.com" not in step.command, f"an outside host: {step.command}"


@dataclass
class Demo:
    env: dict[str, str]  # the process environment: S10_LOCAL_*, PATH with ops, and the demo database's PG*
    web_port: int
    first_run: str


@pytest.fixture(scope="module")
def demo() -> Iterator[Demo]:
    """The demo as ``make demo`` makes it, under a directory and ports of its own; stopped and removed after."""
    root = Path(tempfile.mkdtemp(prefix="s10demo-"))
    root.chmod(0o755)  # the server runs as postgres when we are root: it must reach root/pg
    web_port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "S10_LOCAL_", "COLUMNS"))}
    env.update(
        S10_LOCAL_DIR=str(root),
        S10_LOCAL_PGPORT=str(free_port()),
        S10_LOCAL_WEBPORT=str(web_port),
        S10_LOCAL_APPPORT=str(free_port()),
        PATH=f"{OPS_BIN.parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    try:
        up = run_local_env("demo", env=env)
        assert up.returncode == 0, f"{up.stdout}\n{up.stderr}"
        exports = run_local_env("env", env=env).stdout
        env.update(re.findall(r"^export (\w+)=(.*)$", exports, re.M))
        yield Demo(env=env, web_port=web_port, first_run=up.stdout)
    finally:
        run_local_env("down", env=env, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


def test_the_demo_loads_the_apps_data_and_a_second_run_changes_nothing(demo):
    assert "the app's data loaded" in demo.first_run and "the app's workload ran" in demo.first_run
    again = run_local_env("demo", env=demo.env)
    assert again.returncode == 0, again.stderr
    said = again.stdout + again.stderr  # pyinfra reports on stderr
    total = re.search(r"Grand total\s+(\d+)\s+(\S+)\s+(\S+)\s+(\d+)", said)
    assert total and total[2] == "-" and total[4] == total[1], f"the second deploy changed something:\n{said}"
    assert "the app's data loaded" not in again.stdout and "workload ran" not in again.stdout


def test_every_runbook_command_gives_on_the_demo_the_verdict_it_shows(demo):
    ran = 0
    for step in steps(RUNBOOK.read_text()):
        argv = shlex.split(step.command.replace(DEMO_WEB, f"127.0.0.1:{demo.web_port}"))
        proc = subprocess.run(argv, env=demo.env, capture_output=True, text=True, timeout=180, cwd=REPO_ROOT)
        shown = next((VERDICT.match(line) for line in step.sample if line.strip()), None)
        want = EXIT[shown[1]] if shown else 0
        where = f"RUNBOOK.md: $ {step.command}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        if os.environ.get("RUNBOOK_SHOW"):
            print(f"\n$ {step.command}\n{proc.stdout}{proc.stderr}")
        assert "Traceback" not in proc.stderr, where
        assert proc.returncode == want, where
        if shown:
            assert proc.stdout.startswith(shown[0]), where
        ran += 1
    assert ran >= 10
