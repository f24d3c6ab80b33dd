"""Server version -> Cypher text. The only module that knows Neo4j version thresholds."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from .kinds import Entity, Kind, Value
from .table import SchemaObject

_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")

# Words that would change a statement's meaning if left bare in a name position.
_RESERVED = frozenset(
    {"CONSTRAINT", "INDEX", "IF", "NOT", "EXISTS", "FOR", "ON", "REQUIRE", "ASSERT", "IS",
     "UNIQUE", "OPTIONS", "CREATE", "DROP", "NULL", "TRUE", "FALSE", "AND", "OR", "EACH",
     "KEY", "NODE", "RELATIONSHIP", "REL", "TYPED", "RANGE", "TEXT", "POINT", "FULLTEXT",
     "VECTOR", "LOOKUP", "BTREE", "SHOW", "CYPHER", "USE", "XOR", "IN", "CALL", "YIELD",
     "WHERE", "RETURN", "MATCH", "MERGE", "DELETE", "DETACH", "SET", "REMOVE", "WITH",
     "UNWIND", "UNION", "ALL", "OPTIONAL", "LIMIT", "SKIP", "ORDER", "BY", "AS", "CASE",
     "WHEN", "THEN", "ELSE", "END", "DISTINCT", "STARTS", "ENDS", "CONTAINS", "EXPLAIN",
     "PROFILE", "LOAD", "CSV", "FROM", "HEADERS", "FIELDTERMINATOR", "PERIODIC", "COMMIT",
     "TRANSACTIONS", "ROWS", "OF", "CONCURRENT", "ERROR", "FAIL", "CONTINUE", "BREAK",
     "REPORT", "STATUS", "FINISH", "NEXT", "FILTER", "LET", "INSERT", "NODETACH"}
)
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class UnsupportedServer(ValueError):
    """The server is older than the oldest line this tool can drive safely."""


@dataclass(frozen=True, order=True)
class ServerVersion:
    """A Neo4j kernel version: 4.4.48, 5.26.30, or a calendar version such as 2026.08.1."""

    major: int
    minor: int
    patch: int = 0

    @classmethod
    def parse(cls, text: str) -> ServerVersion:
        """Read '5.26.0', '4.4.48-enterprise', '2026.08.1' or 'Neo4j/5.26.0'."""
        match = _VERSION.search(text)
        if match is None:
            raise ValueError(f"not a Neo4j version: {text!r}")
        major, minor, patch = match.groups()
        return cls(int(major), int(minor), int(patch or 0))

    @property
    def short(self) -> str:
        """'5.13', '4.4', '2025.01': the release line, without the patch."""
        return f"{self.major}.{self.minor:02d}" if self.major >= 2025 else (
            f"{self.major}.{self.minor}")

    def __str__(self) -> str:
        if self.major >= 2025:
            return f"{self.major}.{self.minor:02d}.{self.patch}"
        return f"{self.major}.{self.minor}.{self.patch}"


OLDEST_SUPPORTED = ServerVersion(4, 4)
# The lines `check-table` renders for: the ones tested here (tests/testbed/lines.py).
LINES = (ServerVersion(4, 4), ServerVersion(5, 26), ServerVersion(2026, 8))


@dataclass(frozen=True)
class Dialect:
    """How to speak to one band of server versions."""

    name: str
    # The index type a plain `CREATE INDEX` makes: BTREE on 4.4, RANGE from 5.0.
    default_index_type: str


# FOR ... REQUIRE and IF [NOT] EXISTS both work from 4.4; ON ... ASSERT was removed in 5.0, so the
# one syntax below is valid on every supported line. Only the default index type differs.
DIALECT_4_4 = Dialect(name="neo4j-4.4", default_index_type="BTREE")
DIALECT_5 = Dialect(name="neo4j-5", default_index_type="RANGE")


class Server:
    """What a server said about itself on connect, and the dialect chosen for it."""

    # A plain class: generating a dataclass's methods costs every start of the tool, the
    # offline `statements` too, about 0.5% of its instructions.
    __slots__ = ("agent", "dialect", "edition", "version")

    def __init__(self, agent: str, version: ServerVersion, edition: str,
                 dialect: Dialect) -> None:
        self.agent = agent
        self.version = version
        self.edition = edition
        self.dialect = dialect


def dialect_for(version: ServerVersion) -> Dialect:
    """Pick the dialect for a server, refusing versions older than 4.4."""
    if version < OLDEST_SUPPORTED:
        raise UnsupportedServer(
            f"Neo4j {version} is not supported: this tool needs Neo4j 4.4 or later"
        )
    return DIALECT_4_4 if version.major == 4 else DIALECT_5


def quote_identifier(identifier: str) -> str:
    """The one quoting function: an identifier bare when it is plain, otherwise in backticks
    with backticks doubled. Every name, label, type and property key of a statement passes here."""
    if _PLAIN.fullmatch(identifier) and identifier.upper() not in _RESERVED:
        return identifier
    return "`" + identifier.replace("`", "``") + "`"


def _variable(label: str, entity: Entity) -> str:
    first = label[:1].lower()
    if first.isascii() and first.isalpha():
        return first
    return "n" if entity is Entity.NODE else "r"


def _literal(value: Value) -> str:
    """An option value as a Cypher literal (strings are checked before, and escaped anyway)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def render_create(obj: SchemaObject, dialect: Dialect) -> str:
    """The statement that creates `obj` unless an object of that name or shape exists."""
    d = obj.definition
    spec = d.kind.spec
    var = _variable(d.label, d.entity)
    targets = "|".join(quote_identifier(label) for label in d.labels)
    pattern = f"({var}:{targets})" if d.entity is Entity.NODE else f"()-[{var}:{targets}]-()"
    props = [f"{var}.{quote_identifier(p)}" for p in d.properties]
    noun = f"{spec.word} INDEX" if spec.noun == "INDEX" and spec.word else spec.noun
    head = f"CREATE {noun} {quote_identifier(obj.name)} IF NOT EXISTS FOR {pattern}"
    if spec.noun == "CONSTRAINT":
        one = props[0] if len(props) == 1 else "(" + ", ".join(props) + ")"
        if d.kind is Kind.KEY_CONSTRAINT:
            return f"{head} REQUIRE {one} IS {d.entity.value} KEY"
        if d.kind is Kind.PROPERTY_TYPE_CONSTRAINT:
            return f"{head} REQUIRE {one} IS :: {d.option('property_type')}"
        return f"{head} REQUIRE {one} {spec.word}"
    on = f"ON EACH [{', '.join(props)}]" if d.kind is Kind.FULLTEXT_INDEX else (
        f"ON ({', '.join(props)})")
    # Only what differs from the server's default is written (a vector index's options have
    # none): the statement says what the table says.
    config = [f"`{opt.config}`: {_literal(value)}" for key, value in d.options
              if (opt := spec.option(key)) is not None and value != opt.default]
    options = f" OPTIONS {{indexConfig: {{{', '.join(config)}}}}}" if config else ""
    return f"{head} {on}{options}"


def render_drop(obj: SchemaObject, dialect: Dialect) -> str:
    """The statement that drops `obj` by name, doing nothing if it is already gone."""
    return f"DROP {obj.kind.spec.noun} {quote_identifier(obj.name)} IF EXISTS"


def release(version: tuple[int, int]) -> ServerVersion:
    """A kind's first release as a server version."""
    return ServerVersion(*version)


def lacking(objects: Iterable[SchemaObject], version: ServerVersion,
            edition: str | None) -> str | None:
    """Why a server of `version` (and `edition`, None when unknown) cannot hold one of the
    objects: the first one it lacks, its kind and the first release that has it; None if it
    can hold them all."""
    for obj in objects:
        d = obj.definition
        spec = d.kind.spec
        on = "nodes" if d.entity is Entity.NODE else "relationships"
        if spec.edition == "enterprise" and edition is not None and edition != "enterprise":
            return (f"object {obj.name!r}: {d.kind.value} on {on} needs Neo4j Enterprise "
                    f"Edition; this server is {edition.capitalize()} Edition")
        first = release(spec.since[d.entity])
        if version < first:
            return (f"object {obj.name!r}: {d.kind.value} on {on} needs Neo4j {first.short} "
                    f"or later, not {version}")
    return None
