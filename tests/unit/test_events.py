"""The event log: field order, timestamps, formats, and the JSON Schema."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import jsonschema
import pytest

from neo4j_schema_rollback import events

SCHEMA = json.loads((Path(__file__).parents[2] / "docs" / "events.schema.json").read_text())
RUN_ID = "0b6f7a4e-3f8c-4b71-9d6e-2a1f5c3e8d90"


def log_to(stream: io.StringIO, fmt: str = "json") -> events.EventLog:
    return events.EventLog(stream, format=fmt, run_id=RUN_ID,  # type: ignore[arg-type]
                           tool_version="0.1.0")


def test_json_line_has_the_common_fields_first() -> None:
    """Every line starts with timestamp, level, event, run_id, tool_version."""
    out = io.StringIO()
    log_to(out).emit(events.WARNING, level="warning", message="careful")
    line = json.loads(out.getvalue())
    assert list(line)[:5] == ["timestamp", "level", "event", "run_id", "tool_version"]
    assert (line["level"], line["event"], line["message"]) == ("warning", "warning", "careful")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["timestamp"])


def test_none_fields_are_left_out() -> None:
    """Fields that are None do not appear; empty lists do."""
    out = io.StringIO()
    log_to(out).emit(events.RUN_END, outcome="success", exit_code=0, done=[], reason=None,
                     counts={}, duration_ms=1.0)
    line = json.loads(out.getvalue())
    assert "reason" not in line
    assert line["done"] == []


def test_console_format_is_one_readable_line() -> None:
    """Console mode writes time, level, event and key=value pairs."""
    out = io.StringIO()
    log_to(out, "console").emit(events.STATEMENT, action="drop", cypher="DROP INDEX x IF EXISTS",
                                outcome="applied")
    text = out.getvalue()
    assert text.count("\n") == 1
    assert re.match(r"\d\d:\d\d:\d\d info    statement       action=drop "
                    r'cypher="DROP INDEX x IF EXISTS" outcome=applied$', text.strip())
    assert RUN_ID not in text


@pytest.mark.parametrize(("requested", "tty", "chosen"), [
    ("auto", True, "console"), ("auto", False, "json"), ("json", True, "json"),
    ("console", False, "console"),
])
def test_choose_format(requested: events.LogFormat, tty: bool, chosen: str) -> None:
    """auto means console on a terminal, JSON otherwise; explicit choices win."""
    class Stream(io.StringIO):
        def isatty(self) -> bool:
            return tty

    assert events.choose_format(requested, Stream()) == chosen


def test_statement_event_matches_schema() -> None:
    """A statement event as the connection writes it is valid against the schema."""
    out = io.StringIO()
    log_to(out).emit(events.STATEMENT, action="create", object="kafka_topic", kind="range_index",
                     cypher="CREATE INDEX kafka_topic IF NOT EXISTS FOR (q:Queue) ON (q.topic)",
                     outcome="applied", duration_ms=12.5, counters={"indexes_added": 1})
    jsonschema.validate(json.loads(out.getvalue()), SCHEMA)


@pytest.mark.parametrize("bad", [
    {"event": "statement", "action": "create", "cypher": "X", "outcome": "failed",
     "object": "a", "kind": "range_index"},
    {"event": "statement", "action": "truncate", "cypher": "X", "outcome": "applied"},
    {"event": "run.start", "command": "apply", "table": "t", "table_versions": [1, 2],
     "target": "bolt://neo4j:secret@h", "dry_run": False},
    {"event": "mystery"},
])
def test_schema_rejects_broken_events(bad: dict[str, object]) -> None:
    """A failed statement without its error, an unknown action, credentials in a target
    and unknown events are all invalid."""
    line = {"timestamp": "2026-11-26T22:05:23.123Z", "level": "info", "run_id": RUN_ID,
            "tool_version": "0.1.0", **bad}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(line, SCHEMA)


def test_importing_structlog_keeps_rich_out() -> None:
    """Opening the log does not import rich, even though cyclopts brings it along."""
    import subprocess
    import sys

    code = ("import io, sys; from neo4j_schema_rollback import events\n"
            "events.EventLog(io.StringIO(), format='json', run_id='x', tool_version='0')\n"
            "print('rich' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "False"
