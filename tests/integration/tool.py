"""Runs the tool as a user would (a subprocess) and reads its JSON Lines back as data.

The same runner drives the Python module or the frozen binary, so every end-to-end scenario
proves both. Every run checks the two promises that hold for all output: each stdout line is a
valid event (in JSON mode), and no password ever appears anywhere.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "docs" / "events.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


@dataclass
class Result:
    """One finished run: exit code, raw streams and the parsed events."""

    code: int
    stdout: str
    stderr: str
    events: list[dict[str, Any]] = field(default_factory=list)

    def of(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == name]

    @property
    def statements(self) -> list[dict[str, Any]]:
        return self.of("statement")

    def table_statements(self, outcome: str | None = None) -> list[dict[str, Any]]:
        """Statements about table objects (create/drop), optionally of one outcome."""
        return [e for e in self.statements if e["action"] in ("create", "drop")
                and (outcome is None or e["outcome"] == outcome)]

    def outcomes(self) -> dict[str, str]:
        """object name -> outcome of its create/drop statement."""
        return {e["object"]: e["outcome"] for e in self.table_statements()}

    @property
    def end(self) -> dict[str, Any]:
        [end] = self.of("run.end")
        return end

    def states(self) -> dict[str, str]:
        return {e["object"]: e["state"] for e in self.of("object")}


class Tool:
    """A way to start the tool: `python -m neo4j_schema_rollback` or a frozen binary."""

    def __init__(self, name: str, command: list[str], env: dict[str, str] | None = None) -> None:
        self.name = name
        self.command = command
        self.base_env = env if env is not None else {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),
        }

    def run(self, *args: str, env: dict[str, str] | None = None, secrets: tuple[str, ...] = (),
            stdin: str | None = None, timeout: float = 180) -> Result:
        """Run to completion and check the output."""
        proc = subprocess.run([*self.command, *args], env={**self.base_env, **(env or {})},
                              capture_output=True, text=True, timeout=timeout,
                              input=stdin if stdin is not None else "", check=False)
        return check(Result(proc.returncode, proc.stdout, proc.stderr), args, secrets)

    def spawn(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """Start a run whose stdout the test reads line by line (see `finish`)."""
        return subprocess.Popen([*self.command, *args], env={**self.base_env, **(env or {})},
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen[str], seen: list[str], args: tuple[str, ...],
           secrets: tuple[str, ...] = (), timeout: float = 180) -> Result:
    """Wait for a spawned run; `seen` holds stdout lines the test already read."""
    out, err = proc.communicate(timeout=timeout)
    return check(Result(proc.returncode, "".join(seen) + out, err), args, secrets)


def check(result: Result, args: tuple[str, ...], secrets: tuple[str, ...]) -> Result:
    """No secret anywhere, no traceback, and (in JSON mode) every stdout line a valid event."""
    for secret in secrets:
        assert secret not in result.stdout, "a secret leaked to stdout"
        assert secret not in result.stderr, "a secret leaked to stderr"
    assert "Traceback" not in result.stderr, result.stderr
    if "console" not in args and args[:1] != ("statements",):
        for line in result.stdout.splitlines():
            event = json.loads(line)
            errors = sorted(VALIDATOR.iter_errors(event), key=str)
            assert not errors, f"invalid event {line}: {errors[0].message}"
            result.events.append(event)
    return result


def module_tool() -> Tool:
    return Tool("module", [sys.executable, "-m", "neo4j_schema_rollback"])


BINARY = ROOT / "dist" / "neo4j-schema-rollback"


def binary_sources() -> list[Path]:
    """What the binary is built from: app/ (byte code aside), build/spec, the lock file."""
    files = [path for path in (ROOT / "app").rglob("*")
             if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"]
    spec = [path for path in (ROOT / "build" / "spec").iterdir()
            if path.suffix in (".py", ".spec")]
    return [*files, *spec, ROOT / "uv.lock"]


def ensure_binary() -> Path:
    """dist/neo4j-schema-rollback, (re)built by scripts/build-binary when missing or older than
    any of its sources; one build at a time across pytest sessions."""
    lock = ROOT / ".testbed" / "build-binary.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        newest = max(path.stat().st_mtime for path in binary_sources())
        if not BINARY.exists() or BINARY.stat().st_mtime < newest:
            subprocess.run([str(ROOT / "scripts" / "build-binary")], check=True, cwd=ROOT)
            assert BINARY.exists(), "scripts/build-binary wrote no dist/neo4j-schema-rollback"
            assert BINARY.stat().st_mtime >= newest, "the rebuilt binary is older than its sources"
    return BINARY


def binary_tool(scratch: Path) -> Tool:
    """The frozen binary (see ensure_binary), run with no Python on PATH and no PYTHON*
    variables."""
    ensure_binary()
    empty_path = scratch / "no-python-bin"
    empty_path.mkdir(exist_ok=True)
    env = {"PATH": str(empty_path), "HOME": str(scratch), "TMPDIR": str(scratch)}
    return Tool("binary", [str(BINARY)], env=env)
