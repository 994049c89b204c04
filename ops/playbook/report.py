"""What every playbook returns: findings with a severity, a plain-words message and the fix.

The first line printed is check_postgres style (``WARNING: summary``), so monitoring and people read
the same verdict; the exit code is the worst severity (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ops.errors import CRITICAL, OK, UNKNOWN, WARNING

SEVERITY_NAMES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}
INFO = -1  # a note: printed, never changes the exit code


@dataclass
class Finding:
    severity: int  # INFO, OK, WARNING, CRITICAL or UNKNOWN
    check: str  # short machine name, e.g. "seq-scan", "max-age"
    message: str  # the cause, in plain words
    fix: str = ""  # what to run or change, exactly

    @property
    def level(self) -> str:
        return "INFO" if self.severity == INFO else SEVERITY_NAMES[self.severity]

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "severity": self.level}


@dataclass
class Report:
    """Findings plus free-form details for --json; ``ok_summary`` is the first line when nothing is wrong."""

    ok_summary: str
    findings: list[Finding] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def add(self, severity: int, check: str, message: str, fix: str = "") -> Finding:
        finding = Finding(severity, check, message, fix)
        self.findings.append(finding)
        return finding

    @property
    def exit_code(self) -> int:
        return max([OK, *(f.severity for f in self.findings)])

    @property
    def status(self) -> str:
        return SEVERITY_NAMES[self.exit_code]

    def problems(self) -> list[Finding]:
        return sorted((f for f in self.findings if f.severity > OK), key=lambda f: -f.severity)

    def summary(self) -> str:
        problems = self.problems()
        if not problems:
            return f"OK: {self.ok_summary}"
        worst = problems[0]
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        return f"{self.status}: {worst.message}{more}"

    def as_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "exit_code": self.exit_code,
            "summary": self.summary(),
            "findings": [f.as_json() for f in self.findings],
            **self.details,
        }

    def lines(self) -> list[str]:
        """The human report: the verdict, then each finding with its fix."""
        out = [self.summary()]
        for f in sorted(self.findings, key=lambda f: -f.severity):
            out.append(f"  [{f.level}] {f.check}: {f.message}")
            for i, fix_line in enumerate(f.fix.splitlines()):
                out.append(f"      {'fix: ' if i == 0 else '     '}{fix_line}")
        return out
