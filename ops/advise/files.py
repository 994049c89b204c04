"""Migration files the advisor writes: the next names in sql/migrations/, one change per file.

Naming rule (the same as the seed's files, so ``ops migrate`` orders them after every existing
one): ``<revision>_<NN>_<name>.sql`` where

- ``revision`` is 12 hex digits: the highest revision in the directory plus one (``0607bc5b8539``
  is followed by ``0607bc5b853a``), one new revision per ``ops advise --write`` run, so the run's
  changes apply together and sort after everything already there;
- ``NN`` numbers the run's files from 01, in the order they are proposed;
- ``name`` is the index built (``idx_memberships_user_id``) or ``drop_<index>`` for a drop.

Each file starts with a comment header carrying the evidence, then exactly one statement
(``CREATE INDEX CONCURRENTLY`` or ``DROP INDEX CONCURRENTLY``) that squawk accepts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pglast.stream import maybe_double_quote_name

from ops.errors import UsageError
from ops.migrations import FILENAME, MIGRATIONS_DIR, IndexDecl, Migration, declared_indexes, load_all

MAX_NAME = 63  # PostgreSQL's identifier limit (NAMEDATALEN - 1)


@dataclass(frozen=True)
class MigrationFile:
    path: Path
    statement: str
    header: list[str]

    @property
    def text(self) -> str:
        return "".join(f"-- {h}\n" if h else "--\n" for h in self.header) + self.statement + "\n"


def next_revision(directory: Path) -> str:
    """The revision after the highest one in ``directory`` (12 hex digits)."""
    revisions = [m["revision"] for p in directory.glob("*.sql") if (m := FILENAME.match(p.name))]
    if not revisions:
        return "000000000001"
    return f"{int(max(revisions), 16) + 1:012x}"


def planned(directory: Path, names_and_bodies: list[tuple[str, str, list[str]]]) -> list[MigrationFile]:
    """Files for (name, statement, header) in order, numbered under one new revision."""
    revision = next_revision(directory)
    files = []
    for seq, (name, statement, header) in enumerate(names_and_bodies, start=1):
        filename = f"{revision}_{seq:02d}_{name}.sql"
        if not FILENAME.match(filename):
            raise UsageError(f"cannot name a migration after {name!r}: names are lower-case letters, digits and _")
        files.append(MigrationFile(directory / filename, statement, header))
    return files


def write(files: list[MigrationFile]) -> None:
    """Write every file, or none: refuse when any would overwrite an existing one."""
    clash = [f.path.name for f in files if f.path.exists()]
    if clash:
        raise UsageError(f"refusing to overwrite existing migration(s): {', '.join(clash)}")
    for f in files:
        f.path.write_text(f.text)


def declared(directory: Path | None = None) -> tuple[dict[str, IndexDecl], dict[str, str]]:
    """The indexes the migrations leave in place, and which migration declares each one (by ``schema.name``)."""
    migrations: list[Migration] = load_all(directory or MIGRATIONS_DIR)
    owner = {d.key: m.id for m in migrations for d in m.indexes}
    return declared_indexes(migrations), owner


def is_declared(decls: dict[str, IndexDecl], schema: str, name: str) -> bool:
    return f"{schema}.{name}" in decls  # keyed by schema.name: a same-named index elsewhere is not ours


def ident(*parts: str) -> str:
    """A (schema-)qualified name, quoted only where PostgreSQL needs it (readable files)."""
    return ".".join(maybe_double_quote_name(p) for p in parts)


def drop_statement(schema: str, name: str) -> str:
    return f"DROP INDEX CONCURRENTLY {ident(schema, name)};"


def drop_file_name(index: str) -> str:
    return f"drop_{index}"[:MAX_NAME]


def drop_fix(
    schema: str, index: str, decls: dict[str, IndexDecl], owner: dict[str, str], directory: Path | None = None
) -> dict[str, str]:
    """How to remove an index: raw DDL for one no migration declares; a drop migration for a declared one.

    Dropping a declared index by hand makes ``ops migrate verify`` CRITICAL and the next deploy
    builds it again: the migrations must say it goes.
    """
    statement = drop_statement(schema, index)
    if not is_declared(decls, schema, index):
        return {"fix": statement}
    directory = directory or MIGRATIONS_DIR
    target = planned(directory, [(drop_file_name(index), statement, [])])[0].path
    shown = target.relative_to(directory.parent.parent) if directory == MIGRATIONS_DIR else target
    return {
        "fix": (
            f"declared by migration {owner[f'{schema}.{index}']}: never drop it by hand (verify would fail and the next deploy "
            f"rebuild it); add a drop migration: 'ops advise --drop {schema}.{index} --write' writes {shown} "
            f"({statement}), then deploy"
        ),
        "declared_by": owner[f"{schema}.{index}"],
        "drop_migration": str(shown),
    }
