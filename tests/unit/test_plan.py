"""Planning: absent / same / different / equivalent-under-another-name, for apply and rollback."""

import pytest

from neo4j_schema_rollback.catalog import Catalog, LiveObject
from neo4j_schema_rollback.dialect import DIALECT_5
from neo4j_schema_rollback.plan import (
    Decision,
    State,
    assess,
    plan_apply,
    plan_rollback,
    refuse_duplicates,
    to_preflight,
)
from neo4j_schema_rollback.preflight import Finding, Uniqueness
from neo4j_schema_rollback.table import QMTL_DAGMANAGER, Definition, Kind, SchemaObject

TABLE = QMTL_DAGMANAGER


def live_index(name: str, label: str, prop: str, type_: str = "RANGE") -> LiveObject:
    definition = (Definition(Kind.RANGE_INDEX, (label,), (prop,))
                  if type_ in ("RANGE", "BTREE") else None)
    return LiveObject(name=name, is_constraint=False, type=type_, entity="NODE",
                      labels=(label,), properties=(prop,), definition=definition,
                      state="ONLINE")


def live_unique(name: str, label: str, prop: str) -> LiveObject:
    return LiveObject(name=name, is_constraint=True, type="UNIQUENESS", entity="NODE",
                      labels=(label,), properties=(prop,),
                      definition=Definition(Kind.UNIQUENESS_CONSTRAINT, (label,), (prop,)))


FULL = Catalog(
    constraints=(live_unique("compute_pk", "ComputeNode", "node_id"),),
    indexes=(
        live_index("kafka_topic", "Queue", "topic"),
        live_index("compute_tags", "ComputeNode", "tags"),
        live_index("queue_interval", "Queue", "interval"),
        live_index("compute_buffering_since", "ComputeNode", "buffering_since"),
    ),
)
EMPTY = Catalog(constraints=(), indexes=())


def decisions(steps: list) -> list[tuple[str, Decision]]:  # type: ignore[type-arg]
    return [(step.obj.name, step.decision) for step in steps]


def test_apply_on_empty_creates_everything_in_table_order() -> None:
    """Apply on an empty database sends one create per object, oldest first."""
    steps = plan_apply(TABLE.up_to(2), EMPTY, DIALECT_5)
    assert decisions(steps) == [(o.name, Decision.SEND) for o in TABLE.objects]
    assert steps[0].cypher.startswith("CREATE CONSTRAINT compute_pk IF NOT EXISTS")


def test_apply_on_full_skips_everything() -> None:
    """A second apply sends nothing: every object is present."""
    steps = plan_apply(TABLE.up_to(2), FULL, DIALECT_5)
    assert {step.decision for step in steps} == {Decision.SKIP}
    assert {step.reason for step in steps} == {"present"}


def test_apply_refuses_same_name_other_definition() -> None:
    """A same-named index on another property is refused, naming the live definition."""
    catalog = Catalog((), (live_index("kafka_topic", "Queue", "name"),))
    [step] = plan_apply(TABLE.up_to(1)[1:], catalog, DIALECT_5)
    assert step.decision is Decision.REFUSE
    assert step.reason == ("same name, other definition: live is RANGE index kafka_topic on "
                           "(:Queue {name})")


def test_apply_refuses_equivalent_under_another_name() -> None:
    """IF NOT EXISTS would do nothing when the shape exists under another name: refuse."""
    catalog = Catalog((), (live_index("users_topic_idx", "Queue", "topic"),))
    [step] = plan_apply(TABLE.up_to(1)[1:], catalog, DIALECT_5)
    assert step.decision is Decision.REFUSE
    assert step.reason == "absent by name; the same definition exists as users_topic_idx"


def test_apply_refuses_an_index_where_the_table_has_a_constraint() -> None:
    """A same-named object of another kind is a mismatch, not a match."""
    catalog = Catalog((), (live_index("compute_pk", "ComputeNode", "node_id"),))
    [step] = plan_apply(TABLE.up_to(1)[:1], catalog, DIALECT_5)
    assert step.decision is Decision.REFUSE


def test_btree_index_on_4_4_matches_a_range_index() -> None:
    """4.4's BTREE spelling of the default index counts as the table's range index."""
    catalog = Catalog((), (live_index("kafka_topic", "Queue", "topic", type_="BTREE"),))
    assert assess(TABLE.objects[1], catalog).state is State.PRESENT


def test_text_index_with_same_name_is_a_mismatch() -> None:
    """An index of another type under the table's name is a mismatch."""
    catalog = Catalog((), (live_index("kafka_topic", "Queue", "topic", type_="TEXT"),))
    assert assess(TABLE.objects[1], catalog).state is State.MISMATCH


def test_rollback_drops_newest_first() -> None:
    """Rollback from full drops every object, version 2 before version 1."""
    steps = plan_rollback(TABLE.above(0), FULL, DIALECT_5)
    assert decisions(steps) == [
        ("compute_buffering_since", Decision.SEND), ("queue_interval", Decision.SEND),
        ("compute_tags", Decision.SEND), ("kafka_topic", Decision.SEND),
        ("compute_pk", Decision.SEND)]
    assert steps[-1].cypher == "DROP CONSTRAINT compute_pk IF EXISTS"


def test_rollback_to_1_keeps_version_1() -> None:
    """--to 1 drops only version 2 objects."""
    steps = plan_rollback(TABLE.above(1), FULL, DIALECT_5)
    assert [step.obj.name for step in steps] == [
        "compute_buffering_since", "queue_interval", "compute_tags"]


def test_rollback_on_empty_skips_as_absent() -> None:
    """A second rollback sends nothing."""
    steps = plan_rollback(TABLE.above(0), EMPTY, DIALECT_5)
    assert {(step.decision, step.reason) for step in steps} == {(Decision.SKIP, "absent")}


def test_rollback_refuses_mismatch_and_goes_on() -> None:
    """A mismatched object is refused; the others are still dropped."""
    catalog = Catalog(FULL.constraints,
                      (live_index("kafka_topic", "Queue", "other"), *FULL.indexes[1:]))
    steps = plan_rollback(TABLE.above(0), catalog, DIALECT_5)
    assert dict(decisions(steps))["kafka_topic"] is Decision.REFUSE
    assert [n for n, d in decisions(steps) if d is Decision.SEND] == [
        "compute_buffering_since", "queue_interval", "compute_tags", "compute_pk"]


def test_rollback_never_drops_an_equivalent_under_another_name() -> None:
    """An equivalent under another name is someone else's: skipped, and named."""
    catalog = Catalog((), (live_index("users_topic_idx", "Queue", "topic"),))
    [step] = plan_rollback(TABLE.up_to(1)[1:], catalog, DIALECT_5)
    assert step.decision is Decision.SKIP
    assert "users_topic_idx" in (step.reason or "")


def test_assess_states() -> None:
    """assess reports present, absent, mismatch and equivalent."""
    obj = TABLE.objects[1]
    assert assess(obj, FULL).state is State.PRESENT
    assert assess(obj, EMPTY).state is State.ABSENT
    other = Catalog((), (live_index("kafka_topic", "Queue", "x"),))
    assert assess(obj, other).state is State.MISMATCH
    twin = Catalog((), (live_index("twin", "Queue", "topic"),))
    found = assess(obj, twin)
    assert found.state is State.EQUIVALENT
    assert [o.name for o in found.equivalents] == ["twin"]


def test_options_are_part_of_the_definition() -> None:
    """A vector index of another dimension or similarity, a full-text index with another
    analyzer, a point index with other bounds: other definitions (mismatch by name, never an
    equivalent under another name)."""
    from dataclasses import replace

    from neo4j_schema_rollback.kinds import Kind as K
    from neo4j_schema_rollback.table import SchemaObject

    def obj(kind: K, **options: object) -> SchemaObject:
        return SchemaObject(1, "x", Definition(kind, ("L",), ("p",),
                                               options=kind.spec.canonical_options(options)))

    pairs = [(obj(K.VECTOR_INDEX, dimensions=3, similarity_function="cosine"),
              obj(K.VECTOR_INDEX, dimensions=4, similarity_function="cosine")),
             (obj(K.VECTOR_INDEX, dimensions=3, similarity_function="cosine"),
              obj(K.VECTOR_INDEX, dimensions=3, similarity_function="euclidean")),
             (obj(K.FULLTEXT_INDEX), obj(K.FULLTEXT_INDEX, analyzer="english")),
             (obj(K.POINT_INDEX), obj(K.POINT_INDEX, cartesian_min=[-1, -1]))]
    for wanted, other in pairs:
        live = LiveObject(name="x", is_constraint=False, type="X", entity="NODE",
                          labels=("L",), properties=("p",), definition=other.definition)
        assert assess(wanted, Catalog((), (live,))).state is State.MISMATCH
        twin = replace(live, name="y")
        assert assess(wanted, Catalog((), (twin,))).state is State.ABSENT
    same = obj(K.FULLTEXT_INDEX, analyzer="standard-no-stop-words")  # the default, spelt out
    assert same.definition == obj(K.FULLTEXT_INDEX).definition


def test_the_preflight_checks_only_constraints_apply_would_create() -> None:
    """Absent constraints are checked; present ones, indexes, and a constraint refused for its
    name or an equivalent are not."""
    assert [obj.name for obj in to_preflight(plan_apply(TABLE.objects, EMPTY, DIALECT_5))] == [
        "compute_pk"]
    assert to_preflight(plan_apply(TABLE.objects, FULL, DIALECT_5)) == []
    other = Catalog(constraints=(live_unique("compute_pk", "ComputeNode", "other"),), indexes=())
    assert to_preflight(plan_apply(TABLE.objects, other, DIALECT_5)) == []
    twin = Catalog(constraints=(live_unique("theirs", "ComputeNode", "node_id"),), indexes=())
    assert to_preflight(plan_apply(TABLE.objects, twin, DIALECT_5)) == []


FOUND = Finding(Uniqueness("NODE", "ComputeNode", ("node_id",)), 1, 2, ({"node_id": "a"},))


def test_a_finding_refuses_its_create_and_nothing_else() -> None:
    """The constraint with duplicates is refused with the finding; the others stay as planned."""
    steps = refuse_duplicates(plan_apply(TABLE.objects, EMPTY, DIALECT_5), {"compute_pk": FOUND})
    assert decisions(steps) == [("compute_pk", Decision.REFUSE)] + [
        (name, Decision.SEND) for name in ("kafka_topic", "compute_tags", "queue_interval",
                                           "compute_buffering_since")]
    assert steps[0].duplicates is FOUND
    assert steps[0].reason == ("the data hold duplicates: 1 duplicate value of "
                               '(:ComputeNode {node_id}) held by 2 nodes, e.g. {node_id: "a"}')
    assert all(step.duplicates is None and step.reason is None for step in steps[1:])


def test_no_finding_changes_nothing() -> None:
    """Without findings the plan is the same plan."""
    steps = plan_apply(TABLE.objects, EMPTY, DIALECT_5)
    assert refuse_duplicates(steps, {}) == steps


@pytest.mark.parametrize("kind", list(Kind))
def test_the_preflight_counts_uniqueness_and_key_constraints_only(kind: Kind) -> None:
    """Existence and property-type constraints and every index require no unique data."""
    obj = SchemaObject(1, "x", Definition(kind, ("L",), ("p",)))
    steps = plan_apply([obj], EMPTY, DIALECT_5)
    wanted = kind in (Kind.UNIQUENESS_CONSTRAINT, Kind.KEY_CONSTRAINT)
    assert [o.name for o in to_preflight(steps)] == (["x"] if wanted else [])
