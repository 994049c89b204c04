"""Deploy: wall time of a first ``make demo`` and of a no-op re-deploy against ``@local``.

Runs the real commands on a throwaway copy of the embedded default: ``S10_LOCAL_DIR`` points
``.local/`` at a temporary directory and ``S10_LOCAL_*PORT`` at free ports, so the demo of
the person running the benchmark is not touched. ``.venv`` must exist (``make setup``): its
creation (pip) is not part of what is measured.

- first ``make demo``: initdb, start, the app's tables, ``pyinfra -y inventory/local.py deploy.py``
  (every migration built), ``ops migrate verify``;
- no-op re-deploy: ``pyinfra -y inventory/local.py deploy.py`` again, which must change nothing;
- ``make demo`` again, everything already in place;
- pyinfra's own floor, ``pyinfra -y @local exec -- true``, side by side with the no-op re-deploy
  (target: the no-op at most 1.5x the floor);
- where a Docker engine can run: the first provisioning of three bare Debian 12 containers
  (``inventory/docker.py``: PostgreSQL, ops, Nginx, cron from nothing) and the no-op re-deploy.

    python -m bench.bench_deploy
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import Result, fmt_s, note, progress, target
from ops import REPO_ROOT
from ops.local.pg import Cluster, free_port

NOOP_RUNS = 3
PYINFRA = REPO_ROOT / ".venv" / "bin" / "pyinfra"
GRAND_TOTAL = re.compile(r"Grand total\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)")


@dataclass
class Timing:
    wall: float  # seconds
    cpu: float  # user + system seconds of the command and everything it ran (less sensitive to a busy machine)
    output: str


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_run(cmd: list[str], env: dict[str, str]) -> Timing:
    cpu0, t0 = children_cpu(), time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, check=False)
    wall, cpu = time.perf_counter() - t0, children_cpu() - cpu0
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{output[-3000:]}")
    return Timing(wall, cpu, output)


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
            first = timed_run(["make", "--no-print-directory", "demo"], env)
            prog.advance(task)
            noops: list[Timing] = []
            for i in range(NOOP_RUNS):
                prog.update(task, description=f"no-op re-deploy {i + 1}/{NOOP_RUNS}")
                noops.append(timed_run(deploy, env))
                prog.advance(task)
            prog.update(task, description="make demo again")
            again = timed_run(["make", "--no-print-directory", "demo"], env)
            prog.advance(task)
            floors: list[Timing] = []
            noops2: list[Timing] = []
            for i in range(NOOP_RUNS):  # interleaved, so a busy moment hits both alike
                prog.update(task, description=f"pyinfra floor vs no-op {i + 1}/{NOOP_RUNS}")
                floors.append(timed_run([str(PYINFRA), "-y", "@local", "exec", "--", "true"], env))
                noops2.append(timed_run(deploy, env))
    finally:
        subprocess.run(
            ["make", "--no-print-directory", "demo-down"], env=env, cwd=REPO_ROOT, capture_output=True, check=False
        )
        Cluster(root=root / "pg", port=port).destroy()
        shutil.rmtree(root, ignore_errors=True)

    noop_median = statistics.median(t.wall for t in noops)
    floor = statistics.median(t.wall for t in floors)
    side = statistics.median(t.wall for t in noops2)
    ratio = side / floor
    docker_rows, docker_targets, docker_data = docker_part()
    noop_cpu = statistics.median(t.cpu for t in noops)
    changed = sum(changed_ops(t.output) for t in noops)
    note(f"first make demo {fmt_s(first.wall)}, no-op re-deploys {', '.join(fmt_s(t.wall) for t in noops)}")
    rows = [
        [
            "first `make demo` (fresh .local: initdb, schema, deploy, verify)",
            fmt_s(first.wall),
            fmt_s(first.cpu),
            str(changed_ops(first.output)),
        ],
        [
            f"no-op re-deploy, `pyinfra -y inventory/local.py deploy.py` (median of {NOOP_RUNS})",
            fmt_s(noop_median),
            fmt_s(noop_cpu),
            str(changed),
        ],
        ["no-op re-deploy, slowest run", fmt_s(max(t.wall for t in noops)), fmt_s(max(t.cpu for t in noops)), ""],
        [
            "`make demo` again (everything in place)",
            fmt_s(again.wall),
            fmt_s(again.cpu),
            str(changed_ops(again.output)),
        ],
        [
            f"pyinfra's floor, `pyinfra -y @local exec -- true` (median of {NOOP_RUNS})",
            fmt_s(floor),
            fmt_s(statistics.median(t.cpu for t in floors)),
            "",
        ],
        [
            f"no-op re-deploy, interleaved with the floor runs (median of {NOOP_RUNS}): {ratio:.2f}x the floor",
            fmt_s(side),
            fmt_s(statistics.median(t.cpu for t in noops2)),
            str(sum(changed_ops(t.output) for t in noops2)),
        ],
        *docker_rows,
    ]
    return {
        "name": "deploy",
        "title": "5. Deploy: first `make demo` and a no-op re-deploy against @local",
        "columns": ["what", "wall time", "CPU time", "operations changed"],
        "rows": rows,
        "targets": [
            target("no-op re-deploy", "< 2 s", f"median {fmt_s(noop_median)}", noop_median < 2),
            target("no-op re-deploy changes nothing", "0 changed", f"{changed} changed", changed == 0),
            target("no-op re-deploy vs pyinfra's floor", "<= 1.5x", f"{ratio:.2f}x", ratio <= 1.5),
            *docker_targets,
        ],
        "notes": [
            "A throwaway .local/ (S10_LOCAL_DIR) and free ports (S10_LOCAL_PGPORT, _WEBPORT, _APPPORT); .venv already set up, "
            "so pip is not timed. The first deploy builds every migration on the empty tables of the demo.",
            "The no-op re-deploy asks the database one psql query (sql/queries/deploy_state.sql: ledger digest, "
            "INVALID and missing indexes, extensions, roles); `ops migrate status` and `ops provision --dry-run` "
            "(a Python start each) run only when it does not match this checkout.",
            "Docker rows: three bare containers from the cached image (the image build is not timed), deps from a "
            "local wheelhouse; their time is mostly apt and pip inside the containers.",
            "CPU time is user + system time of the command and all it ran: on a busy machine the wall time grows, "
            "the CPU time much less.",
        ],
        "data": {
            "first_make_demo_s": first.wall,
            "noop_s": [t.wall for t in noops],
            "noop_cpu_s": [t.cpu for t in noops],
            "make_demo_again_s": again.wall,
            "floor_s": [t.wall for t in floors],
            "noop_beside_floor_s": [t.wall for t in noops2],
            **docker_data,
        },
    }


def docker_part() -> tuple[list[list[str]], list[dict], dict]:
    """First provisioning of three bare containers and the no-op re-deploy; skipped where Docker cannot run."""
    from ops.local import docker

    if os.geteuid() != 0 or not shutil.which("docker") or not (shutil.which("dockerd") or docker.answers()):
        note("docker rows skipped: needs root and docker.io")
        return [], [], {}
    started = docker.engine_up()
    prefix = f"b{os.getpid()}"
    names = [f"{prefix}{r}" for r in ("db1", "web1", "app1")]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "MAKE", "MFLAGS"))}
    env |= {
        "DOCKER_HOST": docker.docker_host(),
        "S10_DOCKER_PREFIX": prefix,
        "S10_DOCKER_PGPORT": str(free_port()),
        "S10_DOCKER_WEBPORT": str(free_port()),
    }
    deploy = [str(PYINFRA), "-y", "inventory/docker.py", "deploy.py"]
    try:
        docker.wheelhouse()  # built once per checkout, outside the timing (like .venv)
        docker.containers_up(names)
        first = timed_run(deploy, env)
        noops = [timed_run(deploy, env) for _ in range(2)]
    finally:
        docker.containers_down(names)
        if started:
            docker.engine_down()
    noop = min(noops, key=lambda t: t.wall)
    rows = [
        [
            "docker: first provisioning of 3 bare Debian 12 containers",
            fmt_s(first.wall),
            fmt_s(first.cpu),
            str(changed_ops(first.output)),
        ],
        [
            "docker: no-op re-deploy of the 3 containers (best of 2)",
            fmt_s(noop.wall),
            fmt_s(noop.cpu),
            str(changed_ops(noop.output)),
        ],
    ]
    changed = changed_ops(noop.output)
    targets = [target("docker no-op re-deploy changes nothing", "0 changed", f"{changed} changed", changed == 0)]
    return rows, targets, {"docker_first_s": first.wall, "docker_noop_s": [t.wall for t in noops]}


if __name__ == "__main__":
    from bench.common import main

    main(run)
