"""``make bench``: run every ``bench/bench_*.py`` module's ``run(scale)`` and merge the results.

    python -m bench.run                     # the issue's scale (full); make bench
    python -m bench.run --scale small       # a quick run; make bench SCALE=small
    python -m bench.run --only queries,deploy

Writes ``bench/results/latest.md`` and ``bench/results/latest.json`` (replacing both: a run of
everything is one consistent set). A benchmark that fails is reported as failed; the others
still run, and the exit code is 1.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time

from bench.common import BENCH_DIR, console, fmt_s, get_scale, note, results_dir, run_one, scale_arg, write_results


def modules() -> list[str]:
    """The benchmark modules, in the issue's order (by file name: bench_<name>.py)."""
    order = ["queries", "online_migration", "maintenance", "cors", "deploy"]
    names = [p.stem for p in BENCH_DIR.glob("bench_*.py")]
    return sorted(names, key=lambda n: (order.index(n[6:]) if n[6:] in order else len(order), n))


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    scale_arg(parser, "full")
    parser.add_argument("--only", default="", help="comma-separated benchmark names (e.g. queries,deploy)")
    args = parser.parse_args()
    scale = get_scale(args.scale).name
    wanted = {n.strip() for n in args.only.split(",") if n.strip()}
    names = [m for m in modules() if not wanted or m.removeprefix("bench_") in wanted]
    unknown = wanted - {m.removeprefix("bench_") for m in modules()}
    if unknown:
        raise SystemExit(
            f"unknown benchmark(s): {', '.join(sorted(unknown))} (known: {', '.join(m[6:] for m in modules())})"
        )
    console.print(
        f"[bold]make bench[/]: {', '.join(n[6:] for n in names)} at scale {scale} ({get_scale(scale).describe()})"
    )
    t0 = time.perf_counter()
    results = []
    for i, name in enumerate(names):
        module = importlib.import_module(f"bench.{name}")
        results.append(run_one(name, module.run, scale, order=i))
        write_results(results, merge=bool(wanted))  # after each one: a later crash keeps what was measured
    total = time.perf_counter() - t0
    if not wanted:
        write_results(results, merge=False, total_seconds=round(total, 1))
    for res in results:
        note(f"{res['name']}: {fmt_s(res['seconds'])}{'  FAILED' if res.get('error') else ''}")
    note(f"make bench: {fmt_s(total)} in all; results in {results_dir()}/latest.md")
    sys.exit(1 if any(r.get("error") for r in results) else 0)


if __name__ == "__main__":
    main()
