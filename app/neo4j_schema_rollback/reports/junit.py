"""A run's Record as JUnit XML: one test suite, one test case per table object and action.

Written by hand, not with xml.etree: the binary leaves the xml package out (its size), and
the few elements here need only escaping."""

from __future__ import annotations

import re
from collections.abc import Sequence

from .. import PROG
from .record import Case, Failure, Record

# XML 1.0 allows neither most control characters nor unpaired surrogates, even escaped: a
# server message holding one would make the whole file unreadable. They are shown as \xNN.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_TEXT = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"}
# In an attribute, a parser folds tabs and line breaks into spaces unless they are references.
_ATTRIBUTE = {**_TEXT, '"': "&quot;", "\n": "&#10;", "\t": "&#9;"}


def _clean(text: str) -> str:
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _escape(text: str, table: dict[str, str]) -> str:
    return "".join(table.get(char, char) for char in _clean(text))


def _open(name: str, attributes: Sequence[tuple[str, str]]) -> str:
    attrs = "".join(f' {key}="{_escape(value, _ATTRIBUTE)}"' for key, value in attributes)
    return f"<{name}{attrs}>"


def _tag(name: str, attributes: Sequence[tuple[str, str]], body: str | None = None) -> str:
    start = _open(name, attributes)
    return start[:-1] + "/>" if body is None else f"{start}{body}</{name}>"


def _seconds(ms: float | None) -> str:
    return f"{(ms or 0) / 1000:.4f}"  # the log gives 0.1 ms


def render(record: Record) -> bytes:
    """The JUnit XML document (UTF-8) of one run."""
    cases = [_case(record, case) for case in record.cases]
    run_failure = record.run_failure
    if run_failure is not None:
        cases.append(_run_case(record, run_failure))
    verdicts = [case.verdict for case in record.cases] + (["error"] if run_failure else [])
    counts = [("tests", str(len(cases))), ("failures", str(verdicts.count("failure"))),
              ("errors", str(verdicts.count("error")))]
    time = _seconds(record.duration_ms)
    suite = [("name", f"{PROG} {record.command}".strip()), *counts,
             ("skipped", str(verdicts.count("skip"))), ("time", time)]
    if record.started_at:
        suite.append(("timestamp", record.started_at))
    properties = [f"      {_tag('property', [('name', name), ('value', value)])}"
                  for name, value in record.properties.items()]
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        _open("testsuites", [("name", PROG), ("time", time), *counts]),
        "  " + _open("testsuite", suite),
        "    <properties>", *properties, "    </properties>",
        *("    " + case for case in cases),
        "  </testsuite>",
        "</testsuites>",
    ]
    return ("\n".join(lines) + "\n").encode("utf-8")


def _case(record: Record, case: Case) -> str:
    attributes = [("classname", f"{PROG}.{record.command}.{case.action}"), ("name", case.name),
                  ("time", _seconds(case.duration_ms))]
    detail = case.detail or case.outcome
    if case.verdict == "skip":
        return _tag("testcase", attributes,
                    _tag("skipped", [("message", f"{case.outcome}: {detail}")]))
    if case.verdict not in ("failure", "error"):
        return _tag("testcase", attributes)
    failure = case.failure
    kind = (failure.type if failure else None) or case.outcome
    if case.verdict == "error":
        kind, detail = "not_done", f"not done: {detail}"
    body = _body(case.outcome, case.cypher, failure, detail)
    return _tag("testcase", attributes,
                _tag(case.verdict, [("type", kind), ("message", detail)], body))


def _run_case(record: Record, failure: Failure) -> str:
    attributes = [("classname", f"{PROG}.{record.command}"), ("name", "run"),
                  ("time", _seconds(record.duration_ms))]
    kind = failure.type or record.outcome or "error"
    body = _body(record.outcome or "error", None, failure, failure.message)
    return _tag("testcase", attributes,
                _tag("error", [("type", kind), ("message", failure.message)], body))


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
    return _escape("\n".join(lines) + "\n", _TEXT)
