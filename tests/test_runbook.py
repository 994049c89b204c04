"""RUNBOOK.md cannot rot: every command in its ```console blocks runs here, in order, against a real
PostgreSQL and a real nginx, and each verdict the runbook shows (the first output line's
OK/WARNING/CRITICAL/UNKNOWN) must be the verdict the command gives.

The runbook sets the scene for the test with HTML comments a reader does not see:
``<!-- runbook-test: load-jobs -->`` (the seed's tables with content_jobs loaded, pg_stat_statements
with the seed's query in it), ``<!-- runbook-test: bulk-load USER ROWS -->`` (a bulk load without
ANALYZE) and ``<!-- runbook-test: edge /PATH/ -->`` (https://api.example.com is the test nginx's
location /PATH/, one of tests/playbook_edge.py's cases).

To refresh the runbook's sample output: ``RUNBOOK_SHOW=1 pytest -s tests/test_runbook.py`` prints
what each command printed.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

from ops import REPO_ROOT
from tests.conftest import OPS_BIN
from tests.nginx_helper import Nginx
from tests.playbook_data import SEED_SLOW_QUERY, bulk_load_for_user, grant_diagnosis_role, hypopg_available, load_jobs

RUNBOOK = REPO_ROOT / "RUNBOOK.md"
API = "https://api.example.com"
TOKENS = re.compile(r"<!-- runbook-test: (?P<mark>.+?) -->|```console\n(?P<block>.*?)```", re.S)
VERDICT = re.compile(r"^(OK|WARNING|CRITICAL|UNKNOWN):")
EXIT = {"OK": 0, "WARNING": 1, "CRITICAL": 2, "UNKNOWN": 3}
RUNNABLE = {"ops", "psql"}


@dataclass
class Step:
    mark: str | None = None
    command: str | None = None
    sample: list[str] | None = None


def steps(text: str) -> Iterator[Step]:
    for m in TOKENS.finditer(text):
        if m["mark"]:
            yield Step(mark=m["mark"].strip())
            continue
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
                current.sample.append(line)  # type: ignore[union-attr]
            i += 1
        if current:
            yield current


def test_the_runbook_parses_into_commands():
    commands = [s for s in steps(RUNBOOK.read_text()) if s.command]
    assert len(commands) >= 8
    for step in commands:
        assert shlex.split(step.command)[0] in RUNNABLE, f"the test cannot run: {step.command}"  # type: ignore[arg-type]


def set_scene(mark: str, db, edge: Nginx, scene: dict) -> None:
    what, *args = mark.split()
    if what == "load-jobs":
        load_jobs(db.dsn, jobs=200_000)
        grant_diagnosis_role(db.dsn)  # slow-query runs EXPLAIN ANALYZE as s10_diagnosis
        db.execute("CREATE EXTENSION pg_stat_statements")
        if hypopg_available(db.cluster.dsn()):
            db.execute("CREATE EXTENSION hypopg")
        db.execute("SELECT pg_stat_statements_reset()")
        with db.connect() as conn:
            for user_id in range(1, 31):
                conn.execute(SEED_SLOW_QUERY.replace("$1", "%s"), (user_id,))
    elif what == "bulk-load":
        bulk_load_for_user(db.dsn, user_id=int(args[0]), rows=int(args[1]))
    elif what == "edge":
        scene["api"] = edge.url(args[0]).rstrip("/")
    else:
        raise AssertionError(f"unknown runbook-test mark: {mark}")


def test_every_runbook_command_runs_and_gives_the_verdict_it_shows(db, edge):
    env = {**db.env, "PATH": f"{OPS_BIN.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    scene: dict = {"api": API}
    ran = 0
    for step in steps(RUNBOOK.read_text()):
        if step.mark:
            set_scene(step.mark, db, edge, scene)
            continue
        command = step.command.replace(API, scene["api"])  # type: ignore[union-attr]
        argv = shlex.split(command)
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=180, cwd=REPO_ROOT)
        shown = next((VERDICT.match(line) for line in step.sample or [] if line.strip()), None)
        want = EXIT[shown[1]] if shown else 0
        where = f"RUNBOOK.md: $ {step.command}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        assert "Traceback" not in proc.stderr, where
        if os.environ.get("RUNBOOK_SHOW"):
            print(f"\n$ {step.command}\n{proc.stdout}{proc.stderr}")
        assert proc.returncode == want, where
        if shown:
            assert proc.stdout.startswith(shown[0]), where
        ran += 1
    assert ran >= 8
