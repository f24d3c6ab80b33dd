"""Exact Cypher per server version band."""

import pytest

from neo4j_schema_rollback.dialect import (
    DIALECT_4_4,
    DIALECT_5,
    ServerVersion,
    UnsupportedServer,
    dialect_for,
    lacking,
    quote_identifier,
    render_create,
    render_drop,
)
from neo4j_schema_rollback.kinds import Entity
from neo4j_schema_rollback.table import QMTL_DAGMANAGER, Definition, Kind, SchemaObject

EXPECTED_CREATE = [
    "CREATE CONSTRAINT compute_pk IF NOT EXISTS FOR (c:ComputeNode) REQUIRE c.node_id IS UNIQUE",
    "CREATE INDEX kafka_topic IF NOT EXISTS FOR (q:Queue) ON (q.topic)",
    "CREATE INDEX compute_tags IF NOT EXISTS FOR (c:ComputeNode) ON (c.tags)",
    "CREATE INDEX queue_interval IF NOT EXISTS FOR (q:Queue) ON (q.interval)",
    "CREATE INDEX compute_buffering_since IF NOT EXISTS FOR (c:ComputeNode) "
    "ON (c.buffering_since)",
]
EXPECTED_DROP = [
    "DROP CONSTRAINT compute_pk IF EXISTS",
    "DROP INDEX kafka_topic IF EXISTS",
    "DROP INDEX compute_tags IF EXISTS",
    "DROP INDEX queue_interval IF EXISTS",
    "DROP INDEX compute_buffering_since IF EXISTS",
]


@pytest.mark.parametrize("version", ["4.4.0", "4.4.48", "5.0.0", "5.26.30", "2025.01.0",
                                     "2026.08.1"])
def test_every_supported_line_gets_for_require_syntax(version: str) -> None:
    """Every supported line gets FOR ... REQUIRE / IF [NOT] EXISTS, never ON ... ASSERT."""
    dialect = dialect_for(ServerVersion.parse(version))
    creates = [render_create(obj, dialect) for obj in QMTL_DAGMANAGER.objects]
    drops = [render_drop(obj, dialect) for obj in QMTL_DAGMANAGER.objects]
    assert creates == EXPECTED_CREATE
    assert drops == EXPECTED_DROP
    assert not any("ASSERT" in text for text in creates)


@pytest.mark.parametrize(("version", "dialect"), [
    ("4.4.48", DIALECT_4_4), ("5.26.30", DIALECT_5), ("2026.08.1", DIALECT_5),
])
def test_dialect_by_version(version: str, dialect: object) -> None:
    """4.4 expects BTREE indexes, 5.x and calendar versions RANGE."""
    assert dialect_for(ServerVersion.parse(version)) is dialect


@pytest.mark.parametrize("version", ["4.3.23", "4.0.0", "3.5.35"])
def test_older_than_4_4_is_refused(version: str) -> None:
    """Servers before 4.4 are refused with a message naming the minimum."""
    with pytest.raises(UnsupportedServer, match=r"needs Neo4j 4\.4 or later"):
        dialect_for(ServerVersion.parse(version))


@pytest.mark.parametrize(("text", "parsed"), [
    ("5.26.0", ServerVersion(5, 26, 0)),
    ("4.4.48-enterprise", ServerVersion(4, 4, 48)),
    ("Neo4j/5.26.30", ServerVersion(5, 26, 30)),
    ("2026.08.1", ServerVersion(2026, 8, 1)),
    ("4.4", ServerVersion(4, 4, 0)),
])
def test_version_parsing(text: str, parsed: ServerVersion) -> None:
    """Kernel versions, agents and short forms parse to the same triple."""
    assert ServerVersion.parse(text) == parsed


def test_version_rejects_garbage() -> None:
    """A string without a version is a ValueError."""
    with pytest.raises(ValueError, match="not a Neo4j version"):
        ServerVersion.parse("latest")


def test_calendar_versions_print_with_two_digit_month() -> None:
    """Calendar versions round-trip in their published spelling."""
    assert str(ServerVersion.parse("2026.08.1")) == "2026.08.1"
    assert str(ServerVersion.parse("5.26.3")) == "5.26.3"


@pytest.mark.parametrize(("raw", "quoted"), [
    ("compute_pk", "compute_pk"),
    ("Queue", "Queue"),
    ("my index", "`my index`"),
    ("x`) DETACH DELETE n //", "`x``) DETACH DELETE n //`"),
    ("ON", "`ON`"),
    ("9lives", "`9lives`"),
])
def test_quote(raw: str, quoted: str) -> None:
    """Plain identifiers stay bare; anything else is backticked with backticks doubled."""
    assert quote_identifier(raw) == quoted


def test_hostile_identifiers_are_quoted_when_rendered() -> None:
    """A table entry with Cypher in its name renders as one quoted identifier."""
    obj = SchemaObject(1, "a`b", Definition(Kind.RANGE_INDEX, ("Weird Label",), ("p q",)))
    assert render_create(obj, DIALECT_5) == (
        "CREATE INDEX `a``b` IF NOT EXISTS FOR (w:`Weird Label`) ON (w.`p q`)")
    assert render_drop(obj, DIALECT_5) == "DROP INDEX `a``b` IF EXISTS"


def test_composite_uniqueness_renders_a_tuple() -> None:
    """A constraint on several properties uses the parenthesised REQUIRE form."""
    obj = SchemaObject(1, "pair", Definition(Kind.UNIQUENESS_CONSTRAINT, ("Pair",), ("a", "b")))
    assert render_create(obj, DIALECT_5) == (
        "CREATE CONSTRAINT pair IF NOT EXISTS FOR (p:Pair) REQUIRE (p.a, p.b) IS UNIQUE")


def _obj(kind: Kind, labels: tuple[str, ...], props: tuple[str, ...],
         entity: Entity = Entity.NODE, **options: object) -> SchemaObject:
    definition = Definition(kind, labels, props, entity,
                            kind.spec.canonical_options(options))
    return SchemaObject(1, "x", definition)


REL = Entity.RELATIONSHIP


@pytest.mark.parametrize(("obj", "cypher"), [
    (_obj(Kind.UNIQUENESS_CONSTRAINT, ("R",), ("a", "b"), REL),
     "CREATE CONSTRAINT x IF NOT EXISTS FOR ()-[r:R]-() REQUIRE (r.a, r.b) IS UNIQUE"),
    (_obj(Kind.RANGE_INDEX, ("KNOWS",), ("since",), REL),
     "CREATE INDEX x IF NOT EXISTS FOR ()-[k:KNOWS]-() ON (k.since)"),
    (_obj(Kind.TEXT_INDEX, ("P",), ("bio",)),
     "CREATE TEXT INDEX x IF NOT EXISTS FOR (p:P) ON (p.bio)"),
    (_obj(Kind.POINT_INDEX, ("P",), ("at",)),
     "CREATE POINT INDEX x IF NOT EXISTS FOR (p:P) ON (p.at)"),
    (_obj(Kind.POINT_INDEX, ("P",), ("at",), wgs_84_3d_max=[1, 2, 3]),
     "CREATE POINT INDEX x IF NOT EXISTS FOR (p:P) ON (p.at) OPTIONS {indexConfig: "
     "{`spatial.wgs-84-3d.max`: [1.0, 2.0, 3.0]}}"),
    (_obj(Kind.FULLTEXT_INDEX, ("A", "B"), ("t", "u"), analyzer="english"),
     "CREATE FULLTEXT INDEX x IF NOT EXISTS FOR (a:A|B) ON EACH [a.t, a.u] OPTIONS "
     "{indexConfig: {`fulltext.analyzer`: 'english'}}"),
    (_obj(Kind.FULLTEXT_INDEX, ("R",), ("t",), REL, analyzer="standard-no-stop-words",
          eventually_consistent=False),
     "CREATE FULLTEXT INDEX x IF NOT EXISTS FOR ()-[r:R]-() ON EACH [r.t]"),
    (_obj(Kind.VECTOR_INDEX, ("C",), ("e",), dimensions=3, similarity_function="COSINE"),
     "CREATE VECTOR INDEX x IF NOT EXISTS FOR (c:C) ON (c.e) OPTIONS {indexConfig: "
     "{`vector.dimensions`: 3, `vector.similarity_function`: 'cosine'}}"),
    (_obj(Kind.EXISTENCE_CONSTRAINT, ("P",), ("a",)),
     "CREATE CONSTRAINT x IF NOT EXISTS FOR (p:P) REQUIRE p.a IS NOT NULL"),
    (_obj(Kind.KEY_CONSTRAINT, ("R",), ("a", "b"), REL),
     "CREATE CONSTRAINT x IF NOT EXISTS FOR ()-[r:R]-() REQUIRE (r.a, r.b) IS RELATIONSHIP KEY"),
    (_obj(Kind.PROPERTY_TYPE_CONSTRAINT, ("P",), ("a",),
          property_type="list<integer  not null>"),
     "CREATE CONSTRAINT x IF NOT EXISTS FOR (p:P) REQUIRE p.a IS :: LIST<INTEGER NOT NULL>"),
])
def test_every_kind_renders_exactly(obj: SchemaObject, cypher: str) -> None:
    """Each kind's statement, options written only where they differ from the default."""
    assert render_create(obj, DIALECT_5) == cypher
    noun = "CONSTRAINT" if obj.kind.is_constraint else "INDEX"
    assert render_drop(obj, DIALECT_4_4) == f"DROP {noun} x IF EXISTS"


HOSTILE = "a`b'c\"d;e//f}g ü 名"


@pytest.mark.parametrize("kind", [k for k in Kind if k is not Kind.VECTOR_INDEX
                                  and k is not Kind.PROPERTY_TYPE_CONSTRAINT])
def test_hostile_identifiers_stay_single_quoted_identifiers(kind: Kind) -> None:
    """Every name, label and property of every kind is one backticked identifier: the text
    outside backticks is the fixed statement."""
    obj = SchemaObject(1, HOSTILE, Definition(kind, (HOSTILE,), (HOSTILE,)))
    quoted = "`a``b'c\"d;e//f}g ü 名`"
    text = render_create(obj, DIALECT_5)
    assert text.count(quoted) == 3
    outside = text.replace(quoted, "Q")
    assert "`" not in outside and ";" not in outside and "//" not in outside


@pytest.mark.parametrize(("version", "edition", "message"), [
    ("4.4.48", "community", "object 'r': uniqueness_constraint on relationships needs Neo4j "
     "5.7 or later, not 4.4.48"),
    ("5.12.0", None, "object 'v': vector_index on nodes needs Neo4j 5.13 or later, not 5.12.0"),
    ("5.26.0", "community", "object 'e': existence_constraint on nodes needs Neo4j Enterprise "
     "Edition; this server is Community Edition"),
    ("5.26.0", None, None),
    ("2026.08.1", "enterprise", None),
])
def test_lacking_names_the_object_kind_and_first_release(version: str, edition: str | None,
                                                         message: str | None) -> None:
    """The first object a server cannot hold, with its kind and the release that has it."""
    objects = [SchemaObject(1, "r", Definition(Kind.UNIQUENESS_CONSTRAINT, ("R",), ("p",), REL)),
               _obj(Kind.VECTOR_INDEX, ("C",), ("e",), dimensions=3,
                    similarity_function="cosine"),
               SchemaObject(1, "e", Definition(Kind.EXISTENCE_CONSTRAINT, ("P",), ("a",)))]
    objects[1] = SchemaObject(1, "v", objects[1].definition)
    if version.startswith("5.12"):
        objects = objects[1:]
    assert lacking(objects, ServerVersion.parse(version), edition) == message
