"""Named read-only queries live in sql/queries/<name>.sql so a person can run them with psql."""

from __future__ import annotations

from functools import cache

from ops import SQL_DIR


@cache
def query(name: str) -> str:
    """The text of sql/queries/<name>.sql."""
    return (SQL_DIR / "queries" / f"{name}.sql").read_text()
