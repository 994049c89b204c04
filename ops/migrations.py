"""The migrations in sql/migrations/: one change per plain SQL file, read with a real parser (pglast).

A file is ``<revision>_<NN>_<name>.sql``. Its id is the file name without ``.sql``; its
revision is the seed's alembic revision id it belongs to. A file may hold:

- ``CREATE [UNIQUE] INDEX CONCURRENTLY <name> ON <table> (...)``  (explicit name, required)
- ``ALTER TABLE <table> ADD CONSTRAINT <name> {UNIQUE|PRIMARY KEY} USING INDEX <index>``
- ``DROP INDEX CONCURRENTLY <name>``

Every name belongs to a schema: the one the statement names (``public.users``), or ``public``
(DEFAULT_SCHEMA) when it names none; the search_path never decides. Anything else is refused: this repo owns indexes, not tables, and every build must be online.
"""

from __future__ import annotations

import copy
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pglast
from pglast import ast
from pglast.enums import AlterTableType, ConstrType, ObjectType
from pglast.stream import RawStream

from ops import SQL_DIR
from ops.errors import UsageError

MIGRATIONS_DIR = SQL_DIR / "migrations"
DEFAULT_SCHEMA = "public"  # the schema of a table or index a migration names without one
FILENAME = re.compile(r"^(?P<revision>[0-9a-f]{12})_(?P<seq>\d{2})_(?P<name>[a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class IndexDecl:
    """An index a migration declares: its name, table and the definition it must have."""

    name: str
    table: str
    schema: str  # of the table, hence of the index
    unique: bool
    sql: str  # the statement as written (with CONCURRENTLY)
    canonical: str  # comparable form, see canonical_indexdef()
    ddl: str  # the statement that runs: the same, with the table named with its schema

    @property
    def key(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class ConstraintDecl:
    name: str
    table: str
    schema: str
    index: str
    kind: str  # "UNIQUE" or "PRIMARY KEY"
    sql: str


@dataclass(frozen=True)
class DropDecl:
    name: str
    schema: str
    sql: str

    @property
    def key(self) -> str:
        return f"{self.schema}.{self.name}"


Step = IndexDecl | ConstraintDecl | DropDecl


@dataclass(frozen=True)
class Migration:
    id: str
    revision: str
    path: Path
    checksum: str
    steps: tuple[Step, ...] = field(default_factory=tuple)

    @property
    def indexes(self) -> list[IndexDecl]:
        return [s for s in self.steps if isinstance(s, IndexDecl)]


def canonical_indexdef(stmt: ast.IndexStmt) -> str:
    """A form of an index definition that is equal for equal indexes, whatever the spelling.

    Both the migration's statement and ``pg_get_indexdef()`` go through the same parser and
    deparser, with what does not change the index removed: CONCURRENTLY, IF NOT EXISTS,
    the schema qualification, and the default access method spelled out or not.
    """
    node = copy.deepcopy(stmt)
    node.concurrent = False
    node.if_not_exists = False
    node.idxname = "x"
    assert node.relation is not None  # the parser always sets it for CREATE INDEX
    node.relation.schemaname = None
    node.relation.inh = True
    if not node.accessMethod:
        node.accessMethod = "btree"
    return RawStream()(node)


def qualified_indexdef(stmt: ast.IndexStmt, schema: str) -> str:
    """The statement with its table named as ``schema.table`` (pglast quotes what needs quoting)."""
    node = copy.deepcopy(stmt)
    assert node.relation is not None
    node.relation.schemaname = schema
    return RawStream()(node)


def canonical_from_indexdef(indexdef: str) -> str:
    """The canonical form of what ``pg_get_indexdef(indexrelid)`` returns."""
    stmt = pglast.parse_sql(indexdef)[0].stmt
    assert isinstance(stmt, ast.IndexStmt)
    return canonical_indexdef(stmt)


def _statement_text(source: str, raw: ast.RawStmt) -> str:
    start = raw.stmt_location or 0
    end = start + raw.stmt_len if raw.stmt_len else len(source)
    text = source[start:end]
    # Drop leading comment lines that belong to the file header, keep the statement.
    lines = [ln for ln in text.strip().splitlines() if not ln.lstrip().startswith("--")]
    return "\n".join(lines).strip()


def _relation(path: Path, rel: ast.RangeVar | None) -> ast.RangeVar:
    if rel is None or not rel.relname:
        raise UsageError(f"{path.name}: statement names no table")
    return rel


def _parse_step(path: Path, source: str, raw: ast.RawStmt) -> Step:
    stmt = raw.stmt
    text = _statement_text(source, raw)
    where = f"{path.name}: "
    if isinstance(stmt, ast.IndexStmt):
        if not stmt.idxname:
            raise UsageError(f"{where}CREATE INDEX needs an explicit index name")
        if not stmt.concurrent:
            raise UsageError(f"{where}CREATE INDEX {stmt.idxname} must be CONCURRENTLY (a plain build blocks writes)")
        if stmt.if_not_exists:
            raise UsageError(
                f"{where}drop IF NOT EXISTS from {stmt.idxname}: it checks the name only; ops checks the definition"
            )
        rel = _relation(path, stmt.relation)
        schema = rel.schemaname or DEFAULT_SCHEMA
        return IndexDecl(
            name=stmt.idxname,
            table=str(rel.relname),
            schema=schema,
            unique=bool(stmt.unique),
            sql=text,
            canonical=canonical_indexdef(stmt),
            ddl=qualified_indexdef(stmt, schema),
        )
    if isinstance(stmt, ast.AlterTableStmt):
        cmds: tuple[Any, ...] = stmt.cmds or ()
        ok = (
            len(cmds) == 1
            and cmds[0].subtype == AlterTableType.AT_AddConstraint
            and isinstance(cmds[0].def_, ast.Constraint)
            and cmds[0].def_.contype in (ConstrType.CONSTR_UNIQUE, ConstrType.CONSTR_PRIMARY)
            and cmds[0].def_.indexname
            and cmds[0].def_.conname
        )
        if not ok:
            raise UsageError(f"{where}only ALTER TABLE ... ADD CONSTRAINT <name> UNIQUE USING INDEX <index> is allowed")
        con = cmds[0].def_
        rel = _relation(path, stmt.relation)
        return ConstraintDecl(
            name=con.conname,
            table=str(rel.relname),
            schema=rel.schemaname or DEFAULT_SCHEMA,
            index=con.indexname,
            kind="UNIQUE" if con.contype == ConstrType.CONSTR_UNIQUE else "PRIMARY KEY",
            sql=text,
        )
    if isinstance(stmt, ast.DropStmt) and stmt.removeType == ObjectType.OBJECT_INDEX:
        if not stmt.concurrent or not stmt.objects or len(stmt.objects) != 1:
            raise UsageError(f"{where}DROP INDEX must be CONCURRENTLY and name one index")
        names = [n.sval for n in stmt.objects[0]]
        if len(names) > 2:
            raise UsageError(f"{where}DROP INDEX names an index in another database: {'.'.join(names)}")
        return DropDecl(name=names[-1], schema=names[-2] if len(names) > 1 else DEFAULT_SCHEMA, sql=text)
    raise UsageError(
        f"{where}unsupported statement {type(stmt).__name__}: migrations here only create, attach or drop indexes"
    )


def load_migration(path: Path) -> Migration:
    m = FILENAME.match(path.name)
    if not m:
        raise UsageError(f"{path.name}: migration files are named <revision>_<NN>_<name>.sql (revision: 12 hex digits)")
    data = path.read_bytes()
    try:
        source = data.decode("utf-8")
        raws = pglast.parse_sql(source)
    except UnicodeDecodeError:
        raise UsageError(f"{path.name}: not UTF-8 text") from None
    except pglast.parser.ParseError as exc:
        raise UsageError(f"{path.name}: malformed SQL: {exc}") from None
    if not raws:
        raise UsageError(f"{path.name}: no statement in the file")
    steps = tuple(_parse_step(path, source, raw) for raw in raws)
    if not any(isinstance(s, IndexDecl | DropDecl) for s in steps):
        raise UsageError(f"{path.name}: a migration must create or drop an index")
    return Migration(
        id=path.stem,
        revision=m["revision"],
        path=path,
        checksum=hashlib.sha256(data).hexdigest(),
        steps=steps,
    )


def load_all(directory: Path | None = None) -> list[Migration]:
    """Every migration, in order; a bad file fails the whole load (nothing is applied)."""
    directory = directory or MIGRATIONS_DIR
    if not directory.is_dir():
        raise UsageError(f"migrations directory not found: {directory}")
    migrations = [load_migration(p) for p in sorted(directory.glob("*.sql"))]
    seen: dict[str, str] = {}
    for mig in migrations:
        for decl in mig.indexes:
            if decl.key in seen:
                raise UsageError(f"{mig.path.name}: index {decl.key} is already declared by {seen[decl.key]}")
            seen[decl.key] = mig.id
    return migrations


def select(migrations: list[Migration], target: str | None) -> list[Migration]:
    """Migrations up to and including ``target`` (a revision, or a migration id); all when None."""
    if not target:
        return migrations
    known_revisions = {m.revision for m in migrations}
    known_ids = {m.id for m in migrations}
    if target in known_ids:
        last = next(i for i, m in enumerate(migrations) if m.id == target)
        return migrations[: last + 1]
    if target in known_revisions:
        return [m for m in migrations if m.revision <= target]
    raise UsageError(f"unknown revision {target!r} (known: {', '.join(sorted(known_revisions))})")


def declared_indexes(migrations: list[Migration]) -> dict[str, IndexDecl]:
    """The final set of indexes the migrations leave, by ``schema.name``: later drops remove earlier creates."""
    result: dict[str, IndexDecl] = {}
    for mig in migrations:
        for step in mig.steps:
            if isinstance(step, IndexDecl):
                result[step.key] = step
            elif isinstance(step, DropDecl):
                result.pop(step.key, None)
    return result
