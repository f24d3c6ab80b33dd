"""The embedded statement table: the schema objects this tool owns, as reviewable data."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    """What sort of schema object a table entry is."""

    UNIQUENESS_CONSTRAINT = "uniqueness_constraint"
    RANGE_INDEX = "range_index"

    @property
    def is_constraint(self) -> bool:
        return self is Kind.UNIQUENESS_CONSTRAINT


# Names, labels and property keys: printable, bounded. The renderer quotes whatever is not a
# plain identifier, and control characters are refused outright, so no future entry can smuggle
# Cypher (or a line break into the `statements` output) through the table.
IDENTIFIER = re.compile(r"[^\x00-\x1f\x7f]{1,63}")


@dataclass(frozen=True)
class Definition:
    """What an object indexes or constrains, independent of its name."""

    kind: Kind
    label: str
    properties: tuple[str, ...]
    entity: str = "NODE"

    def describe(self) -> str:
        props = ", ".join(self.properties)
        return f"{self.kind.value} on (:{self.label} {{{props}}})"


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
    """The embedded table breaks a rule the renderer relies on."""


def validate(table: Table) -> None:
    """Reject names that would need quoting, duplicates, and versions out of order."""
    if not table.objects:
        raise TableError(f"table {table.name!r} has no objects")
    seen: set[str] = set()
    previous = 0
    for obj in table.objects:
        for what, ident in [("name", obj.name), ("label", obj.definition.label)] + [
            ("property", prop) for prop in obj.definition.properties
        ]:
            if not IDENTIFIER.fullmatch(ident):
                raise TableError(f"{obj.name!r}: {what} {ident!r} must be 1-63 printable "
                                 "characters")
        if not obj.definition.properties:
            raise TableError(f"{obj.name!r}: no properties")
        if obj.name in seen:
            raise TableError(f"{obj.name!r} appears twice")
        if obj.version < 1 or obj.version < previous:
            raise TableError(f"{obj.name!r}: versions must start at 1 and never decrease")
        seen.add(obj.name)
        previous = obj.version


def _unique(version: int, name: str, label: str, prop: str) -> SchemaObject:
    return SchemaObject(version, name, Definition(Kind.UNIQUENESS_CONSTRAINT, label, (prop,)))


def _range(version: int, name: str, label: str, prop: str) -> SchemaObject:
    return SchemaObject(version, name, Definition(Kind.RANGE_INDEX, label, (prop,)))


QMTL_DAGMANAGER = Table(
    name="qmtl-dagmanager",
    objects=(
        _unique(1, "compute_pk", "ComputeNode", "node_id"),
        _range(1, "kafka_topic", "Queue", "topic"),
        _range(2, "compute_tags", "ComputeNode", "tags"),
        _range(2, "queue_interval", "Queue", "interval"),
        _range(2, "compute_buffering_since", "ComputeNode", "buffering_since"),
    ),
)
