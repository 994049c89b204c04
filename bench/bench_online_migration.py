"""Online migration under write load: ``ops migrate apply`` versus plain ``CREATE INDEX``, same run.

Two fresh copies of the same data (bench/datagen.py, with the migrations before S10 applied).
On each, pgbench runs 4 clients (2 threads) inserting into content_jobs, the app's hottest write,
and after a few seconds of steady load the S10 indexes (revision 0607bc5b8539) are built:

- plain: the same five statements without CONCURRENTLY, each in its own transaction (kinder to
  the baseline than one migration transaction, which would hold every lock to the end);
- ops:   ``ops migrate apply`` as a user runs it (CONCURRENTLY, lock_timeout, retries), timed
  as a whole command, Python start-up included.

pgbench's per-transaction log gives every insert's latency and completion time: worst and p99
latency of the inserts that overlapped the build, inserts per second during the build, and the
build's wall time. A PNG plots the insert latency over time for both.

    python -m bench.bench_online_migration --scale small
"""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pglast
import psycopg
from pglast import ast
from pglast.stream import RawStream

from bench.common import (
    Result,
    fmt_ms,
    fmt_ratio,
    fmt_s,
    get_scale,
    note,
    percentile,
    pg_env,
    progress,
    results_dir,
    run_logged,
    target,
)
from bench.datagen import BEFORE_S10, SeededCluster
from ops.local.pg import Cluster, bindir
from ops.migrate import load as load_migrations
from ops.migrations import IndexDecl

S10_REVISION = "0607bc5b8539"
APP_NAME = "s10-bench-pgbench"
BUILT = re.compile(r"^\s+(\S+) built in ([0-9.]+)s", re.M)  # ops migrate apply's log line per index
CLIENTS, THREADS = 4, 2
PLOT_NAME = "online_migration.png"
#: Seconds of steady load before the build starts and after it ends.
LEAD_IN = {"full": 3.0, "small": 2.0, "tiny": 1.0}
TAIL = {"full": 3.0, "small": 2.0, "tiny": 1.0}

INSERT_SCRIPT = """\
\\set org random(1, :orgs)
\\set uid random(1, :users)
INSERT INTO content_jobs (org_id, user_id, status, topic) VALUES (:org, :uid, 'queued', 'bench insert');
"""


def s10_indexes() -> list[IndexDecl]:
    return [step for m in load_migrations() if m.revision == S10_REVISION for step in m.indexes]


def plain_sql(decl: IndexDecl) -> str:
    """The declared statement without CONCURRENTLY (parsed and printed by pglast, not edited as text)."""
    stmt = pglast.parse_sql(decl.sql)[0].stmt
    assert isinstance(stmt, ast.IndexStmt)
    stmt.concurrent = False
    return RawStream()(stmt)


@dataclass
class Tx:
    end: float  # epoch seconds
    latency_ms: float

    @property
    def start(self) -> float:
        return self.end - self.latency_ms / 1000


@dataclass
class Trial:
    variant: str
    build_start: float
    build_end: float
    load_start: float
    txs: list[Tx] = field(default_factory=list)
    statements: list[tuple[str, float]] = field(default_factory=list)

    @property
    def build_s(self) -> float:
        return self.build_end - self.build_start

    def during(self) -> list[Tx]:
        """Inserts whose execution overlapped the build."""
        return [t for t in self.txs if t.start < self.build_end and t.end > self.build_start]

    def worst_ms(self) -> float:
        return max((t.latency_ms for t in self.during()), default=float("nan"))

    def p99_ms(self) -> float:
        return percentile([t.latency_ms for t in self.during()], 99)

    def tps_during(self) -> float:
        done = sum(1 for t in self.txs if self.build_start <= t.end <= self.build_end)
        return done / self.build_s if self.build_s > 0 else float("nan")

    def longest_stall_s(self) -> float:
        """The longest time, overlapping the build, in which no insert completed (a blocked table)."""
        ends = [t.end for t in self.txs]
        gaps = [b - a for a, b in zip(ends, ends[1:], strict=False) if a < self.build_end and b > self.build_start]
        return max(gaps, default=0.0)

    def stalled_s(self, threshold: float = 0.1) -> float:
        """All the time, overlapping the build, spent in gaps of at least ``threshold`` s with no insert completing."""
        ends = [t.end for t in self.txs]
        return sum(
            b - a
            for a, b in zip(ends, ends[1:], strict=False)
            if a < self.build_end and b > self.build_start and b - a >= threshold
        )

    def worst_before_ms(self) -> float:
        """The worst insert of the steady load before the build: the machine's noise floor."""
        t0 = self.load_start + 1.0
        return max(
            (t.latency_ms for t in self.txs if t0 <= t.start and t.end <= self.build_start), default=float("nan")
        )

    def tps_before(self) -> float:
        t0 = self.load_start + 1.0  # skip the first second (connections, warm-up)
        done = sum(1 for t in self.txs if t0 <= t.end <= self.build_start)
        return done / (self.build_start - t0) if self.build_start > t0 else float("nan")


def read_logs(prefix: Path) -> list[Tx]:
    """pgbench --log lines: client_id transaction_no latency_us script_no epoch_s epoch_us [...]."""
    txs = []
    for path in sorted(prefix.parent.glob(prefix.name + ".*")):
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) < 6 or not parts[2].isdigit():
                continue  # a failed transaction
            txs.append(Tx(end=int(parts[4]) + int(parts[5]) / 1e6, latency_ms=int(parts[2]) / 1000))
    txs.sort(key=lambda t: t.end)
    return txs


def stop_pgbench(cluster: Cluster, proc: subprocess.Popen[str]) -> None:
    """End the load: terminate pgbench's server connections (pgbench then exits and flushes its logs)."""
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", (APP_NAME,))
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise RuntimeError("pgbench did not exit after its connections were terminated") from None


def build(variant: str, cluster: Cluster, db: str) -> list[tuple[str, float]]:
    """Build the S10 indexes the ``plain`` way or the ``ops`` way; returns (index, seconds) for each."""
    if variant == "plain":
        statements = []
        with psycopg.connect(cluster.dsn(db), autocommit=True) as conn:
            for decl in s10_indexes():
                t0 = time.perf_counter()
                conn.execute(plain_sql(decl))  # type: ignore[arg-type]
                statements.append((decl.name, time.perf_counter() - t0))
        return statements
    _, log = run_logged([sys.executable, "-m", "ops", "migrate", "apply"], env=pg_env(cluster, db))
    return [(m[1], float(m[2])) for m in BUILT.finditer(log)]


def idle_build_s(seeded: SeededCluster, template: str, variant: str) -> float:
    """The same build with no load at all: what the build costs when it has the machine to itself."""
    with seeded.fresh(template, f"bench_online_{variant}_idle") as db, progress() as prog:
        prog.add_task(f"{variant}: building the S10 indexes, no load", total=None)
        t0 = time.perf_counter()
        build(variant, seeded.cluster, db)
        elapsed = time.perf_counter() - t0
    note(f"{variant}, no load: build {fmt_s(elapsed)}")
    return elapsed


def trial(seeded: SeededCluster, template: str, variant: str, scale: str, workdir: Path) -> Trial:
    s = get_scale(scale)
    cluster = seeded.cluster
    with seeded.fresh(template, f"bench_online_{variant}") as db:
        script = workdir / "insert.sql"
        script.write_text(INSERT_SCRIPT)
        prefix = workdir / variant
        env = pg_env(cluster, db) | {"PGAPPNAME": APP_NAME}
        cmd = [
            str(bindir() / "pgbench"),
            "-n",
            "-c", str(CLIENTS),
            "-j", str(THREADS),
            "-T", "900",  # a safety cap: the load is ended when the build is done
            "-f", str(script),
            "-D", f"users={s.users}",
            "-D", f"orgs={s.organizations}",
            "--log",
            f"--log-prefix={prefix}",
        ]  # fmt: skip
        load_start = time.time()
        proc = subprocess.Popen(cmd, env=env, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            with progress() as prog:
                task = prog.add_task(f"{variant}: steady load (pgbench, {CLIENTS} clients)", total=None)
                time.sleep(LEAD_IN.get(scale, 2.0))
                if proc.poll() is not None:
                    raise RuntimeError(f"pgbench exited early: {proc.stderr.read() if proc.stderr else ''}")
                prog.update(task, description=f"{variant}: building the S10 indexes under load")
                build_start = time.time()
                statements = build(variant, cluster, db)
                build_end = time.time()
                prog.update(task, description=f"{variant}: steady load after the build")
                time.sleep(TAIL.get(scale, 2.0))
        finally:
            stop_pgbench(cluster, proc)
        stderr = proc.stderr.read() if proc.stderr else ""
        if proc.returncode not in (0, 2):  # 2: clients aborted, which is how we end the load
            raise RuntimeError(f"pgbench exited {proc.returncode}: {stderr[-2000:]}")
    result = Trial(variant, build_start, build_end, load_start, read_logs(prefix), statements)
    if not result.txs:
        raise RuntimeError(f"pgbench logged no transaction: {stderr[-2000:]}")
    note(
        f"{variant}: build {fmt_s(result.build_s)}, worst insert {fmt_ms(result.worst_ms())}, "
        f"p99 {fmt_ms(result.p99_ms())}, {result.tps_during():,.0f} inserts/s during the build"
    )
    return result


def plot(trials: list[Trial], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(trials), 1, figsize=(10, 3.2 * len(trials)), sharex=True, sharey=True)
    for ax, t in zip(axes, trials, strict=True):
        xs = [tx.end - t.build_start for tx in t.txs]
        ys = [tx.latency_ms for tx in t.txs]
        ax.scatter(
            xs,
            ys,
            s=2,
            alpha=0.4,
            linewidths=0,
            rasterized=True,
            color="tab:red" if t.variant == "plain" else "tab:blue",
        )
        slow = [(x, y) for x, y in zip(xs, ys, strict=True) if y >= 100]
        if slow:
            ax.scatter(*zip(*slow, strict=True), s=18, color="black", marker="x", label="inserts >= 100 ms")
        ax.axvspan(0, t.build_s, color="0.85", zorder=0, label=f"index build ({t.build_s:.1f} s)")
        ax.axhline(100, color="0.4", linestyle="--", linewidth=0.8, label="100 ms")
        label = "plain CREATE INDEX" if t.variant == "plain" else "ops migrate apply (CONCURRENTLY)"
        ax.set_title(
            f"{label}: worst {fmt_ms(t.worst_ms())}, p99 {fmt_ms(t.p99_ms())}, longest stall {fmt_s(t.longest_stall_s())}",
            loc="left",
            fontsize=10,
        )
        ax.set_yscale("log")
        ax.set_ylabel("insert latency (ms)")
        ax.legend(loc="upper right", fontsize=8)
        ax.grid(True, which="major", alpha=0.3)
    axes[-1].set_xlabel("seconds since the build started")
    fig.suptitle(f"INSERT into content_jobs, {CLIENTS} pgbench clients, while the S10 indexes are built")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(scale: str = "small") -> Result:
    """pgbench inserts while the S10 indexes are built: plain CREATE INDEX versus ops migrate apply."""
    s = get_scale(scale)
    seeded = SeededCluster.get()

    template = seeded.before_s10(s)
    with tempfile.TemporaryDirectory(prefix="s10bench-pgbench-") as tmp:
        workdir = Path(tmp)
        Path(workdir).chmod(0o755)
        trials = [trial(seeded, template, v, s.name, workdir) for v in ("plain", "ops")]
    idle = {v: idle_build_s(seeded, template, v) for v in ("plain", "ops")}
    plain, ops = trials
    plot(trials, results_dir() / PLOT_NAME)

    rows = []
    for t in trials:
        rows.append(
            [
                "plain CREATE INDEX" if t.variant == "plain" else "ops migrate apply",
                fmt_ms(t.worst_ms()),
                fmt_ms(t.p99_ms()),
                fmt_ms(statistics.median([x.latency_ms for x in t.during()])),
                f"{fmt_s(t.longest_stall_s())} ({fmt_s(t.stalled_s())} in all)",
                f"{t.tps_during():,.0f}",
                f"{t.tps_before():,.0f}",
                fmt_ms(t.worst_before_ms()),
                fmt_s(t.build_s),
            ]
        )
    for v, label in (("plain", "plain CREATE INDEX, no load"), ("ops", "ops migrate apply, no load")):
        rows.append([label, "-", "-", "-", "-", "-", "-", "-", fmt_s(idle[v])])
    worst_ratio = plain.worst_ms() / ops.worst_ms()
    build_ratio = ops.build_s / plain.build_s
    per_plain = ", ".join(f"{name} {fmt_s(sec)}" for name, sec in plain.statements)
    per_ops = ", ".join(f"{name} {fmt_s(sec)}" for name, sec in ops.statements)
    return {
        "name": "online_migration",
        "title": "2. Online migration under write load: the S10 indexes, plain versus `ops migrate apply`",
        "columns": [
            "build",
            "worst insert",
            "p99 insert",
            "median insert",
            "longest stall (all stalls)",
            "inserts/s during build",
            "inserts/s before",
            "worst before",
            "build wall time",
        ],
        "rows": rows,
        "targets": [
            target("worst insert latency with ops", "< 100 ms", fmt_ms(ops.worst_ms()), ops.worst_ms() < 100),
            target(
                "worst latency, plain / ops",
                ">= 10x better",
                fmt_ratio(worst_ratio),
                worst_ratio >= 10,
            ),
            target("build time, ops / plain", "<= 1.5x", f"{build_ratio:.2f}x", build_ratio <= 1.5),
        ],
        "notes": [
            f"Data: {s.describe()}; migrations up to {BEFORE_S10} applied first, each variant on its own fresh copy.",
            f"Load: pgbench -c {CLIENTS} -j {THREADS}, one INSERT into content_jobs per transaction (FK checks on "
            "users and organizations included); 'worst' and 'p99' are over the inserts that overlapped the build.",
            f"Build time, ops / plain: {build_ratio:.2f}x under the write load, {idle['ops'] / idle['plain']:.2f}x with "
            "no load (the 'no load' rows, on fresh copies too). A concurrent build reads the table twice and waits "
            "for running transactions; under load it also shares the 2 cores with the inserts it lets through, "
            "where the plain build has them to itself while the inserts wait.",
            f"The S10 indexes: {', '.join(d.name for d in s10_indexes())}.",
            f"Plain, statement by statement: {per_plain}.",
            f"ops, index by index (as `ops migrate apply` logs them): {per_ops}.",
            f"The ops build time is the whole `ops migrate apply` command: its index builds took "
            f"{fmt_s(sum(sec for _, sec in ops.statements))} of the {fmt_s(ops.build_s)}, the rest is Python start-up, "
            "the checks of every migration, the ledger and the lock, all sharing the CPU with the load.",
            "'longest stall' is the longest time during the build in which no insert completed at all: a plain "
            "build blocks every insert into its table, and only a handful of inserts (one per client) wait, so p99 "
            "hides it; the worst latency and the stall show it. 'all stalls' adds up every such gap of 100 ms or more.",
            "'before' columns: the steady load in the seconds before the build (its worst insert is this machine's "
            "noise floor: CPU scheduling, not locks).",
            "Throwaway cluster with fsync off: latency here is locks and CPU, not disk. 2 cores are shared by pgbench, "
            "its 4 server backends and the build.",
        ],
        "figures": [PLOT_NAME],
        "data": {
            t.variant: {
                "worst_ms": t.worst_ms(),
                "p99_ms": t.p99_ms(),
                "tps_during_build": t.tps_during(),
                "tps_before_build": t.tps_before(),
                "worst_before_build_ms": t.worst_before_ms(),
                "longest_stall_s": t.longest_stall_s(),
                "stalled_s": t.stalled_s(),
                "build_seconds": t.build_s,
                "transactions": len(t.txs),
                "build_seconds_no_load": idle[t.variant],
            }
            for t in trials
        },
    }


if __name__ == "__main__":
    from bench.common import main

    main(run)
