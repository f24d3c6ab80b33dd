"""Golden outputs of the main scenarios, to prove a refactoring changes only what it means to.

usage: scripts/record-goldens [--check] [--line 4.4|5|calver ...] [--offline-only] [--binary]

Runs each scenario as a user would (tests/integration/tool.py: the module, or with --binary
the frozen binary) and writes its exit code, stdout and stderr to tests/golden/<file>.txt:
``offline.txt`` (--help, statements, usage errors, no server) and ``neo4j-<line>.txt`` (the
connected scenarios against a test-bed server of that line, instance ``<line>-golden``, its own
port). What changes from run to run is normalised: timestamps, run ids, durations, retry
delays, store ids in a failed index's message, and the number of index polls (index.progress
events are left out, repeats of an identical ``await`` statement collapse into one, and
run.end's ``applied`` count drops by as many).

--check writes nothing and exits 1 when any file would change, printing the diff.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tool import ROOT, Result, Tool, binary_tool, module_tool

import testbed
from testbed.db import reset_database

GOLDEN = Path(__file__).resolve().parent
HELP_ENV = {"COLUMNS": "100", "NO_COLOR": "1"}


@dataclass(frozen=True)
class Scenario:
    """One invocation; `arrange` runs first against the clean server (connected ones only)."""

    name: str
    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    arrange: tuple[str, ...] = ()  # Cypher run before the scenario
    clean: bool = False  # reset the database before `arrange`


def offline_scenarios() -> list[Scenario]:
    helps = [Scenario(f"help {cmd or '(none)'}", (*([cmd] if cmd else []), "--help"),
                      env=HELP_ENV) for cmd in ("", "apply", "rollback", "status", "statements",
                                                  "check-table")]
    statements = [Scenario(f"statements {action} {version}",
                           ("statements", "--action", action, "--server-version", version))
                  for action in ("apply", "rollback") for version in ("4.4", "5.26", "2026.08")]
    no_server = {"NEO4J_URI": "bolt://127.0.0.1:1", "NEO4J_PASSWORD": "pw"}
    statements += [Scenario(f"statements qmtl-worldservice {action}",
                            ("statements", "--table", "qmtl-worldservice", "--action", action))
                   for action in ("apply", "rollback")]
    errors = [
        Scenario("statements --to 1", ("statements", "--to", "1")),
        Scenario("statements old server", ("statements", "--server-version", "4.3")),
        Scenario("statements bad version", ("statements", "--server-version", "latest")),
        Scenario("statements --to 7", ("statements", "--to", "7")),
        Scenario("unknown flag", ("apply", "--bogus")),
        Scenario("unknown command", ("nosuchcommand",)),
        Scenario("--to not whole", ("rollback", "--to", "-0.5")),
        Scenario("--to out of range json", ("status", "--to", "9", "--log-format", "json"),
                 env=no_server),
        Scenario("--index-timeout garbage", ("apply", "--index-timeout", "soon",
                                             "--log-format", "json"), env=no_server),
        Scenario("--index-timeout inf", ("apply", "--index-timeout", "inf"), env=no_server),
        Scenario("--index-timeout 30s", ("apply", "--index-timeout", "30s", "--log-format",
                                         "json"), env=no_server),
        Scenario("--timeout 30s", ("status", "--timeout", "30s", "--log-format", "json"),
                 env=no_server),
        Scenario("--timeout 1m30s", ("status", "--timeout", "1m30s", "--log-format", "json"),
                 env=no_server),
        Scenario("--timeout -1", ("status", "--timeout", "-1", "--log-format", "json"),
                 env=no_server),
        Scenario("NEO4J_WAIT nan", ("status", "--log-format", "json"),
                 env={**no_server, "NEO4J_WAIT": "nan"}),
        Scenario("no server", ("status", "--log-format", "json"), env=no_server),
        Scenario("no server console", ("status", "--log-format", "console"), env=no_server),
        Scenario("rollback not confirmed", ("rollback", "--log-format", "json"), env=no_server),
        Scenario("no password", ("status", "--log-format", "json"),
                 env={"NEO4J_URI": "bolt://127.0.0.1:1"}),
        Scenario("bad uri", ("status", "--uri", "http://x", "--log-format", "json"),
                 env=no_server),
    ]
    return helps + statements + errors


def connected_scenarios() -> list[Scenario]:
    def s(name: str, *argv: str, **kw: Any) -> Scenario:
        fmt = () if "--log-format" in argv else ("--log-format", "json")
        return Scenario(name, (*argv, *fmt), **kw)

    return [
        s("status empty", "status", clean=True),
        s("status --expect applied (empty)", "status", "--expect", "applied"),
        s("apply --dry-run", "apply", "--dry-run"),
        s("apply --to 1", "apply", "--to", "1"),
        s("apply", "apply"),
        s("apply again", "apply"),
        s("status full", "status", "--expect", "applied"),
        s("rollback --dry-run", "rollback", "--dry-run"),
        s("rollback not confirmed", "rollback"),
        s("rollback --to 1", "rollback", "--to", "1", "--yes"),
        s("rollback", "rollback", "--yes"),
        s("rollback again", "rollback", "--yes"),
        s("default command", "--yes"),
        s("console status", "status", "--log-format", "console"),
        s("apply refused", "apply", clean=True,
          arrange=("CREATE INDEX kafka_topic FOR (q:Queue) ON (q.name)",)),
        s("rollback refused", "rollback", "--yes"),
        s("status equivalent", "status", clean=True,
          arrange=("CREATE INDEX my_topic FOR (q:Queue) ON (q.topic)",)),
        s("apply index failed", "apply", clean=True,
          arrange=("CREATE (:Queue {topic: reduce(s = '', i IN range(1, 4000) | "
                   "s + 'xxxxxxxxxx')})",)),
        s("wrong password", "status", env={"NEO4J_PASSWORD": "wrong"}, clean=True),
        s("unknown database", "status", "--database", "nosuchdb"),
    ]


# -- normalising ----------------------------------------------------------------------------

_VARYING = {"timestamp": "T", "run_id": "RUN", "duration_ms": 0, "waited_ms": 0, "probes": 0,
            "remaining_ms": 0}


def normalise_events(lines: list[str]) -> list[str]:
    events = [json.loads(line) for line in lines]
    out: list[dict[str, Any]] = []
    for event in events:
        for key, value in _VARYING.items():
            if key in event:
                event[key] = value
        if event["event"] == "index.progress":
            continue  # how many polls see an index populating depends on the machine's load
        if (event["event"] == "statement" and event.get("action") == "await" and out
                and out[-1] == event):
            continue
        if event["event"] == "run.end":
            event["counts"]["applied"] -= _awaits(events) - _awaits(out)
        out.append(event)
    return [json.dumps(event, ensure_ascii=False, separators=(",", ":")) for event in out]


def _awaits(events: list[dict[str, Any]]) -> int:
    return sum(1 for e in events if e["event"] == "statement" and e.get("action") == "await")


_CONSOLE_TIME = re.compile(r"^\d\d:\d\d:\d\d ", flags=re.M)
_CONSOLE_VARYING = re.compile(r"\b(duration_ms|waited_ms|probes|remaining_ms)=[0-9.]+")
# A failed index's message names the store's ids for it and for the node: they vary.
_STORE_IDS = [(re.compile(r"Index\( id=\d+"), "Index( id=N"),
              (re.compile(r"element id: [^,]+"), "element id: ID")]


def normalise(result: Result, scenario: Scenario, server: testbed.Server | None) -> str:
    stdout = result.stdout
    if stdout.startswith("{"):  # JSON Lines: --log-format json, or auto with stdout piped
        body = "\n".join(normalise_events(stdout.splitlines()))
    else:
        body = _CONSOLE_VARYING.sub(r"\1=0", _CONSOLE_TIME.sub("HH:MM:SS ", stdout)).rstrip("\n")
    stderr = result.stderr.rstrip("\n")
    if server is not None:
        body = body.replace(f":{server.port}", ":PORT")
        stderr = stderr.replace(f":{server.port}", ":PORT")
        for pattern, replacement in _STORE_IDS:
            body, stderr = pattern.sub(replacement, body), pattern.sub(replacement, stderr)
    args = " ".join(scenario.argv)
    return (f"## {scenario.name}\n$ {args}\nexit {result.code}\n--- stdout\n{body}\n"
            f"--- stderr\n{stderr}\n\n")


# -- running --------------------------------------------------------------------------------

def run(tool: Tool, scenario: Scenario, env: dict[str, str]) -> Result:
    """Run without Tool.run's checks: --help and statements print no events."""
    proc = subprocess.run([*tool.command, *scenario.argv], env={**tool.base_env, **env},
                          capture_output=True, text=True, timeout=180, input="", check=False)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def record_offline(tool: Tool) -> str:
    parts = []
    for scenario in offline_scenarios():
        parts.append(normalise(run(tool, scenario, scenario.env), scenario, None))
    return "".join(parts)


def record_line(tool: Tool, line: str) -> str:
    name = f"{line}-golden"
    server = testbed.start(line, name=name)
    parts = []
    try:
        with server.driver() as driver:
            for scenario in connected_scenarios():
                if scenario.clean:
                    reset_database(driver)
                for statement in scenario.arrange:
                    driver.execute_query(statement)
                env = {**server.env(), **scenario.env}
                result = run(tool, scenario, env)
                parts.append(normalise(result, scenario, server))
    finally:
        testbed.stop(name)
    return "".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(prog="record-goldens", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    parser.add_argument("--line", action="append", choices=list(testbed.LINE_NAMES),
                        help="lines to run (default: all)")
    parser.add_argument("--offline-only", action="store_true")
    parser.add_argument("--binary", action="store_true", help="run the frozen binary")
    args = parser.parse_args()
    tool = binary_tool(ROOT / "build" / "work") if args.binary else module_tool()
    files: dict[str, Callable[[], str]] = {"offline.txt": lambda: record_offline(tool)}
    if not args.offline_only:
        for line in args.line or testbed.LINE_NAMES:
            files[f"neo4j-{line}.txt"] = lambda line=line: record_line(tool, line)  # type: ignore[misc]
    changed = False
    for filename, render in files.items():
        text = render()
        path = GOLDEN / filename
        if args.check:
            old = path.read_text() if path.exists() else ""
            if old != text:
                changed = True
                sys.stdout.writelines(difflib.unified_diff(
                    old.splitlines(keepends=True), text.splitlines(keepends=True),
                    f"golden/{filename}", f"now/{filename}"))
            else:
                print(f"{filename}: unchanged", file=sys.stderr)
        else:
            path.write_text(text)
            print(f"wrote tests/golden/{filename}", file=sys.stderr)
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
