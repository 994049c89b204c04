"""The shared runner of the benchmarks: scales, progress, the printed table, the results files.

A benchmark is ``bench/bench_<name>.py`` with ``run(scale: str = "small") -> dict`` returning

    {"name": str, "title": str, "columns": [str], "rows": [[...]],
     "targets": [{"what": str, "target": str, "measured": str, "met": bool}], "notes": [str]}

and ending with ``if __name__ == "__main__": from bench.common import main; main(run)``.
``make bench`` (``bench/run.py``) runs every module and merges what they return into
``bench/results/latest.md`` and ``bench/results/latest.json``, with the machine's description.
Running one module on its own replaces only its own entry in those files.

Benchmarks that need PostgreSQL start a throwaway cluster with :func:`bench_cluster`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from ops import REPO_ROOT
from ops.local.demodata import SCALES, Scale, human  # noqa: F401  (human: re-exported for the benchmarks)
from ops.local.pg import Cluster, bindir, free_port

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
console = Console(stderr=True)  # progress and notes; tables go to stdout
out = Console(width=None if sys.stdout.isatty() else 180)

Result = dict[str, Any]
RunFn = Callable[[str], Result]


# ---------------------------------------------------------------- scales


# Scale and SCALES live with the generator in ops/local/demodata.py (the demo loads the same data).
SCALE_ALIASES = {"default": "full"}


def get_scale(name: str) -> Scale:
    name = SCALE_ALIASES.get(name, name)
    if name not in SCALES:
        raise SystemExit(f"unknown scale {name!r} (known: {', '.join(SCALES)}, default = full)")
    return SCALES[name]


# ---------------------------------------------------------------- timing helpers


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (0..100), linear interpolation between closest ranks."""
    if not values:
        return float("nan")
    data = sorted(values)
    k = (len(data) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (k - lo)


def fmt_ms(ms: float) -> str:
    """A latency in milliseconds, with sensible digits."""
    if ms != ms:  # NaN
        return "-"
    if ms < 1:
        return f"{ms:.3f} ms"
    if ms < 100:
        return f"{ms:.1f} ms"
    return f"{ms:,.0f} ms"


def fmt_s(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"


def fmt_ratio(x: float) -> str:
    if x != x or x == float("inf"):
        return "-"
    return f"{x:.1f}x" if x < 100 else f"{x:,.0f}x"


@contextlib.contextmanager
def timed() -> Iterator[Callable[[], float]]:
    """``with timed() as elapsed: ...; elapsed()`` gives seconds (frozen when the block ends)."""
    t0 = time.perf_counter()
    end: list[float] = []
    yield lambda: (end[0] if end else time.perf_counter()) - t0
    end.append(time.perf_counter())


def target(what: str, target_text: str, measured: str, met: bool) -> dict[str, Any]:
    return {"what": what, "target": target_text, "measured": measured, "met": bool(met)}


# ---------------------------------------------------------------- progress


def progress() -> Progress:
    """A rich progress display on stderr (a bar when the total is known, a spinner otherwise)."""
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


@contextlib.contextmanager
def step(description: str, total: float | None = None) -> Iterator[Callable[[float], None]]:
    """One step with a progress bar; yields ``advance(n)``. Prints the step's wall time when done."""
    t0 = time.perf_counter()
    with progress() as prog:
        task = prog.add_task(description, total=total)
        yield lambda n=1: prog.advance(task, n)
    note(f"{description}: {fmt_s(time.perf_counter() - t0)}")


def note(message: str) -> None:
    console.print(f"[dim]·[/dim] {message}", highlight=False)


def run_logged(
    cmd: list[str], *, env: dict[str, str] | None = None, cwd: Path = REPO_ROOT, timeout: float = 900
) -> tuple[float, str]:
    """Run a command, fail loudly with its output when it fails; return its wall time in seconds and its stderr."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return elapsed, proc.stderr


# ---------------------------------------------------------------- PostgreSQL


#: Server settings of the bench clusters: a small dedicated database server, not the defaults.
#: fsync is off (throwaway data): commit latency then measures locks and CPU, not this VM's disk.
BENCH_PG_SETTINGS = {
    "shared_buffers": "1GB",
    "maintenance_work_mem": "256MB",
    "work_mem": "16MB",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "30min",
    "effective_cache_size": "4GB",
    "random_page_cost": "1.1",
    "track_io_timing": "on",
}


def pg_env(cluster: Cluster, dbname: str) -> dict[str, str]:
    """The process environment with libpq pointed at ``dbname`` (and nothing else from PG*)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(cluster.env(dbname))
    return env


@contextlib.contextmanager
def bench_cluster(prefix: str = "s10bench-") -> Iterator[Cluster]:
    """A throwaway PostgreSQL on a free port in a temporary directory, tuned, torn down at the end."""
    import psycopg
    from psycopg import sql

    root = Path(tempfile.mkdtemp(prefix=prefix))
    cluster = Cluster(root=root, port=free_port())
    try:
        cluster.init(fsync=False)
        cluster.start()
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            for key, value in BENCH_PG_SETTINGS.items():
                conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(key), sql.Literal(value)))
        cluster.stop()
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


def pg_version() -> str:
    proc = subprocess.run([str(bindir() / "postgres"), "--version"], capture_output=True, text=True, check=False)
    return proc.stdout.strip().removeprefix("postgres ").removeprefix("(PostgreSQL) ")


# ---------------------------------------------------------------- machine and results


def machine() -> dict[str, Any]:
    """What this ran on: CPU model, cores, memory, PostgreSQL, OS, Python, date."""
    cpu = platform.processor() or "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gib = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    try:
        pg = pg_version()
    except Exception:  # noqa: BLE001 - a missing server is reported, not fatal here
        pg = "not found"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": mem_gib,
        "postgresql": pg,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_at_start": round(load, 2) if load is not None else None,
    }


def render_table(result: Result) -> Table:
    t = Table(title=f"{result.get('title', result['name'])}", title_justify="left")
    for col in result.get("columns", []):
        t.add_column(str(col))
    for row in result.get("rows", []):
        t.add_row(*("" if v is None else str(v) for v in row))
    return t


def print_result(result: Result) -> None:
    out.print(render_table(result))
    targets = result.get("targets", [])
    if targets:
        t = Table(title="targets", title_justify="left")
        for col in ("what", "target", "measured", "met"):
            t.add_column(col)
        for tg in targets:
            t.add_row(tg["what"], tg["target"], tg["measured"], "yes" if tg["met"] else "[bold red]NO[/]")
        out.print(t)
    for n in result.get("notes", []):
        out.print(f"  note: {n}", highlight=False)
    if result.get("error"):
        out.print(f"  [bold red]FAILED[/]: {result['error']}", highlight=False)
    out.print()


def _md_cell(v: Any) -> str:
    return ("" if v is None else str(v)).replace("|", "\\|").replace("\n", " ")


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        "# Benchmark results",
        "",
        "Written by `make bench` (`bench/run.py`); rerun it to reproduce. Every number below was printed by a benchmark.",
        "",
        f"- Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB memory, {m['os']}",
        f"- PostgreSQL: {m['postgresql']}; Python {m['python']}",
        f"- Date: {m['date']}; load average at start: {m['load_at_start']}",
    ]
    if results.get("total_seconds"):
        lines.append(f"- `make bench` wall time: {fmt_s(results['total_seconds'])} in all")
    lines.append("")
    for res in results["benchmarks"].values():
        lines += [f"## {res.get('title', res['name'])}", ""]
        meta = f"Scale `{res.get('scale')}`, ran {res.get('ran_at')}, took {fmt_s(res.get('seconds', 0))}."
        cmd = f"`python -m bench.{res.get('module', 'bench_' + res['name'])} --scale {res.get('scale')}`"
        lines += [f"{meta} Reproduce: {cmd}.", ""]
        if res.get("error"):
            lines += [f"**FAILED**: {_md_cell(res['error'])}", ""]
        cols = res.get("columns", [])
        if cols:
            lines.append("| " + " | ".join(_md_cell(c) for c in cols) + " |")
            lines.append("|" + "|".join("---" for _ in cols) + "|")
            for row in res.get("rows", []):
                lines.append("| " + " | ".join(_md_cell(v) for v in row) + " |")
            lines.append("")
        if res.get("targets"):
            lines += ["| target | wanted | measured | met |", "|---|---|---|---|"]
            for tg in res["targets"]:
                met = "yes" if tg["met"] else "**no**"
                lines.append(
                    f"| {_md_cell(tg['what'])} | {_md_cell(tg['target'])} | {_md_cell(tg['measured'])} | {met} |"
                )
            lines.append("")
        for n in res.get("notes", []):
            lines.append(f"- {n}")
        for fig in res.get("figures", []):
            lines.append(f"\n![{res['name']}]({fig})")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def results_dir() -> Path:
    """bench/results/, or S10_BENCH_RESULTS_DIR (the smoke test writes elsewhere)."""
    return Path(os.environ.get("S10_BENCH_RESULTS_DIR") or RESULTS_DIR)


def write_results(new: list[Result], *, merge: bool, total_seconds: float | None = None) -> Path:
    """Write latest.json and latest.md; with ``merge``, keep the entries of benchmarks not in ``new``."""
    directory = results_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "latest.json"
    benchmarks: dict[str, Any] = {}
    if merge and path.exists():
        with contextlib.suppress(ValueError, KeyError):
            benchmarks = json.loads(path.read_text())["benchmarks"]
    for res in new:
        benchmarks[res["name"]] = res
    results: dict[str, Any] = {
        "machine": machine(),
        "total_seconds": total_seconds,
        "benchmarks": dict(sorted(benchmarks.items(), key=lambda kv: kv[1].get("order", 99))),
    }
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    (directory / "latest.md").write_text(markdown(results))
    return path


def run_one(module: str, run: RunFn, scale: str, order: int = 0) -> Result:
    """Run one benchmark; a failure becomes a result with ``error`` so the others still run."""
    name = module.removeprefix("bench_")
    console.rule(f"[bold]{name}[/] (scale {scale})")
    t0 = time.perf_counter()
    try:
        result = dict(run(scale))
    except Exception as exc:  # noqa: BLE001 - one broken benchmark must not lose the others' results
        import traceback

        traceback.print_exc()
        result = {"name": name, "title": name, "columns": [], "rows": [], "targets": [], "notes": []}
        result["error"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    result.setdefault("name", name)
    result.update(
        module=module,
        scale=get_scale(scale).name,
        seconds=round(time.perf_counter() - t0, 1),
        ran_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        order=order,
    )
    print_result(result)
    return result


def scale_arg(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument(
        "--scale",
        default=default,
        help=f"data size: {', '.join(f'{k} ({v.describe()})' for k, v in SCALES.items())}; 'default' = full",
    )


def main(run: RunFn) -> None:
    """Entry point of ``python -m bench.bench_<name>``: run it, print its table, update the results files."""
    module = Path(sys.modules["__main__"].__file__ or "bench").stem  # type: ignore[union-attr]
    parser = argparse.ArgumentParser(prog=f"python -m bench.{module}", description=run.__doc__)
    scale_arg(parser, "small")
    args = parser.parse_args()
    get_scale(args.scale)
    result = run_one(module, run, args.scale)
    path = write_results([result], merge=True)
    note(f"results: {path} and latest.md")
    sys.exit(1 if result.get("error") else 0)
