"""The connection owner's own promises on a real server: transaction metadata, one event per
statement, the server identified on open."""

from __future__ import annotations

import io
import json
from typing import Any

from neo4j_schema_rollback.connection import Connection
from neo4j_schema_rollback.session import Common, Console, Run
from neo4j_schema_rollback.settings import ConnectionOptions, resolve


def connection_for(server: Any, out: io.StringIO) -> tuple[Run, Connection]:
    console = Console(stdout=out, stderr=io.StringIO(), env={}, interactive=False,
                      prompt_secret=lambda _: "", confirm=lambda _: False)
    run = Run("status", console, common=Common(log_format="json"))
    settings = resolve(ConnectionOptions(uri=server.uri, username=server.username,
                                         password=server.password), {}, interactive=False,
                       prompt=lambda _: "")
    return run, Connection(run, settings)


def test_every_transaction_carries_the_run_metadata(neo4j_server: Any) -> None:
    """Statements run with metadata {app, run_id}, visible to the server as tx metadata."""
    run, connection = connection_for(neo4j_server, io.StringIO())
    try:
        connection.open()
        [row] = connection.query("CALL tx.getMetaData() YIELD metadata RETURN metadata",
                                 action="inspect").records
    finally:
        connection.close()
    assert row["metadata"] == {"app": "neo4j-schema-rollback", "run_id": run.run_id}


def test_every_statement_sent_is_logged_and_counted(neo4j_server: Any) -> None:
    """open() and read_catalog() log one statement event per query, with its exact text, and
    the run session counts each outcome."""
    out = io.StringIO()
    run, connection = connection_for(neo4j_server, out)
    try:
        server = connection.open()
        connection.read_catalog()
    finally:
        connection.close()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(e["action"], e["cypher"], e["outcome"]) for e in lines] == [
        ("inspect", "CALL dbms.components() YIELD name, versions, edition", "applied"),
        ("inspect", "SHOW CONSTRAINTS YIELD *", "applied"),
        ("inspect", "SHOW INDEXES YIELD *", "applied"),
    ]
    assert run.counts == {"applied": 3}
    assert str(server.version) == neo4j_server.version
