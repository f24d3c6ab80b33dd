"""The schema model: tables of named, versioned objects, and the two embedded tables.

A table file (tablefile.py) is parsed into the same `Table` as the embedded ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .kinds import Entity, Kind, OptionError, Value

__all__ = ["DEFAULT_TABLE", "EMBEDDED", "QMTL_DAGMANAGER", "QMTL_WORLDSERVICE", "Definition",
           "Entity", "Kind", "SchemaObject", "Table", "TableError"]

# Names, labels, relationship types and property keys: any text Neo4j takes, quoted by the
# renderer, except control characters and line separators, which are refused outright so that
# no table can put a line break into the `statements` output or the log.
IDENTIFIER = re.compile(r"[^\x00-\x1f\x7f-\x9f\u2028\u2029]{1,16383}")


@dataclass(frozen=True)
class Definition:
    """What an object indexes or constrains, independent of its name.

    `labels` holds the labels (entity NODE) or relationship types (RELATIONSHIP): one, or
    several for a full-text index. `options` are the kind's options with the server's defaults
    filled in, sorted by key, so that equal definitions compare equal whatever a table spelt out.
    """

    kind: Kind
    labels: tuple[str, ...]
    properties: tuple[str, ...]
    entity: Entity = Entity.NODE
    options: tuple[tuple[str, Value], ...] = ()

    @property
    def label(self) -> str:
        """The label or relationship type (the first one of a full-text index)."""
        return self.labels[0]

    @property
    def on_relationships(self) -> bool:
        return self.entity is Entity.RELATIONSHIP

    def option(self, key: str) -> Value | None:
        return dict(self.options).get(key)

    def describe(self) -> str:
        return f"{self.kind.value} on {shape(self.entity, self.labels, self.properties)}" + (
            described_options(self))


def shape(entity: str, labels: tuple[str, ...], properties: tuple[str, ...]) -> str:
    """`(:Label {p, q})` for nodes, `[:TYPE {p}]` for relationships (several joined by |)."""
    where = "|".join(labels) or "?"
    props = ", ".join(properties)
    return f"(:{where} {{{props}}})" if entity == "NODE" else f"[:{where} {{{props}}}]"


def described_options(definition: Definition) -> str:
    """The options that differ from the server's defaults, for messages; '' when none."""
    spec = definition.kind.spec
    shown = [f"{key}: {value}" for key, value in definition.options
             if (opt := spec.option(key)) is None or opt.default != value]
    return f" options {{{', '.join(shown)}}}" if shown else ""


@dataclass(frozen=True)
class SchemaObject:
    """One named constraint or index of the table, introduced at `version`."""

    version: int
    name: str
    definition: Definition

    @property
    def kind(self) -> Kind:
        return self.definition.kind


@dataclass(frozen=True)
class Table:
    """A named, versioned list of schema objects."""

    name: str
    objects: tuple[SchemaObject, ...]

    def __post_init__(self) -> None:
        validate(self)

    @property
    def newest(self) -> int:
        return max(obj.version for obj in self.objects)

    def up_to(self, version: int) -> tuple[SchemaObject, ...]:
        """Objects introduced at or before `version`, oldest first."""
        return tuple(obj for obj in self.objects if obj.version <= version)

    def above(self, version: int) -> tuple[SchemaObject, ...]:
        """Objects introduced after `version`, newest first (the order a rollback drops them)."""
        newer = [obj for obj in self.objects if obj.version > version]
        return tuple(reversed(sorted(newer, key=lambda obj: obj.version)))


class TableError(ValueError):
    """A table breaks a rule the renderer relies on; the message names the object and field."""


def check_identifier(what: str, ident: object) -> str:
    """An identifier as the table holds it, or TableError naming `what`."""
    if not isinstance(ident, str) or not IDENTIFIER.fullmatch(ident):
        raise TableError(f"{what}: {ident!r} must be 1 to 16383 characters, none of them a "
                         "control character or line separator")
    return ident


def _check_names(where: str, field: str, names: tuple[str, ...], most: int | None,
                 too_many: str) -> None:
    if not names:
        raise TableError(f"{where}: field {field!r}: the list is empty")
    if most is not None and len(names) > most:
        raise TableError(f"{where}: field {field!r}: {too_many}")
    for name in names:
        check_identifier(f"{where}: field {field!r}", name)
    if len(set(names)) != len(names):
        raise TableError(f"{where}: field {field!r}: a name appears twice")


def check_definition(where: str, d: Definition) -> None:
    """Raise TableError (prefixed by `where`) unless `d` fits what its kind takes."""
    spec = d.kind.spec
    field = "labels" if d.entity is Entity.NODE else "types"
    if d.entity not in spec.entities:
        raise TableError(f"{where}: {d.kind.value} does not apply to "
                         f"{d.entity.value.lower()}s")
    one = "label" if d.entity is Entity.NODE else "type"
    _check_names(where, field, d.labels, spec.max_targets, f"{d.kind.value} takes one {one}")
    _check_names(where, "properties", d.properties, spec.max_properties,
                 f"{d.kind.value} takes {spec.max_properties} property")
    try:
        canonical = spec.canonical_options(dict(d.options))
    except OptionError as exc:
        raise TableError(f"{where}: field 'options': {exc}") from None
    if canonical != d.options:
        raise TableError(f"{where}: field 'options': not in canonical form")


def validate(table: Table) -> None:
    """Reject bad identifiers, unfit definitions, duplicate names or definitions, and versions
    that do not start at 1 or decrease."""
    check_identifier("table name", table.name)
    if not table.objects:
        raise TableError(f"table {table.name!r} has no objects")
    seen: dict[str, SchemaObject] = {}
    shapes: dict[Definition, str] = {}
    previous = 0
    for obj in table.objects:
        check_identifier("object name", obj.name)
        where = f"object {obj.name!r}"
        if obj.name != obj.name.strip():
            # Seen on 4.4, 5.26 and 2026.08: the server drops them from a constraint's or an
            # index's name (not from labels, types or properties), so the name it reports would
            # never match the table's.
            raise TableError(f"{where}: field 'name': Neo4j strips spaces at either end of a "
                             "name")
        check_definition(where, obj.definition)
        if obj.name in seen:
            raise TableError(f"{where}: field 'name': the name appears twice")
        if obj.version < 1 or obj.version < previous:
            raise TableError(f"{where}: field 'version': versions must start at 1 and never "
                             f"decrease ({obj.version} after {previous})")
        if obj.definition in shapes:
            raise TableError(f"{where}: the same definition as object "
                             f"{shapes[obj.definition]!r}")
        seen[obj.name] = obj
        shapes[obj.definition] = obj.name
        previous = obj.version


def _node(version: int, name: str, kind: Kind, label: str, *props: str) -> SchemaObject:
    return SchemaObject(version, name, Definition(kind, (label,), props))


QMTL_DAGMANAGER = Table(
    name="qmtl-dagmanager",
    objects=(
        _node(1, "compute_pk", Kind.UNIQUENESS_CONSTRAINT, "ComputeNode", "node_id"),
        _node(1, "kafka_topic", Kind.RANGE_INDEX, "Queue", "topic"),
        _node(2, "compute_tags", Kind.RANGE_INDEX, "ComputeNode", "tags"),
        _node(2, "queue_interval", Kind.RANGE_INDEX, "Queue", "interval"),
        _node(2, "compute_buffering_since", Kind.RANGE_INDEX, "ComputeNode", "buffering_since"),
    ),
)

# As QMTL's migration guide has operators create it by hand for the WorldService.
QMTL_WORLDSERVICE = Table(
    name="qmtl-worldservice",
    objects=(
        _node(1, "world_node_ref_key", Kind.UNIQUENESS_CONSTRAINT, "WorldNodeRef",
              "world_id", "node_id", "execution_domain"),
    ),
)

EMBEDDED = {table.name: table for table in (QMTL_DAGMANAGER, QMTL_WORLDSERVICE)}
DEFAULT_TABLE = QMTL_DAGMANAGER.name
