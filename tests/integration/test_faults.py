"""Faults: a statement that outlives --timeout, a connection that breaks mid-run. The tool exits
non-zero, says exactly which objects it changed, and a rerun converges."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from typing import Any

import neo4j
import pytest
from db import env_for, names
from netutil import Forwarder
from tool import Tool, finish


def on_drop(nth: int, act: Callable[[], bool]) -> Callable[[bytes], bool]:
    """A Forwarder hook that calls `act` as the client sends its nth DROP statement, once;
    `act` says whether the connection breaks there."""
    seen = 0

    def hook(chunk: bytes) -> bool:
        nonlocal seen
        before, seen = seen, seen + chunk.count(b"DROP ")
        return before < nth <= seen and act()

    return hook


ALL = {"compute_pk", "kafka_topic", "compute_tags", "queue_interval", "compute_buffering_since"}


def test_statement_blocked_past_timeout_fails_and_rerun_converges(tool: Tool,
                                                                  clean_neo4j: Any) -> None:
    """A create queued behind another transaction's lock ends in exit 1 within about
    --timeout; the run names what it did; a rerun afterwards creates the rest."""
    env = env_for(clean_neo4j)
    auth = (clean_neo4j.username, clean_neo4j.password)
    with neo4j.GraphDatabase.driver(clean_neo4j.uri, auth=auth) as driver, \
            driver.session() as session:
        blocker = session.begin_transaction()
        blocker.run("CREATE (:Queue {topic: 'held'})").consume()
        started = time.monotonic()
        r = tool.run("apply", "--to", "1", "--timeout", "2", env=env,
                     secrets=(clean_neo4j.password,))
        elapsed = time.monotonic() - started
        blocker.rollback()
    assert r.code == 1
    assert elapsed < 15
    assert r.outcomes() == {"compute_pk": "applied", "kafka_topic": "failed"}
    failed = r.table_statements("failed")[0]
    assert failed["error"]["code"] in (
        "StatementTimeout", "Neo.ClientError.Transaction.TransactionTimedOut",
        "Neo.ClientError.Transaction.TransactionTimedOutClientConfiguration")
    assert failed["error_class"] == r.of("error")[0]["error_class"] == "timeout"
    assert (r.end["done"], r.end["not_done"]) == (["compute_pk"], ["kafka_topic"])
    rerun = tool.run("apply", "--to", "1", env=env)
    assert rerun.code == 0
    assert names(clean_neo4j) == {"compute_pk", "kafka_topic"}


def test_connection_breaks_mid_rollback(tool: Tool, clean_neo4j: Any) -> None:
    """The connection drops as the third drop is sent: exit 1, run.end lists the two objects
    dropped and the three not dropped, and a rerun drops the rest with exit 0."""
    env = env_for(clean_neo4j)
    assert tool.run("apply", env=env).code == 0
    with Forwarder(clean_neo4j.port, cut=on_drop(3, lambda: True)) as forwarder:
        r = tool.run("rollback", "--yes", env={**env, "NEO4J_URI": forwarder.uri},
                     secrets=(clean_neo4j.password,))
    assert r.code == 1
    assert r.outcomes() == {"compute_buffering_since": "applied", "queue_interval": "applied",
                            "compute_tags": "failed", "kafka_topic": "skipped",
                            "compute_pk": "skipped"}
    assert r.end["done"] == ["compute_buffering_since", "queue_interval"]
    assert r.end["not_done"] == ["compute_tags", "kafka_topic", "compute_pk"]
    assert r.end["outcome"] == "failed"
    [failed] = r.table_statements("failed")
    [error] = r.of("error")
    assert failed["error_class"] == error["error_class"] == "connection_lost"
    assert error["message"].startswith("drop compute_tags failed: the connection to the server "
                                       "broke")
    assert error["message"].endswith("; its outcome is unknown")
    assert r.stderr == f"neo4j-schema-rollback: error: {error['message']}\n"
    assert names(clean_neo4j) == {"compute_pk", "kafka_topic", "compute_tags"}
    rerun = tool.run("rollback", "--yes", env=env)
    assert rerun.code == 0
    assert rerun.end["done"] == ["compute_tags", "kafka_topic", "compute_pk"]
    assert names(clean_neo4j) == set()


def test_server_killed_mid_rollback_then_restarted(tool: Tool, clean_fault_server: Any) -> None:
    """The server dies (SIGKILL) as the third drop is sent: the run exits 1 naming the two
    objects dropped and the three not; after a restart the two drops have persisted and a
    rerun drops the rest with exit 0."""
    server = clean_fault_server
    env = server.env()
    assert tool.run("apply", env=env).code == 0
    def crash() -> bool:
        server.kill()
        return True

    with Forwarder(server.port, cut=on_drop(3, crash)) as forwarder:
        r = tool.run("rollback", "--yes", env={**env, "NEO4J_URI": forwarder.uri},
                     secrets=(server.password,))
    assert r.code == 1
    assert r.end["done"] == ["compute_buffering_since", "queue_interval"]
    assert r.end["not_done"] == ["compute_tags", "kafka_topic", "compute_pk"]
    assert r.outcomes()["compute_tags"] == "failed"
    server.restart()
    status = tool.run("status", env=env)
    assert status.states() == {"compute_pk": "present", "kafka_topic": "present",
                               "compute_tags": "present", "queue_interval": "absent",
                               "compute_buffering_since": "absent"}
    rerun = tool.run("rollback", "--yes", env=env)
    assert rerun.code == 0
    assert rerun.end["done"] == ["compute_tags", "kafka_topic", "compute_pk"]
    assert tool.run("rollback", "--yes", env=env).end["done"] == []


def test_duplicates_under_a_new_constraint_are_a_data_conflict(tool: Tool,
                                                             clean_neo4j: Any) -> None:
    """Two nodes with the same key written after the preflight counted none, as the CREATE
    goes out (the race the preflight cannot close): the server refuses the uniqueness
    constraint; the failed statement and the error event say data_conflict, with the server's
    own codes (GQLSTATUS from 5.26 on, never on 4.4); exit 1."""
    auth = (clean_neo4j.username, clean_neo4j.password)
    written = False

    def write_duplicates(chunk: bytes) -> bool:
        nonlocal written
        if not written and b"CREATE CONSTRAINT" in chunk:
            written = True  # before the chunk is passed on: the server sees the nodes first
            with neo4j.GraphDatabase.driver(clean_neo4j.uri, auth=auth) as driver:
                driver.execute_query("CREATE (:ComputeNode {node_id: 'n1'}), "
                                     "(:ComputeNode {node_id: 'n1'})")
        return False

    with Forwarder(clean_neo4j.port, cut=write_duplicates) as forwarder:
        r = tool.run("apply", "--to", "1", env={**env_for(clean_neo4j), "NEO4J_URI": forwarder.uri},
                     secrets=(clean_neo4j.password,))
    assert written
    assert r.code == 1, r.stdout + r.stderr
    [check] = [e for e in r.statements if e["action"] == "preflight"]
    assert check["outcome"] == "applied"
    [failed] = r.table_statements("failed")
    [error] = r.of("error")
    assert failed["object"] == "compute_pk"
    assert failed["error_class"] == error["error_class"] == "data_conflict"
    assert failed["error"]["code"] == error["code"] == (
        "Neo.DatabaseError.Schema.ConstraintCreationFailed")
    if clean_neo4j.line == "4.4":
        assert failed["error"]["gql_status"] is None
        assert "gql_status" not in error
    else:
        assert failed["error"]["gql_status"] == error["gql_status"]
        assert error["gql_status"] and error["gql_status_description"]
    assert error["message"].startswith("create compute_pk failed: Unable to create ")
    assert r.stderr == f"neo4j-schema-rollback: error: {error['message']}\n"


NEWEST_FIRST = ["compute_buffering_since", "queue_interval", "compute_tags", "kafka_topic",
                "compute_pk"]


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_mid_rollback_stops_between_statements(tool: Tool, clean_neo4j: Any,
                                                      signum: int, code: int) -> None:
    """A signal sent as the first drop goes out lets that drop finish, sends nothing more,
    logs the rest as not sent, and exits 130/143 with run.end naming done and not done."""
    env = env_for(clean_neo4j)
    assert tool.run("apply", env=env).code == 0
    procs: list[subprocess.Popen[str]] = []

    def interrupt() -> bool:
        procs[0].send_signal(signum)
        return False  # the drop itself goes through

    args = ("rollback", "--yes")
    with Forwarder(clean_neo4j.port, cut=on_drop(1, interrupt)) as forwarder:
        proc = tool.spawn(*args, env={**env, "NEO4J_URI": forwarder.uri})
        procs.append(proc)
        r = finish(proc, [], args, secrets=(clean_neo4j.password,))
    assert r.code == code
    assert (r.end["outcome"], r.end["exit_code"]) == ("interrupted", code)
    done = r.end["done"]
    assert done and done == NEWEST_FIRST[:len(done)]
    assert r.end["not_done"] == NEWEST_FIRST[len(done):]
    assert {e["reason"] for e in r.table_statements("skipped")} == {
        "not sent: the run was interrupted"}
    assert names(clean_neo4j) == set(NEWEST_FIRST[len(done):])
