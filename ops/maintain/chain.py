"""``ops maintain chain``: run ops commands one after another, log each one's exit status, fail
when any failed.

The monthly cron job is a chain (REINDEX, then ANALYZE of what the rebuild left stale, then the
amcheck integrity check of the rebuilt indexes). Under one ``sh -c 'a; b'`` only the last
command's exit status reached the log, so a failed REINDEX was logged as success. Here every
step runs, whatever the one before did (a failed rebuild makes the integrity check more
wanted, not less), each step's status is logged as ``s10-ops <step>: exit N``, and the chain
exits with the first non-zero status (0 when every step succeeded).
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from ops.errors import UsageError

#: Command groups a step may run: the chain runs ops commands, nothing else.
GROUPS = ("maintain", "playbook", "migrate")


@dataclass
class Step:
    argv: list[str]

    @property
    def name(self) -> str:
        """The log's name of the step: its command, e.g. ``reindex`` for ``maintain reindex ...``."""
        return self.argv[1]


def parse(texts: list[str]) -> list[Step]:
    """Each step as an ops command line ('ops maintain reindex --min-size 10MB'; the leading ``ops``
    may be left out). Every step runs with this same ops, whatever ``ops`` is on PATH."""
    if not texts:
        raise UsageError("ops maintain chain needs at least one step, e.g. 'maintain reindex' 'maintain analyze'")
    steps = []
    for text in texts:
        try:
            argv = shlex.split(text)
        except ValueError as exc:
            raise UsageError(f"bad step {text!r}: {exc}") from None
        if argv[:1] == ["ops"]:
            argv = argv[1:]
        if len(argv) < 2 or argv[0] not in GROUPS or argv[1] == "chain":
            raise UsageError(
                f"bad step {text!r}: give an ops command, e.g. 'ops maintain reindex' (groups: {', '.join(GROUPS)})"
            )
        steps.append(Step(argv))
    return steps


def run(steps: list[Step], *, capture: bool = False) -> tuple[int, list[dict[str, Any]]]:
    """Run every step; return (the first non-zero exit status or 0, one record per step).

    Without ``capture`` the steps write straight to our stdout and stderr (the cron log), and
    each step's status line follows its output; with it, each step's stdout is kept for --json.
    """
    code, records = 0, []
    for step in steps:
        sys.stdout.flush()
        t0 = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "ops", *step.argv],
            stdout=subprocess.PIPE if capture else None,
            text=True,
            check=False,
        )
        records.append(
            {
                "step": step.name,
                "command": "ops " + shlex.join(step.argv),
                "exit_code": proc.returncode,
                "seconds": round(time.monotonic() - t0, 3),
                **({"stdout": proc.stdout} if capture else {}),
            }
        )
        if not capture:
            print(f"s10-ops {step.name}: exit {proc.returncode}", flush=True)
        if proc.returncode != 0 and code == 0:
            code = proc.returncode
    return code, records


def summary(code: int, records: list[dict[str, Any]]) -> str:
    failed = [r for r in records if r["exit_code"] != 0]
    if not failed:
        return f"chain: {len(records)} step(s), all exit 0"
    steps = ", ".join(f"{r['step']} (exit {r['exit_code']})" for r in failed)
    return f"chain: {len(failed)} of {len(records)} step(s) failed: {steps}; exit {code}"
