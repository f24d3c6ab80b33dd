"""Generate the docs pages that mirror the code: the CLI reference and the statement tables.

`scripts/gen-docs` writes them; tests/unit/test_docs.py fails when the committed pages differ.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ["", "apply", "rollback", "status", "statements", "check-table"]


def help_text(command: str, columns: int = 100) -> str:
    args = [command, "--help"] if command else ["--help"]
    env = {**os.environ, "COLUMNS": str(columns), "NO_COLOR": "1"}
    out = subprocess.run([sys.executable, "-m", "neo4j_schema_rollback", *args], env=env,
                         capture_output=True, text=True, check=True).stdout
    return "\n".join(line.rstrip() for line in out.strip().splitlines())


def commands_page() -> str:
    parts = ["# Command reference", "",
             "Generated from `--help` by `scripts/gen-docs`; a test keeps it in sync.", ""]
    for command in COMMANDS:
        title = command or "neo4j-schema-rollback"
        parts += [f"## {title}", "", "```text", help_text(command), "```", ""]
    return "\n".join(parts)


def statements_page() -> str:
    sys.path[:0] = [str(ROOT / "app"), str(ROOT / "tests")]
    from neo4j_schema_rollback.commands import statements
    from neo4j_schema_rollback.dialect import ServerVersion, dialect_for
    from neo4j_schema_rollback.table import EMBEDDED, Table, shape
    from testbed.lines import LINES

    def printed(table: Table, action: str, version: str) -> list[str]:
        out = io.StringIO()  # what `statements` prints: the print sink of the one runner
        statements(out, table, action, version)  # type: ignore[arg-type]  # not the Literal
        return out.getvalue().splitlines()

    parts = ["# Statement tables", "",
             "The tables embedded in the binary, named with `--table` (default "
             "`qmtl-dagmanager`); any other schema is a [table file](table-files.md). Generated "
             "from the code by `scripts/gen-docs`; a test keeps it in sync. `statements` prints "
             "the same text.", ""]
    for table in EMBEDDED.values():
        parts += [f"## `{table.name}`", "", "| version | object | kind | on |",
                  "|---|---|---|---|"]
        for obj in table.objects:
            d = obj.definition
            parts.append(f"| {obj.version} | `{obj.name}` | {d.kind.value.replace('_', ' ')} | "
                         f"`{shape(d.entity, d.labels, d.properties)}` |")
        parts.append("")
        for line in LINES.values():
            dialect = dialect_for(ServerVersion.parse(line.server_version))
            parts += [f"### `{table.name}` on Neo4j {line.docs_title}", "",
                      f"Dialect `{dialect.name}`; a plain `CREATE INDEX` makes a "
                      f"`{dialect.default_index_type}` index.", "",
                      "`apply` (oldest first):", "", "```cypher"]
            parts += printed(table, "apply", line.server_version)
            parts += ["```", "", "`rollback` (newest first):", "", "```cypher"]
            parts += printed(table, "rollback", line.server_version)
            parts += ["```", ""]
    return "\n".join(parts)


PAGES = {"docs/commands.md": commands_page, "docs/statements.md": statements_page}


def main() -> None:
    for path, render in PAGES.items():
        (ROOT / path).write_text(render())
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
