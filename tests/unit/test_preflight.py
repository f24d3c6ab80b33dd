"""The duplicate count's text, and how its rows become a finding (pure: no server here; the
server's own judgement is compared in tests/integration/test_preflight_server.py)."""

from __future__ import annotations

import math

import pytest
from neo4j.time import Duration

from neo4j_schema_rollback.dialect import quote_identifier
from neo4j_schema_rollback.preflight import (
    Finding,
    Uniqueness,
    count,
    example_value,
    render,
    summarise,
    uniqueness_of,
)
from neo4j_schema_rollback.table import QMTL_DAGMANAGER

SPECIAL = ("(v0 <> v0 OR v0 = 0 OR toStringOrNull(v0) IS NULL "
           "OR toStringOrNull(v0) STARTS WITH 'point(')")
KEY = ("[toStringOrNull(v0) IS NULL, [x IN v0 + [] | CASE WHEN x <> x THEN [1] "
       "WHEN x = 0 THEN [2, 1.0 / toFloat(x)] WHEN toStringOrNull(x) STARTS WITH 'point(' "
       "AND NOT x = toStringOrNull(x) THEN [3, toStringOrNull(x)] ELSE [0, x] END]]")
COMPUTE_PK = Uniqueness("NODE", "ComputeNode", ("node_id",))


def test_the_embedded_constraint_renders_exactly() -> None:
    """compute_pk's count: one scan, each value grouped as it is unless it is special."""
    assert render(COMPUTE_PK) == (
        "MATCH (n:ComputeNode) WHERE n.node_id IS NOT NULL WITH n.node_id AS v0 "
        f"WITH CASE WHEN {SPECIAL[1:-1]} THEN {KEY} ELSE v0 END AS k0, count(*) AS c "
        "WHERE c > 1 RETURN count(*) AS duplicated, sum(c) AS entities, "
        "collect([k0])[..3] AS examples")


def test_with_an_index_plain_values_are_grouped_as_they_come() -> None:
    """Indexed: plain values grouped by themselves (an ordered aggregation over the index),
    special ones by the exact key in a second row."""
    head = "MATCH (n:ComputeNode) WHERE n.node_id IS NOT NULL WITH n.node_id AS v0"
    assert render(COMPUTE_PK, indexed=True) == (
        f"{head} WHERE NOT ({SPECIAL}) WITH v0, count(*) AS c WHERE c > 1 "
        "RETURN count(*) AS duplicated, sum(c) AS entities, collect([v0])[..3] AS examples "
        f"UNION ALL {head} WHERE {SPECIAL} "
        f"WITH {KEY} AS k0, count(*) AS c WHERE c > 1 "
        "RETURN count(*) AS duplicated, sum(c) AS entities, collect([k0])[..3] AS examples")


def test_a_composite_counts_only_entities_with_every_property() -> None:
    """Two properties: both must be present, and the pair is the grouping key."""
    text = render(Uniqueness("NODE", "L", ("a", "b")))
    assert text.startswith("MATCH (n:L) WHERE n.a IS NOT NULL AND n.b IS NOT NULL "
                           "WITH n.a AS v0, n.b AS v1 WITH CASE WHEN ")
    assert " ELSE v0 END AS k0, CASE WHEN (v1 <> v1 OR" not in text
    assert " ELSE v0 END AS k0, CASE WHEN v1 <> v1 OR " in text
    assert text.endswith(" ELSE v1 END AS k1, count(*) AS c WHERE c > 1 RETURN count(*) AS "
                         "duplicated, sum(c) AS entities, collect([k0, k1])[..3] AS examples")
    indexed = render(Uniqueness("NODE", "L", ("a", "b")), indexed=True)
    assert "WITH v0, v1, count(*) AS c WHERE c > 1" in indexed
    assert indexed.endswith("collect([k0, k1])[..3] AS examples")


def test_a_relationship_is_matched_once_by_its_direction() -> None:
    """A relationship type is matched directed, so no relationship counts twice."""
    for indexed in (False, True):
        text = render(Uniqueness("RELATIONSHIP", "KNOWS", ("since",)), indexed=indexed)
        assert text.startswith("MATCH ()-[n:KNOWS]->() WHERE n.since IS NOT NULL ")
        assert text.count("MATCH ()-[n:KNOWS]->()") == (2 if indexed else 1)


@pytest.mark.parametrize(("name", "quoted"), [
    ("plain", "plain"), ("with space", "`with space`"), ("a`b", "`a``b`"),
    ("``", "``````"), ("x`) DETACH DELETE n //", "`x``) DETACH DELETE n //`"),
])
def test_identifiers_are_backticked_with_backticks_doubled(name: str, quoted: str) -> None:
    """Every label, type and property passes the one quoting function: bare when plain,
    otherwise in backticks with inner backticks doubled."""
    assert quote_identifier(name) == quoted
    text = render(Uniqueness("NODE", name, (name,)))
    assert text.startswith(f"MATCH (n:{quoted}) WHERE n.{quoted} IS NOT NULL ")


def test_the_table_adapter_takes_constraints_only() -> None:
    """compute_pk requires unique node_id on ComputeNode nodes; an index requires nothing."""
    objects = {obj.name: obj for obj in QMTL_DAGMANAGER.objects}
    assert uniqueness_of(objects["compute_pk"]) == COMPUTE_PK
    assert uniqueness_of(objects["kafka_topic"]) is None


def row(duplicated: int, entities: int, examples: list[list[object]]) -> dict[str, object]:
    return {"duplicated": duplicated, "entities": entities, "examples": examples}


def test_no_duplicate_is_no_finding() -> None:
    """Two rows of zeros (sum over no group is 0) are no finding."""
    assert summarise(COMPUTE_PK, [row(0, 0, []), row(0, 0, [])]) is None


def test_both_rows_add_up_and_examples_stop_at_three() -> None:
    """Plain and special duplicates add up; the examples are the first three, by property."""
    found = summarise(COMPUTE_PK, [row(3, 7, [["a"], ["b"], ["c"]]), row(1, 2, [[math.nan]])])
    assert found == Finding(COMPUTE_PK, 4, 9, ({"node_id": "a"}, {"node_id": "b"},
                                               {"node_id": "c"}))
    assert found.fields() == {"values": 4, "nodes": 9, "examples": [
        {"node_id": "a"}, {"node_id": "b"}, {"node_id": "c"}]}
    assert found.describe() == ('4 duplicate values of (:ComputeNode {node_id}) held by 9 '
                                'nodes, e.g. {node_id: "a"}, {node_id: "b"}, {node_id: "c"}')


def test_a_relationship_finding_counts_relationships() -> None:
    """The entity count is named after the entity."""
    target = Uniqueness("RELATIONSHIP", "KNOWS", ("since", "via"))
    found = summarise(target, [row(1, 2, [[1, "x"]]), row(0, 0, [])])
    assert found is not None
    assert found.fields() == {"values": 1, "relationships": 2,
                              "examples": [{"since": 1, "via": "x"}]}
    assert found.describe() == ('1 duplicate value of [:KNOWS {since, via}] held by 2 '
                                'relationships, e.g. {since: 1, via: "x"}')


def test_keys_come_back_as_the_values_they_stand_for() -> None:
    """An example that is an exact key is shown as its value: NaN, -0.0, lists, points."""
    rows = [row(4, 8, [[[False, [[1]]]], [[False, [[2, -math.inf]]]],
                       [[True, [[0, 1], [2, math.inf]]]]]),
            row(1, 2, [[[False, [[3, "point({x: 1.0, y: 2.0, crs: 'cartesian'})"]]]]])]
    found = summarise(COMPUTE_PK, rows)
    assert found is not None
    [nan, zero, pair] = [example["node_id"] for example in found.examples]
    assert nan == "NaN" and pair == [1, 0.0]
    assert zero == 0.0 and math.copysign(1, zero) == -1


def test_count_sends_the_rendered_query_once() -> None:
    """count runs exactly the rendered text and summarises what came back."""
    sent: list[str] = []

    def send(cypher: str) -> list[dict[str, object]]:
        sent.append(cypher)
        return [row(1, 2, [["a"]]), row(0, 0, [])]

    found = count(send, COMPUTE_PK)
    assert sent == [render(COMPUTE_PK)]
    assert found is not None and found.duplicated == 1


@pytest.mark.parametrize(("value", "shown"), [
    ("a", "a"), (1, 1), (1.5, 1.5), (-0.0, -0.0), (True, True),
    (math.nan, "NaN"), (math.inf, "Infinity"), (-math.inf, "-Infinity"),
    ("x" * 81, "x" * 80 + "…"), ([1.0, math.nan], [1.0, "NaN"]),
    (Duration(months=1, days=2, seconds=3), "P1M2DT3S"),
])
def test_example_values_are_json(value: object, shown: object) -> None:
    """Examples stay JSON: NaN and infinities as text, long strings cut, a duration (a tuple to
    the driver) as its text."""
    result = example_value(value)
    assert result == shown or (isinstance(result, float) and math.copysign(1, result) == -1)


def test_the_message_keeps_to_one_printable_line() -> None:
    """A value with a line break or control character is escaped in the one-line message."""
    found = Finding(COMPUTE_PK, 1, 2, ({"node_id": "a\nb\x1b\u2028"},))
    assert found.describe().endswith('e.g. {node_id: "a\\nb\\u001b\\u2028"}')
