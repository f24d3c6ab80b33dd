"""The reports of real runs on every line: success, refusal, statement failure, drift,
interrupt, unreachable server, failed login. Each run writes all three (JUnit by --report or
NEO4J_REPORT; GitHub's and the termination message as they turn on by themselves); the JUnit
file is validated against Jenkins' published JUnit schema and read by junitparser, the
workflow commands, the summary and the termination message are compared exactly (with what
the log says where the server's words or timings go), and stdout stays the JSON stream."""

from __future__ import annotations

import signal
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import junitparser
import pytest
import xmlschema
from db import cypher, env_for, names
from netutil import Forwarder, free_port
from tool import ROOT, Result, Tool, finish

JUNIT_XSD = xmlschema.XMLSchema(str(ROOT / "tests" / "schemas" / "junit-10.xsd"))
PROG = "neo4j-schema-rollback"
NEWEST_FIRST = ["compute_buffering_since", "queue_interval", "compute_tags", "kafka_topic",
                "compute_pk"]
OLDEST_FIRST = NEWEST_FIRST[::-1]


@dataclass
class Reported:
    """A finished run and the reports it wrote."""

    run: Result
    junit: junitparser.TestSuite
    commands: list[str]
    summary: str
    termination: str

    def cases(self) -> dict[str, junitparser.TestCase]:
        return {case.name: case for case in self.junit}

    def results(self) -> dict[str, str]:
        """case name -> pass, Skipped, Failure or Error."""
        return {case.name: type(case.result[0]).__name__ if case.result else "pass"
                for case in self.junit}


class Reports:
    """Where a run's reports go, and how to read them back."""

    def __init__(self, folder: Path, *, by_env: bool = False) -> None:
        self.folder = folder
        self.by_env = by_env
        self.junit = folder / "report.xml"
        self.summary = folder / "summary.md"
        self.termination = folder / "termination-log"

    def env(self) -> dict[str, str]:
        self.termination.write_text("")  # exists and writable: the report turns on
        self.summary.write_text("")
        env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(self.summary),
               "NEO4J_TERMINATION_LOG": str(self.termination)}
        if self.by_env:
            env["NEO4J_REPORT"] = f"junit={self.junit}"
        return env

    def args(self) -> tuple[str, ...]:
        return () if self.by_env else ("--report", f"junit={self.junit}")

    def read(self, run: Result) -> Reported:
        document = self.junit.read_bytes()
        JUNIT_XSD.validate(ET.fromstring(document))
        [suite] = list(junitparser.JUnitXml.fromstring(document))
        assert not any(line.startswith("::") for line in run.stdout.splitlines())
        commands = [line for line in run.stderr.splitlines() if line.startswith("::")]
        assert sorted(p.name for p in self.folder.iterdir()) == [
            "report.xml", "summary.md", "termination-log"], "a temporary file was left"
        return Reported(run, suite, commands, self.summary.read_text(),
                        self.termination.read_text())


@pytest.fixture(params=["flag", "env"])
def reports(request: pytest.FixtureRequest, tmp_path: Path) -> Reports:
    return Reports(tmp_path, by_env=request.param == "env")


def go(tool: Tool, server: Any, reports: Reports, *args: str,
       env: dict[str, str] | None = None) -> Reported:
    r = tool.run(*args, *reports.args(), "--log-format", "json",
                 env={**env_for(server), **reports.env(), **(env or {})},
                 secrets=(server.password,))
    return reports.read(r)


def esc(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def counts(r: Result) -> str:
    return ", ".join(f"{name} {value}" for name, value in r.end["counts"].items())


def termination(r: Result, command: str, first_error: str | None = None) -> str:
    lines = [f"{PROG} {command}: {r.end['outcome']} (exit code {r.end['exit_code']})",
             f"statements: {counts(r)}"]
    if first_error:
        lines.append(f"first error: {first_error}")
    return "\n".join([*lines, f"run id: {r.events[0]['run_id']}"]) + "\n"


def footer(r: Result, server: Any) -> str:
    [srv] = r.of("server")
    return (f"Statements: {counts(r)}. Server: Neo4j {srv['version'].replace('_', chr(92) + '_')}"
            f" {srv['edition']} ({srv['dialect']}). Target: {server.uri} (the home database). "
            f"Run {r.events[0]['run_id']}, {PROG} {r.events[0]['tool_version']}.")


def test_success(tool: Tool, clean_neo4j: Any, reports: Reports) -> None:
    """apply from empty: five passing cases with their times, properties of the server, no
    workflow command, a summary table of five rows, a one-line termination message."""
    rep = go(tool, clean_neo4j, reports, "apply")
    r = rep.run
    assert r.code == 0, r.stdout + r.stderr
    assert rep.results() == dict.fromkeys(OLDEST_FIRST, "pass")
    assert (rep.junit.tests, rep.junit.failures, rep.junit.errors) == (5, 0, 0)
    creates = {e["object"]: e for e in r.table_statements()}
    assert {c.name: c.time for c in rep.junit} == {
        name: round(creates[name]["duration_ms"] / 1000, 4) for name in OLDEST_FIRST}
    [srv] = r.of("server")
    props = {p.name: p.value for p in rep.junit.properties()}
    assert props == {"tool_version": r.events[0]["tool_version"],
                     "run_id": r.events[0]["run_id"], "command": "apply",
                     "table": "qmtl-dagmanager", "to": "2", "target": clean_neo4j.uri,
                     "dry_run": "false", "server_agent": srv["agent"],
                     "server_version": srv["version"], "server_edition": srv["edition"],
                     "dialect": srv["dialect"], "outcome": "success", "exit_code": "0"}
    assert rep.commands == []
    rows = [f"| {name.replace('_', chr(92) + '_')} | create | applied | pass | "
            f"{creates[name]['duration_ms']:g} |  |" for name in OLDEST_FIRST]
    assert rep.summary == "\n".join([
        f"### {PROG} apply: success (exit code 0)", "",
        "| object | action | outcome | result | time (ms) | detail |",
        "|---|---|---|---|---:|---|", *rows, "", footer(r, clean_neo4j)]) + "\n\n"
    assert rep.termination == termination(r, "apply")


def test_refusal(tool: Tool, clean_neo4j: Any, reports: Reports) -> None:
    """rollback where kafka_topic has another definition: its case fails as refused with the
    reason, one ::warning names it, exit 4; the others drop."""
    cypher(clean_neo4j, "CREATE INDEX kafka_topic FOR (q:Queue) ON (q.other)")
    rep = go(tool, clean_neo4j, reports, "rollback", "--yes")
    r = rep.run
    assert r.code == 4, r.stdout + r.stderr
    assert rep.results() == {**dict.fromkeys(NEWEST_FIRST, "Skipped"), "kafka_topic": "Failure"}
    [refused] = r.table_statements("refused")
    [failure] = rep.cases()["kafka_topic"].result
    assert (failure.type, failure.message) == ("refused", refused["reason"])
    assert failure.text == (f"outcome: refused\nstatement: DROP INDEX kafka_topic IF EXISTS\n"
                            f"reason: {refused['reason']}\n")
    assert rep.commands == [
        f"::warning title={PROG} rollback%3A drop kafka_topic refused::"
        f"{esc(refused['reason'])}%0ADROP INDEX kafka_topic IF EXISTS"]
    assert ("| kafka\\_topic | drop | refused | failure |  | "
            f"{refused['reason'].replace('_', chr(92) + '_')} |") in rep.summary.splitlines()
    assert rep.termination == termination(
        r, "rollback", f"drop kafka_topic refused: {refused['reason']}")
    assert names(clean_neo4j) == {"kafka_topic"}


def test_statement_failure(tool: Tool, clean_neo4j: Any, reports: Reports) -> None:
    """apply where someone's index holds compute_pk's label and property (no duplicates, so
    the preflight passes): the constraint's CREATE fails on the server; its case is a failure
    with the statement and the server's code and message, the four not sent are errors, one
    ::error carries the server's words; exit 1."""
    cypher(clean_neo4j, "CREATE INDEX theirs FOR (c:ComputeNode) ON (c.node_id)")
    rep = go(tool, clean_neo4j, reports, "apply")
    r = rep.run
    assert r.code == 1, r.stdout + r.stderr
    [failed] = r.table_statements("failed")
    error = failed["error"]
    assert failed["object"] == "compute_pk"
    assert rep.results() == {**dict.fromkeys(OLDEST_FIRST, "Error"), "compute_pk": "Failure"}
    [failure] = rep.cases()["compute_pk"].result
    assert (failure.type, failure.message) == (failed.get("error_class") or error["code"],
                                               error["message"])
    assert f"statement: {failed['cypher']}\ncode: {error['code']}\n" in failure.text
    assert f"message: {error['message']}\n" in failure.text
    codes = "; ".join(c for c in (error["code"], error.get("gql_status"),
                                  failed.get("error_class")) if c)
    assert rep.commands == [
        f"::error title={PROG} apply%3A create compute_pk failed::"
        f"{esc(error['message'])}%0A{esc(codes)}%0A{esc(failed['cypher'])}"]
    [run_error] = r.of("error")
    run_codes = "; ".join(c for c in (run_error.get("code"), run_error.get("gql_status"),
                                      run_error.get("error_class")) if c)
    assert rep.termination == termination(r, "apply", f"{run_error['message']} [{run_codes}]")
    assert rep.summary.endswith(f"\n**Error:** {_md(run_error['message'])} ({_md(run_codes)})"
                                "\n\n")


def test_drift(tool: Tool, clean_neo4j: Any, reports: Reports) -> None:
    """status --expect applied on an empty database: a failure per drifting object, one
    ::warning each; exit 4."""
    rep = go(tool, clean_neo4j, reports, "status", "--expect", "applied")
    r = rep.run
    assert r.code == 4, r.stdout + r.stderr
    assert rep.results() == dict.fromkeys(OLDEST_FIRST, "Failure")
    assert {c.classname for c in rep.junit} == {f"{PROG}.status.status"}
    assert rep.commands == [f"::warning title={PROG} status%3A status {name} absent::absent"
                            for name in OLDEST_FIRST]
    assert rep.termination == termination(r, "status", "status compute_pk absent: absent")


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt(tool: Tool, clean_neo4j: Any, reports: Reports, signum: int,
                   code: int) -> None:
    """A signal as the first drop goes out: that drop passes, the objects not done are
    errors, the run's interrupt is one more error case and an ::error; the file is whole."""
    env = env_for(clean_neo4j)
    assert tool.run("apply", env=env).code == 0
    procs: list[subprocess.Popen[str]] = []

    def interrupt() -> bool:
        procs[0].send_signal(signum)
        return False

    args = ("rollback", "--yes", *reports.args(), "--log-format", "json")
    hook = _on_first_drop(interrupt)
    with Forwarder(clean_neo4j.port, cut=hook) as forwarder:
        proc = tool.spawn(*args, env={**env, **reports.env(), "NEO4J_URI": forwarder.uri})
        procs.append(proc)
        r = finish(proc, [], args, secrets=(clean_neo4j.password,))
    rep = reports.read(r)
    assert r.code == code, r.stdout + r.stderr
    done, not_done = r.end["done"], r.end["not_done"]
    assert done and not_done
    assert rep.results() == {**dict.fromkeys(done, "pass"), **dict.fromkeys(not_done, "Error"),
                             "run": "Error"}
    name = signal.Signals(signum).name
    [run_case] = rep.cases()["run"].result
    assert run_case.message == f"interrupted by {name}"
    [error] = r.of("error")
    assert error["error_class"] == "interrupted"
    assert rep.commands == [f"::error title={PROG} rollback%3A interrupted::interrupted by "
                            f"{name}%0Ainterrupted"]
    assert rep.termination == termination(r, "rollback", f"interrupted by {name} [interrupted]")


def _on_first_drop(act: Any) -> Any:
    seen = False

    def hook(chunk: bytes) -> bool:
        nonlocal seen
        if not seen and b"DROP " in chunk:
            seen = True
            return bool(act())
        return False

    return hook


def test_unreachable(tool: Tool, clean_neo4j: Any, reports: Reports) -> None:
    """Nothing listens: one `run` error case, one ::error, exit 3; no server properties."""
    uri = f"bolt://127.0.0.1:{free_port()}"
    rep = go(tool, clean_neo4j, reports, "apply", env={"NEO4J_URI": uri})
    r = rep.run
    assert r.code == 3, r.stdout + r.stderr
    [error] = r.of("error")
    assert rep.results() == {"run": "Error"}
    [case] = rep.cases()["run"].result
    assert (case.type, case.message) == ("unreachable", error["message"])
    assert "server_version" not in {p.name for p in rep.junit.properties()}
    assert rep.commands == [f"::error title={PROG} apply%3A connection_error::"
                            f"{esc(error['message'])}%0Aunreachable"]
    assert rep.termination == termination(r, "apply", f"{error['message']} [unreachable]")
    assert rep.summary == "\n".join([
        f"### {PROG} apply: connection\\_error (exit code 3)", "",
        f"Statements: {counts(r)}. Target: {uri} (the home database). "
        f"Run {r.events[0]['run_id']}, {PROG} {r.events[0]['tool_version']}.", "",
        f"**Error:** {_md(error['message'])} (unreachable)"]) + "\n\n"


def _md(text: str) -> str:
    for char in "\\`*_[]|~$":
        text = text.replace(char, "\\" + char)
    return text.replace("&", "&amp;").replace("<", "&lt;")


def test_auth_failure(tool: Tool, clean_neo4j: Any, reports: Reports) -> None:
    """A wrong password: one `run` error case whose type is the server's code, exit 3."""
    rep = go(tool, clean_neo4j, reports, "status", env={"NEO4J_PASSWORD": "wrong-password"})
    r = rep.run
    assert r.code == 3, r.stdout + r.stderr
    [error] = r.of("error")
    assert error["code"] == "Neo.ClientError.Security.Unauthorized"
    [case] = rep.cases()["run"].result
    assert (case.type, case.message) == (error.get("error_class") or error["code"],
                                         error["message"])
    codes = "; ".join(c for c in (error["code"], error.get("gql_status"),
                                  error.get("error_class")) if c)
    assert rep.commands == [f"::error title={PROG} status%3A connection_error::"
                            f"{esc(error['message'])}%0A{esc(codes)}"]
    assert rep.termination == termination(r, "status", f"{error['message']} [{codes}]")
