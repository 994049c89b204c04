"""Connections, timeouts and the advisory lock every job takes. One safety rule in one place."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import sys
import time
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg import errors, sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row

from ops.errors import FAILED, UNKNOWN, ConnectError, OpsError, UsageError
from ops.sqlfiles import query

APPLICATION_NAME = "s10-ops"
# Every connection resolves names in pg_catalog only (pg_temp last, never first), as pg_dump does:
# a schema named like the role, or one put first in search_path, can then never capture a name
# (CVE-2018-1058). Our statements name every user object with its schema.
PINNED_SEARCH_PATH = "pg_catalog, pg_temp"
# The three group roles of sql/roles.sql, named in every "permission denied" line.
MAINTENANCE_ROLE = "s10_maintenance"  # migrate apply, reindex, analyze
MONITORING_ROLE = "s10_monitoring"  # the reports and the exporter
DIAGNOSIS_ROLE = "s10_diagnosis"  # the playbooks that read the app's tables
ROLES_HINT = "sql/roles.sql; 'ops roles apply' creates it"


# Connection parameters that carry a secret: never on a command line, never echoed back.
SECRET_KEYS = ("password", "sslpassword")
_KEY = r"(?:ssl)?password"
# keyword form: password=secret, password = 'se cret', password='it\'s'
_KEYWORD_SECRET = re.compile(rf"(\b{_KEY}\s*=\s*)('(?:[^'\\]|\\.)*'?|[^\s&'\"]+)", re.IGNORECASE)
# URI form: scheme://user:secret@host (libpq ends the user info at the last "@" before the first "/")
_URI_SECRET = re.compile(r"([a-z][a-z0-9+.-]*://[^:/@\s\"]*:)([^/\s\"]*)(@)", re.IGNORECASE)
MASK = "***"


def secrets_in(dsn: str) -> list[str]:
    """The password-like values written in a DSN (keyword or URI form), as written and percent-decoded."""
    from urllib.parse import unquote

    found = [m.group(2).strip("'") for m in _KEYWORD_SECRET.finditer(dsn)]
    found += [m.group(2) for m in _URI_SECRET.finditer(dsn)]
    return [v for s in found if s for v in {s, unquote(s)} if len(v) >= 2]


def mask_secrets(text: str, dsn: str | None = None) -> str:
    """``text`` with every password in it replaced by ***: keyword and URI forms, and the literal
    values found in ``dsn`` (libpq quotes a bad URI's pieces in its error messages)."""
    for secret in sorted(secrets_in(dsn or ""), key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _URI_SECRET.sub(lambda m: m.group(1) + MASK + m.group(3), text)
    return _KEYWORD_SECRET.sub(lambda m: m.group(1) + MASK, text)


def check_dsn(dsn: str | None) -> str:
    """Validate a --dsn: it must parse, and it must not carry a password or an SSL key passphrase
    (use PGPASSFILE or a service). No message ever repeats a password written in it."""
    if not dsn:
        return ""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        raise UsageError(f"bad --dsn: {first_line(exc, dsn)}") from None
    given = [key for key in SECRET_KEYS if params.get(key)]
    if given:
        raise UsageError(
            f"--dsn must not contain a {' or '.join(given)} (it would show in ps and shell history); "
            "use PGPASSFILE or a service in PGSERVICEFILE"
        )
    return dsn


def check_dsns(dsns: list[str] | None, flag: str = "--replica") -> None:
    """``check_dsn`` for each DSN of a repeatable option, before anything connects."""
    for dsn in dsns or []:
        try:
            check_dsn(dsn)
        except UsageError as exc:
            raise UsageError(str(exc).replace("--dsn", flag)) from None


def redact_dsn(dsn: str) -> str:
    """A DSN fit for a message: any password in it masked."""
    return mask_secrets(dsn, dsn)


def first_line(exc: BaseException, dsn: str | None = None) -> str:
    """An error's first line for a person, with any password masked (libpq may quote the DSN)."""
    text = str(exc).strip()
    return mask_secrets(text.splitlines()[0], dsn) if text else exc.__class__.__name__


@functools.cache
def warn_pgpassword() -> None:
    """Once per process: PGPASSWORD works, but any process of the same user can read it."""
    if os.environ.get("PGPASSWORD"):
        print(
            "ops: warning: PGPASSWORD is set; it is used, but it is readable in /proc/PID/environ: "
            "put the password in a PGPASSFILE (~/.pgpass, mode 0600) instead",
            file=sys.stderr,
        )


class PrivilegeError(OpsError):
    """The role lacks a privilege: one line naming it and the GRANT (or s10 role) that gives it.

    A report that could not look is UNKNOWN (3); actions that check before they start say FAILED.
    """

    exit_code = UNKNOWN


class OpsConnection(psycopg.Connection[dict[str, Any]]):
    """A connection whose "permission denied" errors come out as one line with the fix.

    ``grant_role`` is the s10 role (sql/roles.sql) that gives what the job on this connection needs.
    """

    grant_role: str | None = None

    def execute(self, query: Any, params: Any = None, *, prepare: bool | None = None, binary: bool = False) -> Any:
        try:
            return super().execute(query, params, prepare=prepare, binary=binary)
        except errors.InsufficientPrivilege as exc:
            raise privilege_error(exc, self.info.user, self.grant_role) from None


def _ident(name: str) -> str:
    return sql.Identifier(name).as_string(None)


def privilege_fix(message: str, user: str, grant_role: str | None = None) -> str:
    """The GRANT that cures a PostgreSQL "permission denied" / "must be owner" message."""
    who = _ident(user)
    fix = f"ask an administrator to grant what is missing to {who}"
    if m := re.search(r"must be owner of (?:table|index|relation|materialized view) (\S+)", message):
        fix = (
            f"CREATE INDEX, REINDEX and DROP INDEX need ownership of {m[1]} before PostgreSQL 17: "
            f"GRANT <the role that owns {m[1]}> TO {who}"
        )
    elif m := re.search(r"permission denied for (?:table|view|materialized view|sequence) (\S+)", message):
        fix = f"GRANT SELECT ON {m[1]} TO {who}"
    elif m := re.search(r"permission denied for function (\S+)", message):
        fix = f"GRANT EXECUTE ON FUNCTION {m[1]} TO {who}"
        if "pgstat" in m[1]:  # pgstattuple: PostgreSQL grants its functions to pg_stat_scan_tables
            fix += f" (for pgstattuple's functions: GRANT pg_stat_scan_tables TO {who})"
    elif m := re.search(r"permission denied for schema (\S+)", message):
        fix = f"GRANT USAGE ON SCHEMA {m[1]} TO {who} (and CREATE, where ops creates its ledger)"
    elif m := re.search(r"privileges of (?:the )?\"?(pg_\w+)", message):
        fix = f"GRANT {m[1]} TO {who}"
    elif "to create role" in message or "admin option" in message or "must have admin" in message:
        fix = (
            f"creating roles and granting membership needs CREATEROLE (or a superuser): ALTER ROLE {who} CREATEROLE, "
            "or on a managed database run it as the provider's admin role"
        )
    if grant_role:
        fix += f"; the {grant_role} role gives it: GRANT {grant_role} TO {who} ({ROLES_HINT})"
    return fix


def privilege_error(
    exc: BaseException, user: str, grant_role: str | None = None, exit_code: int | None = None
) -> PrivilegeError:
    message = first_line(exc)
    head = message if message.startswith("permission denied") else f"permission denied: {message}"
    return PrivilegeError(f"{head}: {privilege_fix(message, user, grant_role)}", exit_code)


def connect(
    dsn: str | None = None,
    *,
    autocommit: bool = True,
    connect_timeout: int = 5,
    search_path: str | None = PINNED_SEARCH_PATH,
    grant_role: str | None = None,
) -> OpsConnection:
    """Connect with the libpq environment (PGHOST, PGPORT, PGSERVICE, PGPASSFILE, ...) or a DSN.

    ``search_path`` is pinned for the session (default: pg_catalog only); pass another path when a
    caller must resolve names as the app does, or None to keep the server's. ``grant_role`` names
    the s10 role whose grants the job needs, for the one-line "permission denied" errors.
    """
    dsn = check_dsn(dsn)
    warn_pgpassword()
    try:
        conn = OpsConnection.connect(
            dsn,
            autocommit=autocommit,
            row_factory=dict_row,
            application_name=APPLICATION_NAME,
            connect_timeout=connect_timeout,
        )
    except psycopg.OperationalError as exc:
        raise ConnectError(f"cannot connect to the database: {first_line(exc, dsn)}") from None
    except psycopg.ProgrammingError as exc:
        raise UsageError(f"bad connection settings: {first_line(exc, dsn)}") from None
    conn.grant_role = grant_role
    if search_path is not None:
        conn.execute("SELECT pg_catalog.set_config('search_path', %s, false)", (search_path,))
        if not autocommit:
            conn.commit()
    return conn


def app_schemas(schemas: list[str] | None = None) -> list[str]:
    """The schemas whose objects maintain and the playbooks read and act on: the given ones, else
    S10_SCHEMA, else public. Same-named objects in any other schema are never read or touched."""
    return list(schemas) if schemas else [os.environ.get("S10_SCHEMA") or "public"]


def qualname(schema: str, name: str) -> str:
    """``schema.name`` quoted where PostgreSQL needs it, as quote_ident does (for to_regclass and messages)."""
    from pglast.stream import maybe_double_quote_name  # the parser's own keyword lists

    return f"{maybe_double_quote_name(schema)}.{maybe_double_quote_name(name)}"


def require_owner(
    conn: psycopg.Connection[Any],
    tables: list[tuple[str, str]],
    job: str,
    grant_role: str = "s10_maintenance",
    right: str = "may_maintain",
) -> None:
    """Refuse, before anything changes, when the role does not own (through membership) each table.

    CREATE INDEX, REINDEX, DROP INDEX and ANALYZE need the table's owner rights before PostgreSQL 17.
    """
    if not tables:
        return
    rows = conn.execute(
        query("table_owner"), {"schemas": [s for s, _ in tables], "names": [t for _, t in tables]}
    ).fetchall()
    missing = [r for r in rows if not r[right]]
    if missing:
        first = missing[0]
        more = f" (+{len(missing) - 1} more table(s))" if len(missing) > 1 else ""
        user = _ident(conn.info.user)
        raise PrivilegeError(
            f"permission denied: {job} needs ownership of {first['qualified']}{more}, owned by "
            f"{_ident(first['owner'])}: GRANT {_ident(first['owner'])} TO {user}; the {grant_role} role gives it: "
            f"GRANT {grant_role} TO {user} ({ROLES_HINT}). Nothing was changed",
            FAILED,
        )


def set_timeouts(conn: psycopg.Connection[Any], *, lock_timeout: float, statement_timeout: float = 0) -> None:
    """Session-level lock_timeout and statement_timeout, in seconds (0 means none)."""
    conn.execute(
        sql.SQL("SET lock_timeout = {}; SET statement_timeout = {}").format(
            sql.Literal(f"{int(lock_timeout * 1000)}ms"), sql.Literal(f"{int(statement_timeout * 1000)}ms")
        )
    )


def lock_key(name: str) -> int:
    """A stable 63-bit advisory-lock key for a job name (same in every process and on every host)."""
    import hashlib

    return int.from_bytes(hashlib.sha256(f"s10-ops:{name}".encode()).digest()[:8], "big") >> 1


@contextlib.contextmanager
def advisory_lock(conn: psycopg.Connection[Any], name: str, wait: float) -> Iterator[None]:
    """Hold a session advisory lock for ``name``; wait at most ``wait`` seconds for it, then give up loudly."""
    key = lock_key(name)
    deadline = time.monotonic() + wait
    while True:
        row = conn.execute("SELECT pg_try_advisory_lock(%s) AS ok", (key,)).fetchone()
        if row and row["ok"]:
            break
        if time.monotonic() >= deadline:
            holders = conn.execute(query("advisory_lock_holders"), {"key": key}).fetchall()
            who = ", ".join(
                f"pid {h['pid']} ({h['application_name'] or '?'}, since {h['backend_start']:%H:%M:%S})" for h in holders
            )
            raise OpsError(f"another '{name}' run holds the lock ({who or 'holder unknown'}); gave up after {wait:g}s")
        time.sleep(min(0.25, max(0.0, deadline - time.monotonic())) or 0.05)
    try:
        yield
    finally:
        with contextlib.suppress(psycopg.Error):
            conn.execute("SELECT pg_advisory_unlock(%s)", (key,))


@contextlib.contextmanager
def replica_connections(dsns: list[str] | None) -> Iterator[list[psycopg.Connection[dict[str, Any]]]]:
    """Connections to each replica DSN, closed afterwards; an unreachable one is named (UNKNOWN)."""
    conns: list[psycopg.Connection[dict[str, Any]]] = []
    check_dsns(dsns)
    try:
        for dsn in dsns or []:
            try:
                conns.append(connect(dsn))
            except ConnectError as exc:
                raise ConnectError(f"replica {redact_dsn(dsn)}: {exc}") from None
        yield conns
    finally:
        for c in conns:
            c.close()


def in_recovery(conn: psycopg.Connection[Any]) -> bool:
    """True on a replica (a standby replaying WAL)."""
    row = conn.execute("SELECT pg_is_in_recovery() AS r").fetchone()
    return bool(row and row["r"])


def require_primary(conn: psycopg.Connection[Any], job: str) -> None:
    """Refuse to change anything on a replica: every action job calls this before it starts."""
    if in_recovery(conn):
        raise OpsError(f"this database is a replica (pg_is_in_recovery() is true): {job} runs on the primary only")


def concurrent_build_warning(conn: psycopg.Connection[Any]) -> str | None:
    """PostgreSQL 14.0 to 14.3 could corrupt indexes built CONCURRENTLY (fixed in 14.4)."""
    if 140000 <= conn.info.server_version < 140004:
        return "WARNING: PostgreSQL 14.0-14.3 can corrupt indexes built CONCURRENTLY; upgrade to 14.4+ and REINDEX"
    return None


def server_version(conn: psycopg.Connection[Any]) -> int:
    return conn.info.server_version
