"""The docs cannot drift: generated pages match the code, and every page has one title."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from neo4j_schema_rollback import events
from neo4j_schema_rollback.errors import ExitCode

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def docgen():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("docgen", ROOT / "scripts" / "docgen.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("page", ["docs/commands.md", "docs/statements.md"])
def test_generated_pages_are_current(page: str) -> None:
    """commands.md and statements.md equal what scripts/gen-docs writes today."""
    render = docgen().PAGES[page]
    assert (ROOT / page).read_text() == render(), f"run scripts/gen-docs to update {page}"


@pytest.mark.parametrize("columns", [80, 120])
@pytest.mark.parametrize("command", ["", "apply", "rollback", "status", "statements",
                                     "check-table"])
def test_help_reads_cleanly(command: str, columns: int) -> None:
    """--help at 80 and 120 columns: no line too long or ending in a blank, each entry's
    continuation indented under it, and no [...] note split across lines."""
    args = [command, "--help"] if command else ["--help"]
    env = {**os.environ, "COLUMNS": str(columns), "NO_COLOR": "1"}
    out = subprocess.run([sys.executable, "-m", "neo4j_schema_rollback", *args], env=env,
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert [line.rstrip() for line in out] == out, "a line ends in a blank"
    panel = False
    for line in out:
        assert len(line) <= columns, line
        assert line.count("[") == line.count("]"), line
        if line.endswith(":") and not line.startswith(" "):
            panel = True  # a panel's title: entries follow
        elif not line:
            panel = False
        elif panel:
            entry = re.match(r"  [A-Za-z][A-Za-z-]*: ", line)  # a command, an argument
            assert line.startswith(("  -", "      ")) or entry, line


@pytest.mark.parametrize("page", sorted(p.name for p in DOCS.glob("*.md")))
def test_every_page_starts_with_one_title(page: str) -> None:
    """Each page starts with a single '# ' heading and has no other."""
    text = (DOCS / page).read_text()
    assert text.startswith("# ")
    outside_code = re.sub(r"```.*?```", "", text, flags=re.S)
    assert len(re.findall(r"^# ", outside_code, flags=re.M)) == 1


def test_every_exit_code_is_documented() -> None:
    """Each exit code of errors.ExitCode has a row in exit-codes.md."""
    text = (DOCS / "exit-codes.md").read_text()
    for code in ExitCode:
        assert f"\n| {int(code)} |" in text, code


def test_every_event_is_documented() -> None:
    """Each event name the code can emit has a row in events.md and an entry in the schema."""
    text = (DOCS / "events.md").read_text()
    schema = (DOCS / "events.schema.json").read_text()
    for name in events.ALL:
        assert f"| `{name}` |" in text, name
        assert f'"{name}"' in schema, name


def test_configuration_documents_every_flag() -> None:
    """Every connection flag in --help appears in configuration.md."""
    text = (DOCS / "configuration.md").read_text()
    help_text = (DOCS / "commands.md").read_text()
    flags = set(re.findall(r"^  (--[a-z-]+)", help_text, flags=re.M))
    connection = {"--uri", "--username", "--password", "--password-file", "--database",
                  "--trusted-ca", "--wait", "--timeout", "--log-format"}
    assert connection <= flags
    for flag in connection:
        assert f"`{flag}`" in text, flag


def test_every_error_class_is_documented() -> None:
    """Each error class has a row in exit-codes.md, and the schema allows exactly them."""
    import json

    from neo4j_schema_rollback.errors import ERROR_CLASSES

    text = (DOCS / "exit-codes.md").read_text()
    rows = re.findall(r"^\| `([a-z_]+)` \| [0-9, ]+ \|", text, flags=re.M)
    assert rows == list(ERROR_CLASSES)
    schema = json.loads((DOCS / "events.schema.json").read_text())
    assert schema["$defs"]["error_class"]["enum"] == list(ERROR_CLASSES)
