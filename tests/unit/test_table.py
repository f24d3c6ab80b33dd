"""The embedded tables' content and the model's validation rules."""

import pytest

from neo4j_schema_rollback.kinds import Entity
from neo4j_schema_rollback.table import (
    EMBEDDED,
    QMTL_DAGMANAGER,
    QMTL_WORLDSERVICE,
    Definition,
    Kind,
    SchemaObject,
    Table,
    TableError,
)


def test_qmtl_table_content() -> None:
    """The default table holds exactly the five QMTL DAG Manager objects, by version."""
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
    assert {o.definition.entity for o in QMTL_DAGMANAGER.objects} == {Entity.NODE}


def test_worldservice_table_is_qmtls_composite_key() -> None:
    """qmtl-worldservice holds world_node_ref_key as QMTL's migration guide defines it."""
    [obj] = QMTL_WORLDSERVICE.objects
    assert (obj.version, obj.name, obj.kind) == (1, "world_node_ref_key",
                                                 Kind.UNIQUENESS_CONSTRAINT)
    assert obj.definition == Definition(Kind.UNIQUENESS_CONSTRAINT, ("WorldNodeRef",),
                                        ("world_id", "node_id", "execution_domain"))
    assert list(EMBEDDED) == ["qmtl-dagmanager", "qmtl-worldservice"]


def test_up_to_and_above() -> None:
    """up_to keeps table order; above returns newest first."""
    assert [o.name for o in QMTL_DAGMANAGER.up_to(1)] == ["compute_pk", "kafka_topic"]
    assert [o.name for o in QMTL_DAGMANAGER.above(1)] == [
        "compute_buffering_since", "queue_interval", "compute_tags"]
    assert [o.name for o in QMTL_DAGMANAGER.above(0)][-2:] == ["kafka_topic", "compute_pk"]
    assert QMTL_DAGMANAGER.above(2) == ()


def _index(version: int, name: str, label: str = "L", prop: str = "p",
           kind: Kind = Kind.RANGE_INDEX) -> SchemaObject:
    return SchemaObject(version, name, Definition(kind, (label,), (prop,)))


def _def(kind: Kind, labels: tuple[str, ...], props: tuple[str, ...],
         entity: Entity = Entity.NODE) -> SchemaObject:
    return SchemaObject(1, "a", Definition(kind, labels, props, entity))


@pytest.mark.parametrize(("objects", "message"), [
    ((), "has no objects"),
    ((_index(1, "a"), _index(1, "a", prop="q")), "object 'a': field 'name': the name appears"),
    ((_index(2, "a"), _index(1, "b", prop="q")), "object 'b': field 'version': .* never decrease"),
    ((_index(0, "a"),), "field 'version'"),
    ((_index(1, "bad\nname"),), "control character"),
    ((_index(1, "bad\u2028name"),), "line separator"),
    ((_index(1, ""),), "1 to 16383"),
    ((_index(1, " a"),), "field 'name': Neo4j strips spaces at either end"),
    ((_index(1, "a\u00a0"),), "field 'name': Neo4j strips spaces at either end"),
    ((_index(1, "a", label="x\x00"),), "field 'labels'"),
    ((_index(1, "a", prop="x\x7f"),), "field 'properties'"),
    ((_def(Kind.RANGE_INDEX, ("L",), ()),), "field 'properties': the list is empty"),
    ((_def(Kind.RANGE_INDEX, (), ("p",)),), "field 'labels': the list is empty"),
    ((_def(Kind.RANGE_INDEX, ("A", "B"), ("p",)),), "takes one label"),
    ((_def(Kind.TEXT_INDEX, ("A",), ("p", "q")),), "takes 1 property"),
    ((_def(Kind.RANGE_INDEX, ("A",), ("p", "p")),), "appears twice"),
    ((_def(Kind.FULLTEXT_INDEX, ("A", "A"), ("p",)),), "appears twice"),
    ((_def(Kind.VECTOR_INDEX, ("A",), ("p",)),), "option 'dimensions' is required"),
    ((_index(1, "a"), _index(1, "b")), "object 'b': the same definition as object 'a'"),
])
def test_invalid_tables_are_rejected(objects: tuple[SchemaObject, ...], message: str) -> None:
    """A table that breaks a rule cannot even be constructed."""
    with pytest.raises(TableError, match=message):
        Table("t", objects)


def test_a_long_hostile_name_is_a_valid_identifier() -> None:
    """Backticks, quotes, ;, //, } and non-ASCII text are all fine in every position."""
    odd = "a`b'c\";d//e}f ü 名前"
    table = Table(odd, (SchemaObject(1, odd, Definition(Kind.RANGE_INDEX, (odd,), (odd,))),))
    assert table.objects[0].definition.label == odd
