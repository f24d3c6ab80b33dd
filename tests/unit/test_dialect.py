"""Exact Cypher per server version band."""

import pytest

from neo4j_schema_rollback.dialect import (
    DIALECT_4_4,
    DIALECT_5,
    ServerVersion,
    UnsupportedServer,
    dialect_for,
    quote_identifier,
    render_create,
    render_drop,
)
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
