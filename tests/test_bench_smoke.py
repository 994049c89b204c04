"""Smoke run of the query benchmark at the smallest scale: it runs end to end and writes its results.

Not a benchmark (no number is checked): the numbers come from ``make bench``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from ops import REPO_ROOT


def test_query_benchmark_writes_results(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["S10_BENCH_RESULTS_DIR"] = str(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "bench.bench_queries", "--scale", "tiny"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "latest.json").read_text())
    assert results["machine"]["cores"] and results["machine"]["postgresql"] != "not found"
    queries = results["benchmarks"]["queries"]
    assert queries["scale"] == "tiny"
    assert [row[0] for row in queries["rows"]][:2] == ["user by email", "a user's jobs, newest 50"]
    assert len(queries["rows"]) == 7
    assert all(row[2] and row[4] for row in queries["rows"]), "every pattern timed before and after"
    md = (tmp_path / "latest.md").read_text()
    assert "Seed query table" in md and "| user by email |" in md
    assert "user by email" in proc.stdout, "the table is printed"
