"""A run's Record as JUnit XML: one test suite, one test case per table object and action."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from .. import PROG
from .record import Case, Failure, Record

# XML 1.0 allows neither most control characters nor unpaired surrogates, even escaped: a
# server message holding one would make the whole file unreadable. They are shown as \xNN.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _clean(text: str) -> str:
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _seconds(ms: float | None) -> str:
    return f"{(ms or 0) / 1000:.4f}"  # the log gives 0.1 ms


def render(record: Record) -> bytes:
    """The JUnit XML document (UTF-8) of one run."""
    cases = [_case(record, case) for case in record.cases]
    run_failure = record.run_failure
    if run_failure is not None:
        cases.append(_run_case(record, run_failure))
    verdicts = [case.verdict for case in record.cases] + (["error"] if run_failure else [])
    counts = {
        "tests": str(len(cases)),
        "failures": str(verdicts.count("failure")),
        "errors": str(verdicts.count("error")),
    }
    suites = ET.Element("testsuites", {"name": PROG, "time": _seconds(record.duration_ms),
                                       **counts})
    suite = ET.SubElement(suites, "testsuite", {
        "name": f"{PROG} {record.command}".strip(), **counts,
        "skipped": str(verdicts.count("skip")), "time": _seconds(record.duration_ms)})
    if record.started_at:
        suite.set("timestamp", record.started_at)
    properties = ET.SubElement(suite, "properties")
    for name, value in record.properties.items():
        ET.SubElement(properties, "property", name=name, value=_clean(value))
    suite.extend(cases)
    ET.indent(suites)
    document: bytes = ET.tostring(suites, encoding="UTF-8", xml_declaration=True)
    return document + b"\n"


def _case(record: Record, case: Case) -> ET.Element:
    element = ET.Element("testcase", classname=f"{PROG}.{record.command}.{case.action}",
                         name=_clean(case.name), time=_seconds(case.duration_ms))
    detail = _clean(case.detail or case.outcome)
    if case.verdict == "skip":
        ET.SubElement(element, "skipped", message=f"{case.outcome}: {detail}")
    elif case.verdict in ("failure", "error"):
        failure = case.failure
        kind = (failure.type if failure else None) or case.outcome
        if case.verdict == "error":
            kind, detail = "not_done", f"not done: {detail}"
        child = ET.SubElement(element, case.verdict, type=_clean(kind), message=detail)
        child.text = _body(case.outcome, case.cypher, failure, detail)
    return element


def _run_case(record: Record, failure: Failure) -> ET.Element:
    element = ET.Element("testcase", classname=f"{PROG}.{record.command}", name="run",
                         time=_seconds(record.duration_ms))
    child = ET.SubElement(element, "error", type=_clean(failure.type or record.outcome or "error"),
                          message=_clean(failure.message))
    child.text = _body(record.outcome or "error", None, failure, failure.message)
    return element


def _body(outcome: str, cypher: str | None, failure: Failure | None, detail: str) -> str:
    lines = [f"outcome: {outcome}"]
    if cypher:
        lines.append(f"statement: {cypher}")
    if failure is not None:
        for label, value in (("code", failure.code), ("gql_status", failure.gql_status),
                             ("gql_status_description", failure.gql_status_description),
                             ("error_class", failure.error_class)):
            if value:
                lines.append(f"{label}: {value}")
        lines.append(f"message: {failure.message}")
    else:
        lines.append(f"reason: {detail}")
    return _clean("\n".join(lines)) + "\n"
