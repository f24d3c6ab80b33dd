"""Which table a run uses: --table, else NEO4J_SCHEMA_TABLE, else the default."""

from __future__ import annotations

from collections.abc import Mapping

from .table import DEFAULT_TABLE, EMBEDDED, Table

TABLE_VAR = "NEO4J_SCHEMA_TABLE"


def choose(flag: str | None, env: Mapping[str, str], source: str = "--table") -> Table:
    """The table named by `flag` (given as `source`), else NEO4J_SCHEMA_TABLE, else the default:
    an embedded one by name, or a table file (only then is the file reader, and TOML,
    imported)."""
    spec = flag if flag is not None else (env.get(TABLE_VAR) or DEFAULT_TABLE)
    if spec in EMBEDDED:
        return EMBEDDED[spec]
    from .tablefile import read_table

    return read_table(spec, source if flag is not None else TABLE_VAR)
