"""The duplicate-data preflight: before a uniqueness constraint is created, count the values
its properties hold more than once, judged as the server judges them, so that `apply` can
refuse the constraint instead of having the server fail it after a scan.

Pure except `count`, which runs the rendered query through a function the caller gives (the
connection's). No driver here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .dialect import quote_identifier
from .table import SchemaObject

Entity = Literal["NODE", "RELATIONSHIP"]
MAX_EXAMPLES = 3
_EXAMPLE_CHARS = 80


@dataclass(frozen=True)
class Uniqueness:
    """What a uniqueness constraint requires to be unique: an entity, its label or relationship
    type, and the properties taken together."""

    entity: Entity
    label: str
    properties: tuple[str, ...]

    def describe(self) -> str:
        props = ", ".join(self.properties)
        if self.entity == "NODE":
            return f"(:{self.label} {{{props}}})"
        return f"[:{self.label} {{{props}}}]"

    @property
    def noun(self) -> str:
        return "nodes" if self.entity == "NODE" else "relationships"


def uniqueness_of(obj: SchemaObject) -> Uniqueness | None:
    """The uniqueness a table object requires, or None when it is no uniqueness constraint."""
    d = obj.definition
    if not d.kind.requires_unique:
        return None
    entity: Entity = "RELATIONSHIP" if d.entity == "RELATIONSHIP" else "NODE"
    return Uniqueness(entity, d.label, d.properties)


# The server's uniqueness (its index) compares values almost as Cypher's grouping does, but not
# quite; seen on 4.4, 5.26 and 2026.08: it holds every NaN equal to every NaN (Cypher groups no
# two NaNs), and -0.0 different from 0 and 0.0 (Cypher groups them), also inside lists and point
# coordinates, where 4.4 and 5 group differently again. So values that may be affected -- NaN,
# any numeric zero, any list, any point (and strings that look like one) -- are grouped by an
# exact key of their own; the others by the plain values. No plain value is a list and every
# key is one, so the two never meet in one group.
def _special(v: str) -> str:
    return (f"{v} <> {v} OR {v} = 0 OR toStringOrNull({v}) IS NULL "
            f"OR toStringOrNull({v}) STARTS WITH 'point('")


# One key per element of `v + []` (a scalar becomes a one-element list): NaN is [1], a zero
# [2, 1.0 / toFloat(x)] (+Infinity for 0 and 0.0, -Infinity for -0.0; 4.4 refuses 1.0 / 0), a
# point its exact text, anything else itself; the leading flag keeps a list apart from the
# scalar it holds.
def _exact_key(v: str) -> str:
    element = ("CASE WHEN x <> x THEN [1] WHEN x = 0 THEN [2, 1.0 / toFloat(x)] "
               "WHEN toStringOrNull(x) STARTS WITH 'point(' AND NOT x = toStringOrNull(x) "
               "THEN [3, toStringOrNull(x)] ELSE [0, x] END")
    return f"[toStringOrNull({v}) IS NULL, [x IN {v} + [] | {element}]]"


def render(target: Uniqueness, *, indexed: bool = False) -> str:
    """The query that counts the values `target` holds more than once: `duplicated` values, the
    `entities` that hold them, and up to three `examples`. An entity lacking one of the
    properties takes no part, as on the server.

    One scan and one hash aggregation of every value; `indexed` (a RANGE or BTREE index on the
    same label and properties exists): two rows instead, the plain values grouped as they come
    from an ordered index scan (no hash table), the special ones by a second scan."""
    if target.entity == "NODE":
        pattern = f"(n:{quote_identifier(target.label)})"
    else:
        pattern = f"()-[n:{quote_identifier(target.label)}]->()"
    props = [f"n.{quote_identifier(p)}" for p in target.properties]
    names = [f"v{i}" for i in range(len(props))]
    present = " AND ".join(f"{p} IS NOT NULL" for p in props)
    bind = ", ".join(f"{p} AS {v}" for p, v in zip(props, names, strict=True))
    special = " OR ".join(f"({_special(v)})" for v in names)
    values = ", ".join(names)
    keys = ", ".join(f"{_exact_key(v)} AS k{i}" for i, v in enumerate(names))
    head = f"MATCH {pattern} WHERE {present} WITH {bind}"
    key_list = ", ".join(f"k{i}" for i in range(len(names)))
    if not indexed:
        either = ", ".join(f"CASE WHEN {_special(v)} THEN {_exact_key(v)} ELSE {v} END AS k{i}"
                           for i, v in enumerate(names))
        return (f"{head} WITH {either}, count(*) AS c WHERE c > 1 "
                f"RETURN count(*) AS duplicated, sum(c) AS entities, "
                f"collect([{key_list}])[..{MAX_EXAMPLES}] AS examples")
    return (
        f"{head} WHERE NOT ({special}) "
        f"WITH {values}, count(*) AS c WHERE c > 1 "
        f"RETURN count(*) AS duplicated, sum(c) AS entities, "
        f"collect([{values}])[..{MAX_EXAMPLES}] AS examples "
        f"UNION ALL "
        f"{head} WHERE {special} "
        f"WITH {keys}, count(*) AS c WHERE c > 1 "
        f"RETURN count(*) AS duplicated, sum(c) AS entities, "
        f"collect([{key_list}])[..{MAX_EXAMPLES}] AS examples"
    )


@dataclass(frozen=True)
class Finding:
    """Values of a uniqueness that more than one entity holds: what the server would reject."""

    target: Uniqueness
    duplicated: int
    entities: int
    examples: tuple[Mapping[str, Any], ...]

    def fields(self) -> dict[str, Any]:
        """The event field `duplicates`."""
        return {"values": self.duplicated, self.target.noun: self.entities,
                "examples": [dict(example) for example in self.examples]}

    def describe(self) -> str:
        """One line: how many values, held by how many entities, and the examples."""
        shown = ", ".join(
            "{" + ", ".join(f"{key}: {_text(value)}" for key, value in example.items()) + "}"
            for example in self.examples)
        values = "value" if self.duplicated == 1 else "values"
        return (f"{self.duplicated} duplicate {values} of {self.target.describe()} held by "
                f"{self.entities} {self.target.noun}, e.g. {shown}")


def summarise(target: Uniqueness, rows: Sequence[Mapping[str, Any]]) -> Finding | None:
    """Fold the query's rows into a finding; None when no value is held twice."""
    duplicated = sum(int(row["duplicated"]) for row in rows)
    if duplicated == 0:
        return None
    entities = sum(int(row["entities"]) for row in rows)
    examples = [{prop: example_value(_unkeyed(value))
                 for prop, value in zip(target.properties, example, strict=True)}
                for row in rows for example in row["examples"]][:MAX_EXAMPLES]
    # The server's grouping keeps no order: sorted, the same data give the same line.
    examples.sort(key=lambda example: json.dumps(example, sort_keys=True))
    return Finding(target, duplicated, entities, tuple(examples))


def count(send: Callable[[str], Sequence[Mapping[str, Any]]], target: Uniqueness, *,
          indexed: bool = False) -> Finding | None:
    """Run the query with `send` (one statement -> its rows) and summarise it."""
    return summarise(target, send(render(target, indexed=indexed)))


def _unkeyed(value: Any) -> Any:
    """A value back from its exact key (a plain value is no list, a key always is)."""
    if not isinstance(value, list) or len(value) != 2 or not isinstance(value[0], bool):
        return value
    is_list, keys = value
    elements = []
    for key in keys:
        tag = key[0]
        elements.append(key[1] if tag in (0, 3) else math.nan if tag == 1
                        else math.copysign(0.0, key[1]))
    return elements if is_list else elements[0]


def example_value(value: Any) -> Any:
    """A property value as JSON can carry it: strings cut to 80 characters, NaN and the
    infinities as text, temporal and spatial values as their text."""
    if isinstance(value, bool | int) or value is None:
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        return value if math.isfinite(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, str):
        return value if len(value) <= _EXAMPLE_CHARS else value[:_EXAMPLE_CHARS] + "…"
    # Exactly list or tuple: the driver's Duration and Point are tuple subclasses, shown as text.
    if type(value) in (list, tuple):
        return [example_value(item) for item in value]
    return example_value(str(value))


def _text(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    # Data may hold anything: no control or line-breaking character reaches the message.
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
