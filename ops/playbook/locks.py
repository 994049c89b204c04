"""``ops playbook locks``: who blocks whom, the root blocker, and the safe way to release it.

Reads ``sql/queries/lock_tree.sql`` (pg_stat_activity + pg_blocking_pids + pg_locks) once and
builds the tree: each root blocker (a session that holds what others wait for and waits for
nothing itself) with the chain of sessions queued behind it. The fix is printed, never executed:

- a root that is *idle in transaction* holds its locks until its transaction ends; cancelling
  does nothing there, so the fix is ``pg_terminate_backend`` (its transaction is rolled back);
- a root that is *active* is running a statement: ``pg_cancel_backend`` stops that statement,
  which aborts its transaction and so releases its locks (unless the client catches the error at
  a savepoint); ``pg_terminate_backend`` only if cancelling did not help.

Verdict: OK while nothing has waited longer than ``warning_s``; WARNING, then CRITICAL above
``critical_s``. The exit code follows it (0, 1, 2; 3 when the database cannot be read).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg

from ops.db import connect, first_line, set_timeouts
from ops.errors import CRITICAL, UNKNOWN, WARNING
from ops.maintain.units import human_duration
from ops.playbook.report import INFO, Report
from ops.sqlfiles import query

#: How much of a query a person sees on one line; --json carries it whole.
QUERY_CHARS = 160
IDLE_IN_TRANSACTION = ("idle in transaction", "idle in transaction (aborted)")
PREPARED = 0  # pg_blocking_pids names a prepared transaction as pid 0


@dataclass
class Options:
    warning_s: float = 10.0
    critical_s: float = 60.0


@dataclass
class Node:
    """One session in the tree: its pg_stat_activity row and the sessions that wait for it."""

    row: dict[str, Any]
    waiters: list[Node] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return int(self.row["pid"])

    def walk(self) -> list[Node]:
        """This node's waiters, theirs, and so on (each once)."""
        out: list[Node] = []
        for w in self.waiters:
            out += [w, *w.walk()]
        return out

    def as_json(self) -> dict[str, Any]:
        return {**self.row, "waiters": [w.as_json() for w in self.waiters]}


def one_line(text: str | None, limit: int = QUERY_CHARS) -> str:
    """A query on one line, cut at ``limit`` characters with an ellipsis."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def build_tree(rows: list[dict[str, Any]]) -> list[Node]:
    """The root blockers, each with its waiting chain. A waiter blocked by several sessions hangs
    under the one deepest in the chain (the others are named in its row's ``blocked_by``)."""
    nodes = {int(r["pid"]): Node(r) for r in rows}
    for row in rows:
        for blocker in row["blocked_by"] or []:
            if blocker not in nodes:  # a prepared transaction, or a session gone meanwhile
                nodes[blocker] = Node({"pid": blocker, "blocked_by": [], "state": None, "query": None})
    depth: dict[int, int] = {}

    def depth_of(pid: int, seen: frozenset[int] = frozenset()) -> int:
        if pid not in depth:
            blockers = [b for b in nodes[pid].row["blocked_by"] or [] if b not in seen]
            depth[pid] = 1 + max((depth_of(b, seen | {pid}) for b in blockers), default=-1)
        return depth[pid]

    roots: list[Node] = []
    for pid in sorted(nodes):
        node = nodes[pid]
        blockers = node.row["blocked_by"] or []
        if depth_of(pid) == 0 or not blockers:  # holds what others want, waits for nothing (or a cycle)
            roots.append(node)
            continue
        parent = max(blockers, key=lambda b: (depth_of(b), -b))
        nodes[parent].waiters.append(node)
    return roots


def fix_for(root: Node) -> str:
    """The command that releases a root blocker, and why that one. Printed, never run."""
    pid, state = root.pid, root.row.get("state")
    if pid == PREPARED:
        return (
            "a prepared transaction (two-phase commit) holds the lock: find it in "
            "SELECT gid, prepared, owner, database FROM pg_catalog.pg_prepared_xacts; then, once its "
            "transaction manager has given up on it: ROLLBACK PREPARED '<gid>';"
        )
    terminate = f"SELECT pg_catalog.pg_terminate_backend({pid});"
    cancel = f"SELECT pg_catalog.pg_cancel_backend({pid});"
    who = "(needs superuser, the same role, or membership in pg_signal_backend)"
    if state in IDLE_IN_TRANSACTION:
        return (
            f"{terminate}  -- idle in transaction: it holds its locks until its transaction ends, and cancelling "
            f"does nothing to an idle session; terminating rolls its transaction back {who}.\n"
            "Then find the client that left it open (application_name, client_addr) and fix it; "
            "idle_in_transaction_session_timeout ends such sessions on its own."
        )
    if state == "active":
        return (
            f"{cancel}  -- active: cancels its running statement {who}.\n"
            f"If it is still there a few seconds later: {terminate}"
        )
    if state == "idle":
        return (
            f"{terminate}  -- idle outside a transaction yet holding a lock: a session-level advisory lock; "
            f"cancelling does nothing to an idle session {who}. Check first what it is (application_name): "
            "a maintenance job (s10-ops) holds its advisory lock on purpose until it finishes."
        )
    return f"{cancel}  -- state {state or 'not visible'}: try cancelling first {who}.\nIf it stays: {terminate}"


def _lock_target(row: dict[str, Any]) -> str:
    """What a waiter waits for, in words: a table, a row of it, or another transaction (a row lock)."""
    kind, rel = row.get("wait_locktype"), row.get("wait_relation")
    if kind == "transactionid":
        return "another transaction (a row it changed)"
    if kind == "relation" and rel:
        return rel
    return f"a {kind} of {rel}" if rel else f"a {kind or 'lock'}"


def _describe(row: dict[str, Any]) -> str:
    """pid, state and ages of one session, for the tree."""
    if row["pid"] == PREPARED:
        return "pid 0 (a prepared transaction, see pg_prepared_xacts)"
    parts = [f"pid {row['pid']}", row.get("state") or "state not visible"]
    if row.get("wait_s") is not None:
        what = _lock_target(row)
        parts.append(f"waiting {human_duration(row['wait_s'])} for {row.get('wait_mode')} on {what}")
    elif row.get("state_age_s") is not None and row.get("state") != "active":
        parts.append(f"for {human_duration(row['state_age_s'])}")
    if row.get("wait_event") and row.get("wait_event_type") != "Lock":  # what a root itself is doing
        parts.append(f"wait event {row.get('wait_event_type')}/{row['wait_event']}")
    if row.get("xact_age_s") is not None:
        parts.append(f"transaction {human_duration(row['xact_age_s'])} old")
    who = ", ".join(
        f"{k} {row[v]}"
        for k, v in (("user", "usename"), ("app", "application_name"), ("from", "client_addr"))
        if row.get(v)
    )
    if who:
        parts.append(who)
    if len(row.get("blocked_by") or []) > 1:
        parts.append("also waits for pid " + ", ".join(str(p) for p in row["blocked_by"][1:]))
    return ", ".join(parts)


def render(report: Report) -> list[str]:
    """The tree: each root blocker, then the sessions queued behind it, indented one step per level."""
    roots: list[dict[str, Any]] = report.details.get("tree", [])
    if not roots:
        return []
    out = ["lock tree (each session waits for the one it is indented under):"]

    def add(node: dict[str, Any], depth: int) -> None:
        lead = "  " * depth + ("root " if depth == 0 else "└ ")
        out.append(f"{lead}{_describe(node)}")
        if node.get("query"):
            out.append(f"{'  ' * depth}    query: {one_line(node['query'])}")
        for w in node["waiters"]:
            add(w, depth + 1)

    for root in roots:
        add(root, 0)
    out.append("findings:")
    return out


def lock_tree(dsn: str | None, opts: Options) -> Report:
    """Read the lock tree once and judge it. Changes nothing."""
    with connect(dsn) as conn:
        set_timeouts(conn, lock_timeout=1, statement_timeout=10)
        try:
            rows = conn.execute(query("lock_tree")).fetchall()
        except psycopg.Error as exc:  # e.g. the statement_timeout on a server too busy to answer
            report = Report(ok_summary="")
            report.add(UNKNOWN, "lock-tree", f"cannot read the lock tree: {first_line(exc)}")
            return report
    return judge(build_tree(rows), opts)


def judge(roots: list[Node], opts: Options) -> Report:
    report = Report(ok_summary="no session waits for a lock")
    longest = 0.0
    for root in roots:
        chain = root.walk()
        waits = [n.row.get("wait_s") or 0.0 for n in chain]
        worst = max(waits, default=0.0)
        longest = max(longest, worst)
        severity = CRITICAL if worst >= opts.critical_s else WARNING if worst >= opts.warning_s else INFO
        what = root.row.get("state") or "state not visible"
        if what in IDLE_IN_TRANSACTION and root.row.get("state_age_s") is not None:
            held = f" for {human_duration(root.row['state_age_s'])}"
        elif root.row.get("xact_age_s") is not None:
            held = f", transaction {human_duration(root.row['xact_age_s'])} old"
        else:
            held = ""
        report.add(
            severity,
            "blocker",
            f"pid {root.pid} ({what}{held}) blocks {len(chain)} session(s), the longest waiting "
            f"{human_duration(worst)}",
            fix_for(root),
        )
    hidden = [n.pid for r in roots for n in [r, *r.walk()] if n.pid != PREPARED and n.row.get("state") is None]
    if hidden:
        report.add(
            INFO,
            "hidden",
            f"this role may not see the state and query of pid {', '.join(map(str, hidden))} (other roles' sessions)",
            "GRANT pg_read_all_stats TO <this role>;  (or s10_monitoring, which has pg_monitor)",
        )
    if roots and longest < opts.warning_s:
        report.ok_summary = (
            f"{sum(len(r.walk()) for r in roots)} session(s) wait for a lock, none longer than "
            f"{human_duration(opts.warning_s)} (the longest {human_duration(longest)})"
        )
    report.details.update(
        {
            "tree": [r.as_json() for r in roots],
            "roots": [r.pid for r in roots],
            "waiting": sum(len(r.walk()) for r in roots),
            "longest_wait_s": longest,
            "warning_s": opts.warning_s,
            "critical_s": opts.critical_s,
        }
    )
    return report
