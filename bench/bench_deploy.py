"""Deploy: wall time of a first ``make demo`` and of a no-op re-deploy against ``@local``.

Runs the real commands on a throwaway copy of the embedded default: ``S10_LOCAL_DIR`` points
``.local/`` at a temporary directory and ``S10_LOCAL_*PORT`` at free ports, so the demo of
the person running the benchmark is not touched. ``.venv`` must exist (``make setup``): its
creation (pip) is not part of what is measured.

- first ``make demo``: initdb, start, the app's tables, ``pyinfra -y inventory/local.py deploy.py``
  (every migration built), ``ops migrate verify``;
- no-op re-deploy: ``pyinfra -y inventory/local.py deploy.py`` again, which must change nothing;
- ``make demo`` again, everything already in place.

    python -m bench.bench_deploy
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench.common import Result, fmt_s, note, progress, target
from ops import REPO_ROOT
from ops.localpg import Cluster, free_port

NOOP_RUNS = 3
PYINFRA = REPO_ROOT / ".venv" / "bin" / "pyinfra"
GRAND_TOTAL = re.compile(r"Grand total\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)")


def timed_run(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, check=False)
    elapsed = time.perf_counter() - t0
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{output[-3000:]}")
    return elapsed, output


def changed_ops(output: str) -> int:
    """Operations pyinfra reports as changed ('Success' column of the grand total; '-' is none)."""
    m = GRAND_TOTAL.search(output)
    if not m:
        raise RuntimeError(f"no pyinfra results table in the output:\n{output[-2000:]}")
    success = m.group(2)
    return 0 if success == "-" else int(success)


def run(scale: str = "small") -> Result:
    """First make demo, no-op re-deploys, make demo again: wall times on a throwaway .local/."""
    del scale  # the deploy does not depend on data size
    if not PYINFRA.exists():
        raise RuntimeError(".venv is missing: run 'make setup' first")
    root = Path(tempfile.mkdtemp(prefix="s10bench-deploy-"))
    root.chmod(0o755)  # the postgres OS user must reach the cluster directory
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "MAKE", "MFLAGS"))}
    # every port the demo opens is moved to a free one (PostgreSQL; Nginx and the stand-in app where deployed)
    env |= {
        "S10_LOCAL_DIR": str(root),
        "S10_LOCAL_PGPORT": str(port),
        "S10_LOCAL_WEBPORT": str(free_port()),
        "S10_LOCAL_APPPORT": str(free_port()),
    }
    deploy = [str(PYINFRA), "-y", "inventory/local.py", "deploy.py"]
    try:
        with progress() as prog:
            task = prog.add_task("first make demo", total=2 + NOOP_RUNS)
            first_s, first_out = timed_run(["make", "--no-print-directory", "demo"], env)
            prog.advance(task)
            noops: list[tuple[float, int]] = []
            for i in range(NOOP_RUNS):
                prog.update(task, description=f"no-op re-deploy {i + 1}/{NOOP_RUNS}")
                elapsed, output = timed_run(deploy, env)
                noops.append((elapsed, changed_ops(output)))
                prog.advance(task)
            prog.update(task, description="make demo again")
            again_s, again_out = timed_run(["make", "--no-print-directory", "demo"], env)
            prog.advance(task)
    finally:
        subprocess.run(
            ["make", "--no-print-directory", "demo-down"], env=env, cwd=REPO_ROOT, capture_output=True, check=False
        )
        Cluster(root=root / "pg", port=port).destroy()
        import shutil

        shutil.rmtree(root, ignore_errors=True)

    noop_times = [t for t, _ in noops]
    noop_median = statistics.median(noop_times)
    changed = sum(c for _, c in noops)
    first_changed = changed_ops(first_out)
    note(f"first make demo {fmt_s(first_s)}, no-op re-deploys {', '.join(fmt_s(t) for t in noop_times)}")
    rows = [
        ["first `make demo` (fresh .local: initdb, schema, deploy, verify)", fmt_s(first_s), str(first_changed)],
        [
            f"no-op re-deploy, `pyinfra -y inventory/local.py deploy.py` (median of {NOOP_RUNS})",
            fmt_s(noop_median),
            str(changed),
        ],
        ["no-op re-deploy, slowest run", fmt_s(max(noop_times)), ""],
        ["`make demo` again (everything in place)", fmt_s(again_s), str(changed_ops(again_out))],
    ]
    return {
        "name": "deploy",
        "title": "5. Deploy: first `make demo` and a no-op re-deploy against @local",
        "columns": ["what", "wall time", "operations changed"],
        "rows": rows,
        "targets": [
            target("no-op re-deploy", "< 2 s", f"median {fmt_s(noop_median)}", noop_median < 2),
            target("no-op re-deploy changes nothing", "0 changed", f"{changed} changed", changed == 0),
        ],
        "notes": [
            "A throwaway .local/ (S10_LOCAL_DIR) and free ports (S10_LOCAL_PGPORT, _WEBPORT, _APPPORT); .venv already set up, "
            "so pip is not timed. The first deploy builds every migration on the empty tables of the demo.",
            "pyinfra runs the `ops migrate status --json` fact on the host each time: part of the no-op time is "
            "starting Python twice (pyinfra itself and the ops CLI).",
        ],
        "data": {"first_make_demo_s": first_s, "noop_s": noop_times, "make_demo_again_s": again_s},
    }


if __name__ == "__main__":
    from bench.common import main

    main(run)
