"""The embedded table's content and its validation rules."""

import pytest

from neo4j_schema_rollback.table import (
    QMTL_DAGMANAGER,
    Definition,
    Kind,
    SchemaObject,
    Table,
    TableError,
)


def test_qmtl_table_content() -> None:
    """The table holds exactly the five QMTL DAG Manager objects, by version."""
    rows = [(o.version, o.name, o.kind, o.definition.label, o.definition.properties)
            for o in QMTL_DAGMANAGER.objects]
    assert rows == [
        (1, "compute_pk", Kind.UNIQUENESS_CONSTRAINT, "ComputeNode", ("node_id",)),
        (1, "kafka_topic", Kind.RANGE_INDEX, "Queue", ("topic",)),
        (2, "compute_tags", Kind.RANGE_INDEX, "ComputeNode", ("tags",)),
        (2, "queue_interval", Kind.RANGE_INDEX, "Queue", ("interval",)),
        (2, "compute_buffering_since", Kind.RANGE_INDEX, "ComputeNode", ("buffering_since",)),
    ]
    assert QMTL_DAGMANAGER.name == "qmtl-dagmanager"
    assert QMTL_DAGMANAGER.newest == 2


def test_up_to_and_above() -> None:
    """up_to keeps table order; above returns newest first."""
    assert [o.name for o in QMTL_DAGMANAGER.up_to(1)] == ["compute_pk", "kafka_topic"]
    assert [o.name for o in QMTL_DAGMANAGER.above(1)] == [
        "compute_buffering_since", "queue_interval", "compute_tags"]
    assert [o.name for o in QMTL_DAGMANAGER.above(0)][-2:] == ["kafka_topic", "compute_pk"]
    assert QMTL_DAGMANAGER.above(2) == ()


def _index(version: int, name: str, label: str = "L", prop: str = "p") -> SchemaObject:
    return SchemaObject(version, name, Definition(Kind.RANGE_INDEX, label, (prop,)))


@pytest.mark.parametrize(("objects", "message"), [
    ((), "has no objects"),
    ((_index(1, "a"), _index(1, "a")), "appears twice"),
    ((_index(2, "a"), _index(1, "b")), "never decrease"),
    ((_index(0, "a"),), "never decrease"),
    ((_index(1, "bad\nname"),), "printable"),
    ((_index(1, ""),), "printable"),
    ((_index(1, "a", label="x" * 64),), "printable"),
    ((SchemaObject(1, "a", Definition(Kind.RANGE_INDEX, "L", ())),), "no properties"),
])
def test_invalid_tables_are_rejected(objects: tuple[SchemaObject, ...], message: str) -> None:
    """A table that breaks a rule cannot even be constructed."""
    with pytest.raises(TableError, match=message):
        Table("t", objects)
