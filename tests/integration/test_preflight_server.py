"""The duplicate-data preflight on real servers, every line: its count agrees with the server's
own constraint on the same data, and apply / --dry-run / status act on it, through the module
and the binary."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import neo4j
import pytest
from db import cypher, env_for, names
from tool import Result, Tool

from neo4j_schema_rollback.preflight import Finding, Uniqueness, count
from testbed.db import reset_database

# Data whose judgement by the server surprised Cypher's grouping, or might: per case the nodes
# to create; the server's constraint on (:L {p}) decides whether they hold a duplicate.
SINGLE = {
    "int and float": "CREATE (:L {p: 1}), (:L {p: 1.0})",
    "int and string": "CREATE (:L {p: 1}), (:L {p: '1'})",
    "NaN twice": "CREATE (:L {p: 0.0 / 0.0}), (:L {p: 0.0 / 0.0})",
    "NaN of other bits": "CREATE (:L {p: 0.0 / 0.0}), (:L {p: sqrt(-1)})",
    "infinity twice": "CREATE (:L {p: 1.0 / 0.0}), (:L {p: 1.0 / 0.0})",
    "-0.0 and 0.0": "CREATE (:L {p: -0.0}), (:L {p: 0.0})",
    "0 and -0.0": "CREATE (:L {p: 0}), (:L {p: -0.0})",
    "0 and 0.0": "CREATE (:L {p: 0}), (:L {p: 0.0})",
    "-0.0 twice": "CREATE (:L {p: -0.0}), (:L {p: -0.0})",
    "2^53+1 and 2^53 as float": "CREATE (:L {p: 9007199254740993}), (:L {p: 9007199254740992.0})",
    "1e16 as int and float": "CREATE (:L {p: 10000000000000000}), (:L {p: 1.0e16})",
    "lists equal": "CREATE (:L {p: [1, 2]}), (:L {p: [1, 2]})",
    "lists int and float": "CREATE (:L {p: [1, 2]}), (:L {p: [1.0, 2.0]})",
    "list and its element": "CREATE (:L {p: [1]}), (:L {p: 1})",
    "empty lists of two types": "CREATE (:L {p: [1][..0]}), (:L {p: ['a'][..0]})",
    "[NaN] twice": "CREATE (:L {p: [0.0 / 0.0]}), (:L {p: [0.0 / 0.0]})",
    "[-0.0] and [0.0]": "CREATE (:L {p: [-0.0]}), (:L {p: [0.0]})",
    "[0] and [-0.0]": "CREATE (:L {p: [0]}), (:L {p: [-0.0]})",
    "[0] and [0.0]": "CREATE (:L {p: [0]}), (:L {p: [0.0]})",
    "string lists": "CREATE (:L {p: ['ab']}), (:L {p: ['ab']})",
    "one instant, two zones": ("CREATE (:L {p: datetime('2020-01-01T00:00Z')}), "
                               "(:L {p: datetime('2020-01-01T01:00+01:00')})"),
    "zone id and its offset": ("CREATE (:L {p: datetime('2020-06-01T00:00[Europe/Berlin]')}), "
                               "(:L {p: datetime('2020-06-01T00:00+02:00')})"),
    "datetimes equal": ("CREATE (:L {p: datetime('2020-01-01T00:00Z')}), "
                        "(:L {p: datetime('2020-01-01T00:00Z')})"),
    "P1D and PT24H": "CREATE (:L {p: duration('P1D')}), (:L {p: duration('PT24H')})",
    "durations equal": "CREATE (:L {p: duration('P1D')}), (:L {p: duration('P1D')})",
    "points equal": "CREATE (:L {p: point({x: 1, y: 2})}), (:L {p: point({x: 1.0, y: 2.0})})",
    "points 2D and 3D": "CREATE (:L {p: point({x: 1, y: 2})}), (:L {p: point({x: 1, y: 2, z: 0})})",
    "points -0.0 and 0.0": ("CREATE (:L {p: point({x: -0.0, y: 2})}), "
                            "(:L {p: point({x: 0.0, y: 2})})"),
    "a string like a point": ("CREATE (:L {p: \"point({x: 1.0, y: 2.0, crs: 'cartesian'})\"}), "
                              "(:L {p: point({x: 1, y: 2})})"),
    "NFC and NFD": "CREATE (:L {p: '\u00e9'}), (:L {p: 'e\u0301'})",
    "booleans": "CREATE (:L {p: true}), (:L {p: true}), (:L {p: false})",
    "other labels too": "CREATE (:L:M {p: 1}), (:L {p: 1})",
    "missing and null": "CREATE (:L {p: null}), (:L {p: null}), (:L), (:L {q: 1})",
    "unique strings": "CREATE (:L {p: 'a'}), (:L {p: 'b'}), (:L {p: 'A'})",
}
# Composite: a node lacking one of the properties takes no part.
COMPOSITE = {
    "pairs equal": "CREATE (:L {p: 1, q: 'x'}), (:L {p: 1, q: 'x'})",
    "pairs differ in one": "CREATE (:L {p: 1, q: 'x'}), (:L {p: 1, q: 'y'})",
    "one lacks q": "CREATE (:L {p: 1, q: 'x'}), (:L {p: 1}), (:L {p: 1})",
    "NaN pairs": "CREATE (:L {p: 0.0 / 0.0, q: 1}), (:L {p: 0.0 / 0.0, q: 1})",
    "-0.0 in a pair": "CREATE (:L {p: -0.0, q: 1}), (:L {p: 0, q: 1})",
    "int and float in a pair": "CREATE (:L {p: 2, q: [1]}), (:L {p: 2.0, q: [1.0]})",
}


Send = Callable[[str], list[dict[str, Any]]]


def _sender(driver: neo4j.Driver, prefix: str = "") -> Send:
    def send(query: str) -> list[dict[str, Any]]:
        records, _, _ = driver.execute_query(prefix + query)
        return [record.data() for record in records]

    return send


def _server_accepts(driver: neo4j.Driver, constraint: str) -> bool:
    try:
        driver.execute_query(constraint)
    except neo4j.exceptions.Neo4jError as exc:
        assert exc.code == "Neo.DatabaseError.Schema.ConstraintCreationFailed", exc
        return False
    return True


def _judged(driver: neo4j.Driver, send: Send, target: Uniqueness, constraint: str,
            cases: dict[str, str]) -> dict[str, tuple[bool, bool, Finding | None]]:
    """Per case: (the server accepts `constraint`, the preflight finds no duplicate, what it
    found), the preflight's two forms (one scan; the indexed one) through `send` always
    agreeing with each other."""
    judged = {}
    for name, create in cases.items():
        reset_database(driver)
        driver.execute_query(create)
        found = count(send, target)
        assert count(send, target, indexed=True) == found, name
        judged[name] = (_server_accepts(driver, constraint), found is None, found)
    return judged


def _agree(judged: dict[str, tuple[bool, bool, Finding | None]]) -> None:
    assert {name: accepts for name, (accepts, _, _) in judged.items()} == {
        name: clean for name, (_, clean, _) in judged.items()}


NODE_L_P = "CREATE CONSTRAINT k FOR (n:L) REQUIRE n.p IS UNIQUE"


def test_the_count_refuses_exactly_what_the_server_rejects(clean_neo4j: Any,
                                                           neo4j_driver: neo4j.Driver) -> None:
    """For each case the server's own constraint and the preflight agree: a graph the server
    accepts is never refused, one it rejects always is."""
    judged = _judged(neo4j_driver, _sender(neo4j_driver), Uniqueness("NODE", "L", ("p",)),
                     NODE_L_P, SINGLE)
    _agree(judged)
    # the cases are not all alike: both verdicts occur
    assert {accepts for accepts, _, _ in judged.values()} == {True, False}


def test_a_composite_count_agrees_with_the_server(clean_neo4j: Any,
                                                  neo4j_driver: neo4j.Driver) -> None:
    """Composite uniqueness (p, q): the same agreement, nodes lacking q included."""
    judged = _judged(neo4j_driver, _sender(neo4j_driver), Uniqueness("NODE", "L", ("p", "q")),
                     "CREATE CONSTRAINT k FOR (n:L) REQUIRE (n.p, n.q) IS UNIQUE", COMPOSITE)
    _agree(judged)
    assert judged["one lacks q"][:2] == (True, True)
    assert judged["pairs equal"][:2] == (False, False)


def test_the_cypher_25_language_agrees_too(clean_neo4j: Any, neo4j_driver: neo4j.Driver,
                                           neo4j_server: Any) -> None:
    """Where a server speaks Cypher 25 (2025.06 and later), the same count under it agrees."""
    if neo4j_server.line != "calver":
        # 4.4 and 5.26 know no CYPHER 25 prefix: they reject it (and speak Cypher 5 only)
        with pytest.raises(neo4j.exceptions.Neo4jError):
            neo4j_driver.execute_query("CYPHER 25 RETURN 1")
        return
    _agree(_judged(neo4j_driver, _sender(neo4j_driver, "CYPHER 25 "),
                   Uniqueness("NODE", "L", ("p",)), NODE_L_P, SINGLE))


RELATIONSHIPS = {
    "same since": "CREATE (a:A)-[:R {p: 1}]->(b:A), (a)-[:R {p: 1}]->(b)",
    "NaN since": "CREATE (a:A)-[:R {p: 0.0 / 0.0}]->(b:A), (b)-[:R {p: 0.0 / 0.0}]->(a)",
    "-0.0 and 0": "CREATE (a:A)-[:R {p: -0.0}]->(b:A), (a)-[:R {p: 0}]->(b)",
    "a self loop once": "CREATE (a:A)-[:R {p: 1}]->(a), (a)-[:R {p: 2}]->(a)",
}


def test_a_relationship_count_agrees_with_the_server(clean_neo4j: Any, neo4j_server: Any,
                                                     neo4j_driver: neo4j.Driver) -> None:
    """Relationship uniqueness (5.7 and later): the same agreement, each relationship counted
    once; 4.4 has no such constraint and says so."""
    if neo4j_server.line == "4.4":
        with pytest.raises(neo4j.exceptions.Neo4jError):
            neo4j_driver.execute_query(
                "CREATE CONSTRAINT k FOR ()-[r:R]-() REQUIRE r.p IS UNIQUE")
        return

    judged = _judged(neo4j_driver, _sender(neo4j_driver), Uniqueness("RELATIONSHIP", "R", ("p",)),
                     "CREATE CONSTRAINT k FOR ()-[r:R]-() REQUIRE r.p IS UNIQUE", RELATIONSHIPS)
    _agree(judged)
    # each relationship counted once
    assert all(found.entities == 2 for _, _, found in judged.values() if found is not None)


@pytest.fixture
def run(tool: Tool, clean_neo4j: Any):  # type: ignore[no-untyped-def]
    def go(*args: str) -> Result:
        return tool.run(*args, env=env_for(clean_neo4j), secrets=(clean_neo4j.password,))

    return go


DUPLICATED = ("CREATE (:ComputeNode {node_id: 'a'}), (:ComputeNode {node_id: 'a'}), "
              "(:ComputeNode {node_id: 'b'}), (:ComputeNode {node_id: 'b'}), "
              "(:ComputeNode {node_id: 'b'}), (:ComputeNode {node_id: 'c'}), (:ComputeNode)")
FINDING = {"values": 2, "nodes": 5, "examples": [{"node_id": "a"}, {"node_id": "b"}]}
MESSAGE = ('2 duplicate values of (:ComputeNode {node_id}) held by 5 nodes, e.g. '
           '{node_id: "a"}, {node_id: "b"}')


def test_apply_refuses_the_constraint_the_data_break(run: Any, clean_neo4j: Any) -> None:
    """With duplicate node_ids apply counts them before its first CREATE, refuses compute_pk,
    creates the indexes, and exits 5; once the data are fixed, apply creates it."""
    cypher(clean_neo4j, DUPLICATED)
    r = run("apply")
    assert r.code == 5, r.stdout + r.stderr
    actions = [e["action"] for e in r.statements]
    assert actions.index("preflight") < actions.index("create")
    [check] = [e for e in r.statements if e["action"] == "preflight"]
    assert (check["object"], check["outcome"]) == ("compute_pk", "applied")
    [refused] = r.table_statements("refused")
    assert refused["object"] == "compute_pk"
    assert refused["duplicates"] == FINDING
    assert refused["reason"] == f"the data hold duplicates: {MESSAGE}"
    assert r.outcomes() == {"compute_pk": "refused", "kafka_topic": "applied",
                            "compute_tags": "applied", "queue_interval": "applied",
                            "compute_buffering_since": "applied"}
    assert r.states()["compute_pk"] == "absent"
    [error] = r.of("error")
    assert (error["error_class"], error["exit_code"]) == ("data_conflict", 5)
    assert r.stderr == (f"neo4j-schema-rollback: error: duplicate data: compute_pk not created: "
                        f"{MESSAGE} — make those values unique, then apply again\n")
    assert (r.end["outcome"], r.end["exit_code"]) == ("data_conflict", 5)
    assert "compute_pk" not in r.end["done"]
    assert names(clean_neo4j) == {"kafka_topic", "compute_tags", "queue_interval",
                                  "compute_buffering_since"}

    cypher(clean_neo4j, "MATCH (n:ComputeNode) WHERE n.node_id IN ['a', 'b'] "
                        "SET n.node_id = n.node_id + '-' + elementId(n)"
           if clean_neo4j.line != "4.4" else
           "MATCH (n:ComputeNode) WHERE n.node_id IN ['a', 'b'] "
           "SET n.node_id = n.node_id + '-' + toString(id(n))")
    fixed = run("apply")
    assert fixed.code == 0, fixed.stdout + fixed.stderr
    assert fixed.outcomes()["compute_pk"] == "applied"
    assert "compute_pk" in names(clean_neo4j)


def test_dry_run_and_status_report_the_same_finding(run: Any, clean_neo4j: Any) -> None:
    """--dry-run exits 5 with the same finding and sends nothing; status reports it on
    compute_pk's object event and exits 0."""
    cypher(clean_neo4j, DUPLICATED)
    dry = run("apply", "--dry-run")
    assert dry.code == 5, dry.stdout + dry.stderr
    [refused] = dry.table_statements("refused")
    assert refused["duplicates"] == FINDING
    assert dry.stderr.startswith("neo4j-schema-rollback: error: duplicate data: compute_pk "
                                 "would be refused: ")
    assert (dry.end["outcome"], dry.end["exit_code"]) == ("data_conflict", 5)
    assert names(clean_neo4j) == set()
    status = run("status")
    assert status.code == 0
    [pk] = [e for e in status.of("object") if e["object"] == "compute_pk"]
    assert (pk["state"], pk["level"], pk["duplicates"]) == ("absent", "warning", FINDING)


def test_a_present_constraint_is_never_counted(run: Any, clean_neo4j: Any) -> None:
    """Once compute_pk exists no run counts its data again (nor apply --to 0, which creates
    nothing)."""
    assert run("apply").code == 0
    for args in (("apply",), ("apply", "--dry-run"), ("status",)):
        r = run(*args)
        assert r.code == 0
        assert not any(e["action"] == "preflight" for e in r.statements), args


def test_a_count_that_outlives_the_timeout_stops_before_any_create(
        run: Any, clean_neo4j: Any) -> None:
    """A preflight beyond --timeout fails the run before any CREATE: exit 1, a clear line
    (status's says it reported nothing)."""
    # List values take the exact key's slow path: 300,000 of them take the count well beyond
    # the 1 s on every line (the server looks at its timeouts every 2 s; the tool stops waiting
    # 2 s after --timeout), while connecting and reading the catalog take well under 1 s. With
    # 100,000 the count finished in 2.5 s on 4.4 on a quiet machine, before either stopped it.
    for first in range(1, 300_000, 100_000):
        cypher(clean_neo4j, "UNWIND range($first, $first + 99999) AS i "
               "CREATE (:ComputeNode {node_id: range(i, i + 30)})", first=first)
    r = run("apply", "--timeout", "1")
    assert r.code == 1, r.stdout + r.stderr
    assert not r.table_statements("applied")
    [check] = [e for e in r.statements if e["action"] == "preflight"]
    assert check["outcome"] == "failed"
    [error] = r.of("error")
    assert (error["error_class"], error["exit_code"]) == ("timeout", 1)
    assert r.stderr == ("neo4j-schema-rollback: error: the duplicate check of compute_pk did not "
                        "finish within --timeout (1 s); nothing was created — raise "
                        "--timeout: it reads every (:ComputeNode {node_id})\n")
    assert r.end["not_done"] == []
    assert names(clean_neo4j) == set()
    status = run("status", "--timeout", "1")
    assert status.code == 1
    assert not status.of("object")
    assert status.stderr == ("neo4j-schema-rollback: error: the duplicate check of compute_pk "
                             "did not finish within --timeout (1 s); no object was reported — "
                             "raise --timeout: it reads every (:ComputeNode {node_id})\n")


def test_an_index_on_the_property_gives_the_indexed_count(run: Any, clean_neo4j: Any) -> None:
    """With an ONLINE range index on (:ComputeNode {node_id}) the dry run's count is the
    indexed form, and finds the same duplicates."""
    cypher(clean_neo4j, DUPLICATED)
    plain = run("apply", "--dry-run")
    [check] = [e for e in plain.statements if e["action"] == "preflight"]
    assert " UNION ALL " not in check["cypher"]
    cypher(clean_neo4j, "CREATE INDEX theirs FOR (n:ComputeNode) ON (n.node_id)")
    cypher(clean_neo4j, "CALL db.awaitIndexes(60)")
    r = run("apply", "--dry-run")
    assert r.code == 5, r.stdout + r.stderr
    [check] = [e for e in r.statements if e["action"] == "preflight"]
    assert " UNION ALL " in check["cypher"]
    [refused] = r.table_statements("refused")
    assert refused["duplicates"] == FINDING
