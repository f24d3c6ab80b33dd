"""SHOW rows captured from each real server line fold into the same plain records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from neo4j_schema_rollback.catalog import Catalog, LiveObject
from neo4j_schema_rollback.kinds import Entity
from neo4j_schema_rollback.table import Definition, Kind

FIXTURES = Path(__file__).parent / "fixtures"
CAPTURES = ["catalog-4.4.json", "catalog-5.json", "catalog-calver.json",
            "catalog-calver-cypher25.json"]


def load(name: str) -> Catalog:
    data = json.loads((FIXTURES / name).read_text())
    return Catalog.from_rows(data["constraints"], data["indexes"])


@pytest.mark.parametrize("capture", CAPTURES)
def test_every_line_folds_to_the_same_records(capture: str) -> None:
    """The constraint and the standalone index read the same on 4.4, 5 and Cypher 25."""
    catalog = load(capture)
    index_type = "BTREE" if "4.4" in capture else "RANGE"
    assert catalog.constraints == (
        LiveObject(name="compute_pk", is_constraint=True, type="UNIQUENESS", entity="NODE",
                   labels=("ComputeNode",), properties=("node_id",),
                   definition=Definition(Kind.UNIQUENESS_CONSTRAINT, ("ComputeNode",),
                                         ("node_id",))),
    )
    standalone = [obj for obj in catalog.indexes if obj.type != "LOOKUP"]
    assert standalone == [
        LiveObject(name="kafka_topic", is_constraint=False, type=index_type, entity="NODE",
                   labels=("Queue",), properties=("topic",),
                   definition=Definition(Kind.RANGE_INDEX, ("Queue",), ("topic",)),
                   state="ONLINE", population_percent=100.0, failure_message=None),
    ]


@pytest.mark.parametrize("capture", CAPTURES)
def test_lookup_indexes_have_no_definition(capture: str) -> None:
    """The built-in LOOKUP indexes never match a table definition."""
    lookups = [obj for obj in load(capture).indexes if obj.type == "LOOKUP"]
    assert len(lookups) == 2
    assert {obj.definition for obj in lookups} == {None}


@pytest.mark.parametrize("capture", CAPTURES)
def test_constraint_index_is_not_a_standalone_index(capture: str) -> None:
    """The index that backs compute_pk belongs to the constraint, not to the index list."""
    catalog = load(capture)
    assert "compute_pk" not in {obj.name for obj in catalog.indexes}
    found = catalog.by_name("compute_pk")
    assert found is not None and found.is_constraint


def test_equivalents_exclude_the_same_name() -> None:
    """equivalents() finds the same definition under other names only."""
    catalog = load("catalog-5.json")
    definition = Definition(Kind.RANGE_INDEX, ("Queue",), ("topic",))
    assert catalog.equivalents(definition, besides="kafka_topic") == ()
    assert [o.name for o in catalog.equivalents(definition, besides="other")] == ["kafka_topic"]


def test_describe() -> None:
    """describe() names type, kind, name and shape."""
    catalog = load("catalog-4.4.json")
    assert catalog.constraints[0].describe() == (
        "UNIQUENESS constraint compute_pk on (:ComputeNode {node_id})")
    assert catalog.by_name("kafka_topic").describe() == (  # type: ignore[union-attr]
        "BTREE index kafka_topic on (:Queue {topic})")


def test_every_kind_reads_back_and_lookups_and_unknowns_do_not() -> None:
    """A NODE_KEY row is a key constraint, a relationship RANGE row a range index; a LOOKUP or
    an unknown type has no definition."""
    catalog = Catalog.from_rows(
        [{"name": "c", "type": "NODE_KEY", "entityType": "NODE", "labelsOrTypes": ["A"],
          "properties": ["x"], "ownedIndex": "c"}],
        [{"name": "r", "type": "RANGE", "entityType": "RELATIONSHIP", "labelsOrTypes": ["R"],
          "properties": ["x"], "owningConstraint": None, "state": "ONLINE"},
         {"name": "c", "type": "RANGE", "entityType": "NODE", "labelsOrTypes": ["A"],
          "properties": ["x"], "owningConstraint": "c", "state": "ONLINE"},
         {"name": "u", "type": "SOMETHING_NEW", "entityType": "NODE", "labelsOrTypes": ["A"],
          "properties": ["x"], "owningConstraint": None, "state": "ONLINE"}])
    assert [o.definition for o in catalog.constraints] == [
        Definition(Kind.KEY_CONSTRAINT, ("A",), ("x",))]
    assert [(o.name, o.definition) for o in catalog.indexes] == [
        ("r", Definition(Kind.RANGE_INDEX, ("R",), ("x",), Entity.RELATIONSHIP)), ("u", None)]
    assert catalog.indexes[0].describe() == "RANGE index r on [:R {x}]"


# Captured with `scripts/neo4j-testbed catalog --schema` from the statements of
# tests/tables/every-kind.toml (versions 1-2 on 4.4, which lacks the kinds of version 3).
KIND_CAPTURES = ["catalog-kinds-4.4.json", "catalog-kinds-5.json", "catalog-kinds-calver.json",
                 "catalog-kinds-calver-cypher25.json"]


@pytest.mark.parametrize("capture", KIND_CAPTURES)
def test_every_kind_reads_back_into_the_tables_definitions(capture: str) -> None:
    """Each line's SHOW rows of every kind (options, relationship types, several labels, 4.4's
    BTREE, Cypher 25's type spellings) fold into exactly the table file's definitions."""
    from neo4j_schema_rollback.tablefile import read_table

    table = read_table(str(Path(__file__).parents[1] / "tables" / "every-kind.toml"))
    catalog = load(capture)
    live = {o.name: o.definition for o in (*catalog.constraints, *catalog.indexes)
            if o.type != "LOOKUP"}
    wanted = table.up_to(2 if "4.4" in capture else table.newest)
    assert live == {o.name: o.definition for o in wanted}
