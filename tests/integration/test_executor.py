"""The executor's own promises on a real server: transaction metadata, timeouts, counters."""

from __future__ import annotations

import io
import json
from typing import Any

from neo4j_schema_rollback.events import EventLog
from neo4j_schema_rollback.executor import Executor
from neo4j_schema_rollback.settings import ConnectionOptions, resolve
from neo4j_schema_rollback.signals import StopFlag


def executor_for(server: Any, out: io.StringIO, run_id: str = "run-1") -> Executor:
    settings = resolve(ConnectionOptions(uri=server.uri, username=server.username,
                                         password=server.password), {}, interactive=False,
                       prompt=lambda _: "")
    log = EventLog(out, format="json", run_id=run_id, tool_version="test")
    return Executor(settings, log, StopFlag(), run_id=run_id, tool_version="test")


def test_every_transaction_carries_the_run_metadata(neo4j_server: Any) -> None:
    """Statements run with metadata {app, run_id}, visible to the server as tx metadata."""
    out = io.StringIO()
    ex = executor_for(neo4j_server, out, run_id="abc-123")
    try:
        ex.connect()
        [row] = ex.run("CALL tx.getMetaData() YIELD metadata RETURN metadata", action="inspect")
    finally:
        ex.close()
    assert row["metadata"] == {"app": "neo4j-schema-rollback", "run_id": "abc-123"}


def test_every_statement_sent_is_logged(neo4j_server: Any) -> None:
    """connect() and read_catalog() log one statement event per query, with its exact text."""
    out = io.StringIO()
    ex = executor_for(neo4j_server, out)
    try:
        server = ex.connect()
        ex.read_catalog()
    finally:
        ex.close()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(e["action"], e["cypher"], e["outcome"]) for e in lines] == [
        ("inspect", "CALL dbms.components() YIELD name, versions, edition", "applied"),
        ("inspect", "SHOW CONSTRAINTS YIELD *", "applied"),
        ("inspect", "SHOW INDEXES YIELD *", "applied"),
    ]
    assert str(server.version) == neo4j_server.version
