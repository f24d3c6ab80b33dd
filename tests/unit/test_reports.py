"""The reports (JUnit XML, GitHub workflow commands and summary, termination message) as sinks
of a run's events: exact texts, hostile names and messages, the JUnit file read by junitparser
and validated against Jenkins' published JUnit schema, atomic writes, and the spec parsing."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import junitparser
import pytest
import xmlschema

from neo4j_schema_rollback import reports
from neo4j_schema_rollback.errors import UsageError
from neo4j_schema_rollback.reports import Reports, Target, github, junit, termination
from neo4j_schema_rollback.reports.record import VERDICTS, Event, fold

ROOT = Path(__file__).resolve().parents[2]
JUNIT_XSD = xmlschema.XMLSchema(str(ROOT / "tests" / "schemas" / "junit-10.xsd"))
IDENTITY = {"tool_version": "0.1.0", "run_id": "r-1"}
HOSTILE = "a<b&c>d%25e::f\ng\r|h]]>`*_[x](y) $z$ ~s~ \x1b[31m"


def start(command: str = "rollback", **extra: Any) -> list[Event]:
    return [("run.start", "info", {"command": command, "table": "t", "to": 0,
                                   "target": "bolt://h:7687", "database": None,
                                   "dry_run": False, **extra}),
            ("server", "info", {"agent": "Neo4j/5.26.30", "version": "5.26.30",
                                "edition": "community", "dialect": "neo4j-5"})]


def statement(obj: str, outcome: str, *, action: str = "drop", level: str = "info",
              **fields: Any) -> Event:
    return ("statement", level, {"action": action, "object": obj, "kind": "range_index",
                                 "cypher": f"DROP INDEX {obj} IF EXISTS", "outcome": outcome,
                                 **fields})


def end(outcome: str, code: int, **fields: Any) -> Event:
    counts = {"applied": 1, "skipped": 1, "planned": 0, "refused": 1, "failed": 1}
    return ("run.end", "info" if code == 0 else "error",
            {"outcome": outcome, "exit_code": code, "counts": counts, "duration_ms": 1234.5,
             **fields})


FAILED = statement("b_idx", "failed", level="error", duration_ms=5.0,
                   error={"code": "Neo.ClientError.Schema.X", "gql_status": None,
                          "message": "drop b_idx: it broke"})
MIXED = [*start(), statement("a_idx", "applied", duration_ms=12.5),
         statement("c_idx", "skipped", reason="absent"),
         statement("d_idx", "refused", level="warning", reason="same name, other definition"),
         FAILED,
         statement("e_idx", "skipped", reason="not sent: an earlier statement failed"),
         ("error", "error", {"message": "drop b_idx failed: it broke",
                             "code": "Neo.ClientError.Schema.X", "exit_code": 1}),
         end("failed", 1, done=["a_idx"], not_done=["b_idx", "e_idx"])]


def record(events: list[Event]) -> Any:
    return fold(events, started_at="2026-12-02T17:00:00", identity=IDENTITY)


def parsed(events: list[Event]) -> junitparser.JUnitXml:
    """The JUnit document of `events`, valid against the schema, read back by junitparser."""
    document = junit.render(record(events))
    JUNIT_XSD.validate(ET.fromstring(document))
    return junitparser.JUnitXml.fromstring(document)


def test_every_statement_outcome_of_the_event_schema_has_a_verdict() -> None:
    """Each outcome the event schema allows maps to pass, skip or failure: a new outcome
    without a line in VERDICTS fails here."""
    schema = json.loads((ROOT / "docs" / "events.schema.json").read_text())
    outcomes = schema["$defs"]["statement"]["properties"]["outcome"]["enum"]
    assert set(outcomes) <= set(VERDICTS)
    assert {VERDICTS[o] for o in outcomes} <= {"pass", "skip", "failure"}


def test_junit_one_case_per_object_with_verdicts_and_properties() -> None:
    """Applied passes, skipped skips, refused and failed fail (with statement, code and
    message), an object left undone after a failure is an error; properties name the run."""
    xml = parsed(MIXED)
    [suite] = list(xml)
    assert (suite.name, suite.tests, suite.failures, suite.errors, suite.skipped) == (
        "neo4j-schema-rollback rollback", 5, 2, 1, 1)
    assert suite.time == 1.2345
    assert {p.name: p.value for p in suite.properties()} == {
        "tool_version": "0.1.0", "run_id": "r-1", "command": "rollback", "table": "t",
        "to": "0", "target": "bolt://h:7687", "dry_run": "false",
        "server_agent": "Neo4j/5.26.30", "server_version": "5.26.30",
        "server_edition": "community", "dialect": "neo4j-5", "outcome": "failed",
        "exit_code": "1"}
    cases = {case.name: case for case in suite}
    assert list(cases) == ["a_idx", "c_idx", "d_idx", "b_idx", "e_idx"]
    assert cases["a_idx"].is_passed and cases["a_idx"].time == 0.0125
    assert cases["a_idx"].classname == "neo4j-schema-rollback.rollback.drop"
    [skipped] = cases["c_idx"].result
    assert isinstance(skipped, junitparser.Skipped) and skipped.message == "skipped: absent"
    [refused] = cases["d_idx"].result
    assert isinstance(refused, junitparser.Failure)
    assert (refused.type, refused.message) == ("refused", "same name, other definition")
    [failed] = cases["b_idx"].result
    assert isinstance(failed, junitparser.Failure)
    assert (failed.type, failed.message) == ("Neo.ClientError.Schema.X", "drop b_idx: it broke")
    assert failed.text == ("outcome: failed\nstatement: DROP INDEX b_idx IF EXISTS\n"
                           "code: Neo.ClientError.Schema.X\nmessage: drop b_idx: it broke\n")
    [undone] = cases["e_idx"].result
    assert isinstance(undone, junitparser.Error)
    assert (undone.type, undone.message) == (
        "not_done", "not done: not sent: an earlier statement failed")


def test_junit_uses_error_class_and_gql_status_when_the_events_carry_them() -> None:
    """A failed statement with error_class and gql_status fields: the class is the failure's
    type, and every code is in its text."""
    events = [*start(), statement("b_idx", "failed", level="error", error_class="schema",
                                  error={"code": "Neo.X", "gql_status": "50N42",
                                         "gql_status_description": "general error",
                                         "message": "m"}), end("failed", 1)]
    [failure] = next(iter(next(iter(parsed(events))))).result
    assert failure.type == "schema"
    assert failure.text == ("outcome: failed\nstatement: DROP INDEX b_idx IF EXISTS\n"
                            "code: Neo.X\ngql_status: 50N42\ngql_status_description: general "
                            "error\nerror_class: schema\nmessage: m\n")


def test_junit_run_failure_before_any_object_is_one_error_case() -> None:
    """A run that fails before its statements (unreachable, login) has one `run` case whose
    error carries the message and code."""
    events = [start("apply")[0],
              ("error", "error", {"message": "authentication failed", "exit_code": 3,
                                  "code": "Neo.ClientError.Security.Unauthorized"}),
              end("connection_error", 3)]
    [suite] = list(parsed(events))
    [case] = list(suite)
    assert (case.classname, case.name) == ("neo4j-schema-rollback.apply", "run")
    [error] = case.result
    assert isinstance(error, junitparser.Error)
    assert (error.type, error.message) == ("Neo.ClientError.Security.Unauthorized",
                                           "authentication failed")


def test_status_drift_is_a_failure_per_drifting_object() -> None:
    """`status --expect`: each object event that is not good (warning) fails its case."""
    events = [*start("status"),
              ("object", "info", {"object": "a_idx", "state": "present", "detail": "present"}),
              ("object", "warning", {"object": "b_idx", "state": "absent", "detail": "absent"}),
              end("refused", 4)]
    cases = {case.name: case for case in next(iter(parsed(events)))}
    assert cases["a_idx"].is_passed
    [drift] = cases["b_idx"].result
    assert (drift.type, drift.message) == ("absent", "absent")
    assert cases["b_idx"].classname == "neo4j-schema-rollback.status.status"


def test_a_failed_verification_fails_the_objects_case() -> None:
    """After apply, an object the verification finds wrong fails its create case."""
    events = [*start("apply"), statement("a_idx", "applied", action="create"),
              ("object", "warning", {"object": "a_idx", "state": "mismatch",
                                     "detail": "other definition", "live": "RANGE index x"}),
              end("refused", 4)]
    [case] = list(next(iter(parsed(events))))
    [failure] = case.result
    assert failure.message == "verification: other definition (live: RANGE index x)"


def test_interrupted_run_makes_the_unfinished_objects_errors() -> None:
    """Interrupted: what was not sent is an error, the run's interrupt one more error case."""
    events = [*start(), statement("a_idx", "applied"),
              statement("b_idx", "skipped", reason="not sent: the run was interrupted"),
              ("error", "error", {"message": "interrupted by SIGTERM", "exit_code": 143}),
              end("interrupted", 143, done=["a_idx"], not_done=["b_idx"])]
    [suite] = list(parsed(events))
    assert (suite.tests, suite.errors, suite.failures) == (3, 2, 0)
    names = [(case.name, type(case.result[0]).__name__ if case.result else "pass")
             for case in suite]
    assert names == [("a_idx", "pass"), ("b_idx", "Error"), ("run", "Error")]


@pytest.mark.parametrize("where", ["object", "message", "cypher", "property"])
def test_hostile_text_cannot_break_the_xml(where: str) -> None:
    """<, &, ]]>, %, ::, newlines, | and control characters in a name, message, statement or
    property: the file stays valid, and junitparser reads the text back (controls as \\xNN)."""
    obj = HOSTILE if where == "object" else "a_idx"
    fields: dict[str, Any] = {"error": {"code": "C", "message": HOSTILE if where == "message"
                                        else "m"}}
    if where == "cypher":
        fields["cypher"] = HOSTILE
    events = [*start(database=HOSTILE if where == "property" else None),
              statement(obj, "failed", level="error", **fields), end("failed", 1)]
    [suite] = list(parsed(events))
    [case] = list(suite)
    shown = HOSTILE.replace("\x1b", "\\x1b")
    if where == "object":
        assert case.name == shown
    elif where == "message":
        assert case.result[0].message == shown
    elif where == "cypher":
        assert f"statement: {shown}\n" in case.result[0].text
    else:
        assert {p.name: p.value for p in suite.properties()}["database"] == shown


def test_workflow_commands_exact() -> None:
    """One ::warning per refusal, one ::error per failure, the run's own error not repeated."""
    assert github.workflow_commands(record(MIXED)) == [
        "::warning title=neo4j-schema-rollback rollback%3A drop d_idx refused::"
        "same name, other definition%0ADROP INDEX d_idx IF EXISTS",
        "::error title=neo4j-schema-rollback rollback%3A drop b_idx failed::"
        "drop b_idx: it broke%0ANeo.ClientError.Schema.X%0ADROP INDEX b_idx IF EXISTS",
    ]


def test_workflow_command_for_a_run_that_failed_before_its_objects() -> None:
    """A connection failure is one ::error naming the outcome, its code on a second line."""
    events = [start("apply")[0],
              ("error", "error", {"message": "cannot connect, at all", "code": "X",
                                  "exit_code": 3}), end("connection_error", 3)]
    assert github.workflow_commands(record(events)) == [
        "::error title=neo4j-schema-rollback apply%3A connection_error::"
        "cannot connect, at all%0AX"]


def test_hostile_text_stays_inside_one_workflow_command() -> None:
    """A name and message with %, ::, newlines and commas: one line per command, and the
    runner's unescaping gives the original text back."""
    events = [*start(), statement(HOSTILE, "failed", level="error",
                                  error={"code": "C", "message": HOSTILE}), end("failed", 1)]
    [line] = github.workflow_commands(record(events))
    assert "\n" not in line and "\r" not in line
    head, message = line.split("::", 2)[1:]
    assert head.startswith("error title=") and ":" not in head and "," not in head

    def unescape(text: str) -> str:
        for code, char in (("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ","),
                           ("%25", "%")):
            text = text.replace(code, char)
        return text

    assert unescape(head.removeprefix("error title=")).endswith(f"drop {HOSTILE} failed")
    assert unescape(message) == f"{HOSTILE}\nC\nDROP INDEX {HOSTILE} IF EXISTS"


def test_summary_exact() -> None:
    """The job summary: heading, one row per case, counts, server, target, run, error."""
    assert github.summary(record(MIXED)) == (
        "### neo4j-schema-rollback rollback: failed (exit code 1)\n"
        "\n"
        "| object | action | outcome | result | time (ms) | detail |\n"
        "|---|---|---|---|---:|---|\n"
        "| a\\_idx | drop | applied | pass | 12.5 |  |\n"
        "| c\\_idx | drop | skipped | skip |  | absent |\n"
        "| d\\_idx | drop | refused | failure |  | same name, other definition |\n"
        "| b\\_idx | drop | failed | failure | 5 | drop b\\_idx: it broke |\n"
        "| e\\_idx | drop | skipped | error |  | not sent: an earlier statement failed |\n"
        "\n"
        "Statements: applied 1, skipped 1, planned 0, refused 1, failed 1. Server: Neo4j "
        "5.26.30 community (neo4j-5). Target: bolt://h:7687 (the home database). Run r-1, "
        "neo4j-schema-rollback 0.1.0.\n"
        "\n"
        "**Error:** drop b\\_idx failed: it broke (Neo.ClientError.Schema.X)\n\n")


def test_hostile_text_cannot_break_the_markdown_table() -> None:
    """A row keeps its six cells whatever the name and message hold: no unescaped |, no line
    break, no HTML or entity, no code span."""
    events = [*start(), statement(HOSTILE, "failed", level="error",
                                  error={"code": "C", "message": HOSTILE}), end("failed", 1)]
    text = github.summary(record(events))
    [row] = [line for line in text.splitlines() if line.startswith("| a")]
    cells = row.replace("\\|", "").split("|")
    assert len(cells) == 8  # six cells between seven pipes, and the empty ends
    assert github.cell(HOSTILE) == (
        "a&lt;b&amp;c>d%25e::f g \\|h\\]\\]>\\`\\*\\_\\[x\\](y) \\$z\\$ \\~s\\~ \x1b\\[31m")
    assert "<" not in text and "&b" not in text


def test_termination_message_exact() -> None:
    """Outcome and exit code, counts, the first error with its code, the run id."""
    assert termination.render(record(MIXED)) == (
        b"neo4j-schema-rollback rollback: failed (exit code 1)\n"
        b"statements: applied 1, skipped 1, planned 0, refused 1, failed 1\n"
        b"first error: drop b_idx failed: it broke [Neo.ClientError.Schema.X]\n"
        b"run id: r-1\n")


def test_termination_message_of_a_refusal_names_the_first_refused_object() -> None:
    """No error event (exit 4): the first refused object is the first error."""
    events = [*start(), statement("d_idx", "refused", level="warning", reason="differs"),
              end("refused", 4)]
    assert b"first error: drop d_idx refused: differs\n" in termination.render(record(events))


def test_termination_message_fits_kubernetes_limit_on_a_character_boundary() -> None:
    """A huge multi-byte message is cut to 4096 bytes, still valid UTF-8, ending in '…'."""
    events = [start()[0], ("error", "error", {"message": "ü" * 5000, "exit_code": 1}),
              end("failed", 1)]
    data = termination.render(record(events))
    assert len(data) <= 4096 and len(data) > 4090
    assert data.decode("utf-8").endswith("…\n")


def test_atomic_write_leaves_the_old_file_or_the_new_one(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that fails midway leaves the previous report whole and no temporary file."""
    path = tmp_path / "junit.xml"
    path.write_bytes(b"old")

    def broken(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(OSError):
        reports.write_atomically(str(path), b"new")
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junit.xml"]
    monkeypatch.undo()
    reports.write_atomically(str(path), b"new")
    assert path.read_bytes() == b"new"


def test_reports_write_every_target_and_say_which_could_not(tmp_path: Path) -> None:
    """One Reports writes JUnit, annotations (stderr), the summary (appended) and the
    termination message; an unwritable one is a problem line, the others are still written."""
    summary = tmp_path / "summary.md"
    summary.write_text("before\n")
    stderr = io.StringIO()
    chosen = [Target("junit", str(tmp_path / "j.xml")), Target("github"),
              Target("termination", str(tmp_path / "none" / "log")),
              Target("termination", str(tmp_path / "log"))]
    sink = Reports(chosen, stderr=stderr, env={"GITHUB_STEP_SUMMARY": str(summary)},
                   identity=IDENTITY)
    for name, level, fields in MIXED:
        sink.consume(name, level, fields)
    problems = sink.write()
    assert problems == [f"cannot write the termination report {tmp_path}/none/log: "
                        "No such file or directory"]
    assert (tmp_path / "j.xml").read_bytes().startswith(b"<?xml")
    assert stderr.getvalue().splitlines() == github.workflow_commands(record(MIXED))
    assert summary.read_text().startswith("before\n### neo4j-schema-rollback rollback")
    assert (tmp_path / "log").read_bytes().startswith(b"neo4j-schema-rollback rollback")


def test_a_second_signal_while_writing_leaves_that_report_out(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Interrupted while the JUnit file is written: no file, no temporary file, a problem line;
    the next report is still written."""
    from neo4j_schema_rollback.errors import Interrupted

    def stopped(fd: int) -> None:
        raise Interrupted("SIGTERM")

    monkeypatch.setattr(os, "fsync", stopped)
    chosen = [Target("junit", str(tmp_path / "j.xml")), Target("termination",
                                                                 str(tmp_path / "log"))]
    sink = Reports(chosen, stderr=io.StringIO(), env={}, identity=IDENTITY)
    for name, level, fields in MIXED:
        sink.consume(name, level, fields)
    assert sink.write() == [f"the junit report {tmp_path}/j.xml was not written: "
                            "interrupted by SIGTERM"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log"]


def test_targets_from_flags_environment_and_automatic(tmp_path: Path) -> None:
    """--report beats NEO4J_REPORT; GitHub Actions adds github; a writable termination log
    adds termination; `none` turns the automatic ones off."""
    log = tmp_path / "termination-log"
    log.touch()
    j = str(tmp_path / "j.xml")
    env = {"NEO4J_REPORT": f"junit={j}, github", "NEO4J_TERMINATION_LOG": str(tmp_path / "x")}
    assert reports.targets((), env) == [Target("junit", j), Target("github")]
    assert reports.targets(("termination=/t",), env) == [Target("termination", "/t")]
    auto = {"GITHUB_ACTIONS": "true", "NEO4J_TERMINATION_LOG": str(log)}
    assert reports.targets((), auto) == [Target("github"), Target("termination", str(log))]
    assert reports.targets(("none",), auto) == []
    assert reports.targets(("github", "none"), auto) == [Target("github")]


@pytest.mark.parametrize(("spec", "message"), [
    ("junit", "--report: 'junit' is not a report"),
    ("junit=", "--report: 'junit=' is not a report"),
    ("html=x", "--report: 'html=x' is not a report"),
    ("github=x", "--report: 'github=x' is not a report"),
    ("junit=/no/such/folder/j.xml", "--report: folder '/no/such/folder' of "
     "'/no/such/folder/j.xml' does not exist"),
])
def test_bad_report_specs_are_usage_errors(spec: str, message: str) -> None:
    """A report that cannot be written is refused before the run starts."""
    with pytest.raises(UsageError) as caught:
        reports.targets((spec,), {})
    assert caught.value.message == message


def _without_clock(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in e.items() if k not in ("timestamp", "run_id", "duration_ms")}
            for e in events]


def test_a_run_with_reports_logs_exactly_the_events_of_one_without(tmp_path: Path) -> None:
    """The reports only listen: a dry rollback over a captured catalog logs the same events
    with every report on as with none, and its JUnit file holds the five planned and
    skipped drops."""
    from test_commands import Captured, execute

    from neo4j_schema_rollback import commands

    plain = execute(commands.rollback, Captured("catalog-5.json"), dry_run=True)
    summary = tmp_path / "summary.md"
    env = {"NEO4J_REPORT": f"junit={tmp_path / 'j.xml'}", "GITHUB_ACTIONS": "true",
           "GITHUB_STEP_SUMMARY": str(summary)}
    reported = execute(commands.rollback, Captured("catalog-5.json"), dry_run=True, env=env)
    assert _without_clock(reported.events) == _without_clock(plain.events)
    assert reported.stderr == plain.stderr == ""
    [suite] = list(junitparser.JUnitXml.fromfile(str(tmp_path / "j.xml")))
    assert [(case.name, case.result[0].message) for case in suite] == [
        ("compute_buffering_since", "skipped: absent"), ("queue_interval", "skipped: absent"),
        ("compute_tags", "skipped: absent"), ("kafka_topic", "planned: dry run: not sent"),
        ("compute_pk", "planned: dry run: not sent")]
    assert summary.read_text().startswith("### neo4j-schema-rollback rollback: success")


def test_a_bad_report_is_a_usage_error_that_the_other_reports_still_tell(
        tmp_path: Path) -> None:
    """NEO4J_REPORT=html=x: exit 2 before anything is read, and the automatic GitHub report
    says so."""
    from test_commands import Captured, execute

    from neo4j_schema_rollback import commands

    summary = tmp_path / "summary.md"
    r = execute(commands.status, Captured("catalog-5.json"),
                env={"NEO4J_REPORT": "html=x", "GITHUB_ACTIONS": "true",
                     "GITHUB_STEP_SUMMARY": str(summary)})
    assert r.code == 2
    [error] = r.of("error")
    assert error["message"] == ("NEO4J_REPORT: 'html=x' is not a report — use junit=PATH, "
                                "github, termination, termination=PATH or none")
    assert [e["event"] for e in r.events] == ["error", "run.end"]
    assert r.stderr.splitlines()[-1] == (
        "::error title=neo4j-schema-rollback status%3A usage_error::" + error["message"]
        + "%0Ausage")
    assert summary.read_text().startswith("### neo4j-schema-rollback status: usage\\_error")


@pytest.mark.parametrize(("args", "env", "loaded"), [
    ((), {}, False),
    (("--report", "none"), {"GITHUB_ACTIONS": "true"}, False),
    (("--report", "junit=REPORT"), {}, True),
    ((), {"GITHUB_ACTIONS": "true"}, True),
])
def test_the_reports_are_imported_only_by_a_run_that_writes_one(
        tmp_path: Path, args: tuple[str, ...], env: dict[str, str], loaded: bool) -> None:
    """A connected run that writes no report imports no report module; the JUnit one is
    imported by a run that writes JUnit only, and xml never (the binary leaves it out)."""
    code = ("import sys, runpy; sys.argv = ['x', *sys.argv[1:]]\n"
            "try:\n    runpy.run_module('neo4j_schema_rollback', run_name='__main__')\n"
            "except SystemExit: pass\n"
            "print(' '.join(sorted(sys.modules)), file=sys.stderr)")
    argv = [a.replace("REPORT", str(tmp_path / "j.xml")) for a in args]
    clean = {k: v for k, v in os.environ.items()
             if k not in ("GITHUB_ACTIONS", "NEO4J_REPORT", "NEO4J_TERMINATION_LOG")}
    r = subprocess.run([sys.executable, "-c", code, "status", "--uri", "bolt://127.0.0.1:9",
                        "--password", "x", *argv],
                       capture_output=True, text=True, check=False,
                       env={**clean, "NEO4J_TERMINATION_LOG": str(tmp_path / "absent"), **env})
    modules = set(r.stderr.split("\n")[-2].split())
    assert ("neo4j_schema_rollback.reports" in modules) is loaded
    assert ("neo4j_schema_rollback.reports.junit" in modules) is ("junit=REPORT" in args)
    assert "xml" not in {name.split(".")[0] for name in modules}  # the binary has none
