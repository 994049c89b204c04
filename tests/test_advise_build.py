"""ops migrate apply sizes each build session: maintenance_work_mem and parallel workers, from options or the server."""

from __future__ import annotations

import json


def test_apply_sets_build_memory_and_workers_per_session(db, ops):
    proc = ops(
        "migrate",
        "apply",
        "--json",
        "--to",
        "0607bc5b8535",
        "--maintenance-work-mem",
        "256MB",
        "--parallel-workers",
        "1",
    )
    assert proc.returncode == 0, proc.stderr
    chosen = json.loads(proc.stdout)["build_settings"]
    assert chosen == {"maintenance_work_mem": "256MB", "max_parallel_maintenance_workers": "1"}
    assert "build settings: maintenance_work_mem=256MB" in proc.stderr
    # the server's own setting is untouched: it was this session's only
    assert db.fetchall("SELECT current_setting('maintenance_work_mem')") == [("64MB",)]


def test_defaults_are_sized_for_the_server(db, ops):
    proc = ops("migrate", "apply", "--json")
    assert proc.returncode == 0, proc.stderr
    chosen = json.loads(proc.stdout)["build_settings"]
    shared_buffers = db.fetchall("SELECT pg_size_bytes(current_setting('shared_buffers'))")[0][0]
    mem = db.fetchall("SELECT pg_size_bytes(%s)", (chosen["maintenance_work_mem"],))[0][0]
    assert mem == min(2 * 1024**3, max(64 * 1024**2, shared_buffers))  # never below the 64MB default
    assert 1 <= int(chosen["max_parallel_maintenance_workers"]) <= 4


def test_bad_build_settings_are_one_line(db, ops):
    for args in (("--maintenance-work-mem", "lots"), ("--maintenance-work-mem", "10kB"), ("--parallel-workers", "-1")):
        proc = ops("migrate", "apply", *args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
