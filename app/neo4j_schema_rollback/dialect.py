"""Server version -> Cypher text. The only module that knows Neo4j version thresholds."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .table import Kind, SchemaObject

_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")

# Words that would change a statement's meaning if left bare in a name position.
_RESERVED = frozenset(
    {"CONSTRAINT", "INDEX", "IF", "NOT", "EXISTS", "FOR", "ON", "REQUIRE", "ASSERT", "IS",
     "UNIQUE", "OPTIONS", "CREATE", "DROP", "NULL", "TRUE", "FALSE", "AND", "OR"}
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

    def __str__(self) -> str:
        if self.major >= 2025:
            return f"{self.major}.{self.minor:02d}.{self.patch}"
        return f"{self.major}.{self.minor}.{self.patch}"


OLDEST_SUPPORTED = ServerVersion(4, 4)


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


def quote(identifier: str) -> str:
    """Write an identifier bare when it is plain, otherwise in backticks with backticks doubled."""
    if _PLAIN.fullmatch(identifier) and identifier.upper() not in _RESERVED:
        return identifier
    return "`" + identifier.replace("`", "``") + "`"


def _variable(label: str) -> str:
    first = label[:1].lower()
    return first if first.isascii() and first.isalpha() else "n"


def render_create(obj: SchemaObject, dialect: Dialect) -> str:
    """The statement that creates `obj` unless an object of that name or shape exists."""
    d = obj.definition
    var = _variable(d.label)
    pattern = f"({var}:{quote(d.label)})"
    if d.kind is Kind.UNIQUENESS_CONSTRAINT:
        props = _property_list(var, d.properties)
        return (
            f"CREATE CONSTRAINT {quote(obj.name)} IF NOT EXISTS "
            f"FOR {pattern} REQUIRE {props} IS UNIQUE"
        )
    props = ", ".join(f"{var}.{quote(p)}" for p in d.properties)
    return f"CREATE INDEX {quote(obj.name)} IF NOT EXISTS FOR {pattern} ON ({props})"


def render_drop(obj: SchemaObject, dialect: Dialect) -> str:
    """The statement that drops `obj` by name, doing nothing if it is already gone."""
    noun = "CONSTRAINT" if obj.kind.is_constraint else "INDEX"
    return f"DROP {noun} {quote(obj.name)} IF EXISTS"


def _property_list(var: str, properties: tuple[str, ...]) -> str:
    rendered = [f"{var}.{quote(p)}" for p in properties]
    return rendered[0] if len(rendered) == 1 else "(" + ", ".join(rendered) + ")"
