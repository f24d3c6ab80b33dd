"""SHOW CONSTRAINTS / SHOW INDEXES rows -> plain records, with the 4.4, 5 and Cypher 25
spellings folded into one vocabulary."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .kinds import Entity, by_show_type
from .table import Definition, described_options, shape

Row = Mapping[str, Any]
# Constraint type spellings: Cypher 5 (and 4.4) say UNIQUENESS, Cypher 25 NODE_PROPERTY_UNIQUENESS
# (and RELATIONSHIP_UNIQUENESS, RELATIONSHIP_PROPERTY_UNIQUENESS): each kind lists its own.
_UNIQUENESS_TYPES = frozenset({"UNIQUENESS", "NODE_PROPERTY_UNIQUENESS",
                               "RELATIONSHIP_UNIQUENESS", "RELATIONSHIP_PROPERTY_UNIQUENESS"})


@dataclass(frozen=True)
class LiveObject:
    """One constraint or standalone index as the server reports it."""

    name: str
    is_constraint: bool
    type: str
    entity: str
    labels: tuple[str, ...]
    properties: tuple[str, ...]
    definition: Definition | None
    state: str | None = None
    population_percent: float | None = None
    failure_message: str | None = None

    def describe(self) -> str:
        noun = "constraint" if self.is_constraint else "index"
        options = described_options(self.definition) if self.definition else ""
        return (f"{self.type} {noun} {self.name} on "
                f"{shape(self.entity, self.labels, self.properties)}{options}")


@dataclass(frozen=True)
class Catalog:
    """The live schema: constraints, and the indexes that no constraint owns."""

    constraints: tuple[LiveObject, ...]
    indexes: tuple[LiveObject, ...]

    def by_name(self, name: str) -> LiveObject | None:
        """The constraint or standalone index called `name`; constraints win (they share names
        with their own index on 5.x, which is never listed among the standalone indexes)."""
        for obj in (*self.constraints, *self.indexes):
            if obj.name == name:
                return obj
        return None

    def equivalents(self, definition: Definition, *, besides: str) -> tuple[LiveObject, ...]:
        """Objects with the same definition under a name other than `besides`."""
        return tuple(
            obj
            for obj in (*self.constraints, *self.indexes)
            if obj.definition == definition and obj.name != besides
        )

    @classmethod
    def from_rows(cls, constraint_rows: Iterable[Row], index_rows: Iterable[Row]) -> Catalog:
        """Build a catalog from `SHOW CONSTRAINTS YIELD *` and `SHOW INDEXES YIELD *` rows."""
        constraint_rows = list(constraint_rows)
        owned_ids = {row.get("ownedIndexId") for row in constraint_rows} - {None}
        owned_names = {row.get("ownedIndex") for row in constraint_rows} - {None}
        constraints = tuple(_constraint(row) for row in constraint_rows)
        indexes = tuple(
            _index(row)
            for row in index_rows
            if not _owned(row, owned_ids, owned_names)
        )
        return cls(constraints=constraints, indexes=indexes)


def _owned(row: Row, owned_ids: set[Any], owned_names: set[Any]) -> bool:
    # 5.x names the owner; 4.4 only marks the index UNIQUE and the constraint holds its id.
    return (
        row.get("owningConstraint") is not None
        or row.get("uniqueness") == "UNIQUE"
        or row.get("id") in owned_ids
        or row.get("name") in owned_names
    )


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if value else ()


def _definition(row: Row, constraint: bool) -> Definition | None:
    """The table vocabulary's definition of a row, or None when no table object can match it
    (a LOOKUP index, an unknown type, options that cannot be read)."""
    spec = by_show_type(constraint, row.get("type"))
    labels = _strings(row.get("labelsOrTypes"))
    properties = _strings(row.get("properties"))
    entity = row.get("entityType")
    if spec is None or entity not in ("NODE", "RELATIONSHIP") or not labels or not properties:
        return None
    raw = row.get("options")
    config = raw.get("indexConfig") if isinstance(raw, Mapping) else None
    options = spec.read_options(config if isinstance(config, Mapping) else {}, row)
    if options is None:
        return None
    return Definition(spec.kind, labels, properties, Entity(entity), options)


def _constraint(row: Row) -> LiveObject:
    type_ = str(row.get("type") or "")
    return LiveObject(
        name=str(row["name"]),
        is_constraint=True,
        # One spelling in messages, whichever Cypher version reported it.
        type="UNIQUENESS" if type_ in _UNIQUENESS_TYPES else type_,
        entity=str(row.get("entityType") or ""),
        labels=_strings(row.get("labelsOrTypes")),
        properties=_strings(row.get("properties")),
        definition=_definition(row, constraint=True),
    )


def _index(row: Row) -> LiveObject:
    percent = row.get("populationPercent")
    return LiveObject(
        name=str(row["name"]),
        is_constraint=False,
        type=str(row.get("type") or ""),
        entity=str(row.get("entityType") or ""),
        labels=_strings(row.get("labelsOrTypes")),
        properties=_strings(row.get("properties")),
        definition=_definition(row, constraint=False),
        state=row.get("state"),
        population_percent=float(percent) if percent is not None else None,
        failure_message=row.get("failureMessage") or None,
    )
