"""One JSON shape for every command, errors included: each ``ops`` command, found by walking the CLI
(a new command is covered without touching this file), runs with ``--json`` on a demo-like database
(the app's tables with data, pg_stat_statements), with the database unreachable, and with a bad
flag. Each time stdout is ONE envelope: ``status`` (a word), ``exit_code`` (the process's),
``summary``, then the command's data; never a traceback.

An error is said once per reader: with ``--json`` the envelope on stdout and one line on stderr for
the log; without, a check's verdict line on stdout (where monitoring reads it), an action's one
line on stderr.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from ops.cli import ACTIONS, app
from ops.local import demo, demodata
from ops.local.pg import free_port
from tests.conftest import Database, fresh_database, run_ops
from tests.playbook_edge import PAGE_ORIGIN

WORDS = {"OK", "WARNING", "CRITICAL", "UNKNOWN", "FAILED", "ERROR"}
VERDICT = re.compile(r"^(OK|WARNING|CRITICAL|UNKNOWN): \S")

#: Arguments for the commands that require some; {out} and {edge} are filled in by the test.
REQUIRED_ARGS: dict[tuple[str, ...], list[str]] = {
    ("render",): ["--env", "local", "--out", "{out}"],
    ("playbook", "slow-query"): [
        "SELECT * FROM content_jobs WHERE user_id = $1 ORDER BY created_at DESC LIMIT 50",
        "--params",
        "1",
    ],
    ("playbook", "cors"): ["{edge}", "--origin", PAGE_ORIGIN],
    ("maintain", "chain"): ["ops playbook index-health"],
}


def commands() -> list[tuple[str, ...]]:
    """Every leaf command of the ops CLI, as its words: ("maintain", "usage"), ("render",)..."""
    from typer.main import get_command

    found: list[tuple[str, ...]] = []

    def walk(command: Any, path: tuple[str, ...]) -> None:
        subs = getattr(command, "commands", None)
        if subs is None:
            found.append(path)
            return
        for name, sub in subs.items():
            walk(sub, (*path, name))

    walk(get_command(app), ())
    return found


def required_params(path: tuple[str, ...]) -> list[str]:
    from typer.main import get_command

    command: Any = get_command(app)
    for word in path:
        command = command.commands[word]
    return [p.name for p in command.params if p.required]


COMMANDS = commands()
IDS = [" ".join(c) for c in COMMANDS]


@pytest.fixture(scope="module")
def demo_db(pg_cluster) -> Iterator[Database]:
    """A demo-like database: the app's tables with the demo's generator's data (tiny scale), the demo's extensions."""
    with fresh_database(pg_cluster, prefix="env_") as db:
        demodata.load(db.dsn, demodata.SCALES["tiny"])
        demo.extensions(db.dsn)  # as the demo has them: pg_stat_statements, hypopg
        db.execute("SELECT * FROM content_jobs WHERE user_id = 1 ORDER BY created_at DESC LIMIT 50")
        yield db


def argv(path: tuple[str, ...], edge, tmp_path) -> list[str]:
    missing = [p for p in required_params(path) if path not in REQUIRED_ARGS]
    assert not missing, f"ops {' '.join(path)} requires {missing}: add its arguments to REQUIRED_ARGS"
    fill = {"out": str(tmp_path / "out"), "edge": edge.url("/good/jobs")}
    return [*path, *(a.format(**fill) for a in REQUIRED_ARGS.get(path, []))]


def assert_one_envelope(proc: subprocess.CompletedProcess[str], where: str) -> dict[str, Any]:
    said = f"{where}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    assert "Traceback" not in proc.stderr + proc.stdout, said
    try:
        doc = json.loads(proc.stdout)  # the whole of stdout is one JSON document
    except json.JSONDecodeError:
        pytest.fail(f"stdout is not one JSON document: {said}")
    assert isinstance(doc, dict), said
    assert list(doc)[:3] == ["status", "exit_code", "summary"], said
    assert doc["status"] in WORDS, said
    assert doc["exit_code"] == proc.returncode, said
    assert isinstance(doc["summary"], str) and doc["summary"].strip(), said
    return doc


@pytest.mark.parametrize("path", COMMANDS, ids=IDS)
def test_every_command_answers_json_in_one_envelope(path, demo_db, edge, tmp_path):
    args = argv(path, edge, tmp_path)
    proc = run_ops(*args, "--json", env=demo_db.env)
    doc = assert_one_envelope(proc, f"ops {' '.join(args)} --json")
    words = {"OK", "FAILED"} if path in ACTIONS else {"OK", "WARNING", "CRITICAL", "UNKNOWN"}
    assert doc["status"] in words, f"ops {' '.join(args)} --json\n{proc.stdout}\n{proc.stderr}"


def unreachable_env(demo_db: Database) -> dict[str, str]:
    return dict(demo_db.env, PGHOST="127.0.0.1", PGPORT=str(free_port()))  # nothing listens there


@pytest.mark.parametrize("path", COMMANDS, ids=IDS)
def test_an_unreachable_database_is_one_envelope_too(path, demo_db, edge, tmp_path):
    args = argv(path, edge, tmp_path)
    proc = run_ops(*args, "--json", env=unreachable_env(demo_db))
    doc = assert_one_envelope(proc, f"ops {' '.join(args)} --json (database unreachable)")
    if proc.returncode == 3:  # the cause in the envelope; at most one line on stderr, for the log
        assert "cannot connect to the database" in json.dumps(doc), doc
        assert len(proc.stderr.strip().splitlines()) <= 1, proc.stderr


@pytest.mark.parametrize("path", COMMANDS, ids=IDS)
def test_a_bad_flag_is_an_error_envelope(path, demo_db, edge, tmp_path):
    args = argv(path, edge, tmp_path)
    proc = run_ops(*args, "--no-such-flag", "--json", env=demo_db.env)
    doc = assert_one_envelope(proc, f"ops {' '.join(args)} --no-such-flag --json")
    assert proc.returncode == 2 and doc["status"] == "ERROR" and "--no-such-flag" in doc["summary"]


@pytest.mark.parametrize("path", COMMANDS, ids=IDS)
def test_without_json_an_unreachable_database_is_said_once(path, demo_db, edge, tmp_path):
    args = argv(path, edge, tmp_path)
    proc = run_ops(*args, env=unreachable_env(demo_db))
    said = f"ops {' '.join(args)}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, said
    if proc.returncode != 3:  # this command needs no database (render, cors): nothing to say about it
        return
    everything = proc.stdout + proc.stderr
    assert everything.count("cannot connect to the database") == 1, said
    if path in ACTIONS:  # an action's own failure is its stderr line (a chain passes its steps' output on)
        assert not proc.stdout or path == ("maintain", "chain"), said
    else:
        assert VERDICT.match(proc.stdout) and proc.stdout.startswith("UNKNOWN: cannot connect"), said


def test_a_check_that_cannot_tell_is_unknown_not_failed(db, ops):
    """ops advise is a check (0 nothing, 1 proposals, 3 could not advise): without its extensions it cannot tell."""
    proc = ops("advise", "--json")
    doc = assert_one_envelope(proc, "ops advise --json (no extensions in the database)")
    assert proc.returncode == 3 and doc["status"] == "UNKNOWN" and "is not installed" in doc["summary"], doc
    human = ops("advise")
    assert human.returncode == 3 and human.stdout.startswith("UNKNOWN: ") and "is not installed" in human.stdout
    assert "is not installed" not in human.stderr, human  # said once
