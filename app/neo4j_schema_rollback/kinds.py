"""Every kind of schema object a table may hold, declared once: what it takes (labels or
relationship types, properties, options), the first Neo4j release that has it, the words it is
written with, and how SHOW reports it.

dialect.py renders from these declarations and is the only module that compares a server's
version with them; catalog.py reads SHOW rows back with them; tablefile.py validates against
them. Adding a kind means adding one KindSpec here (and its tests).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Hashable, Mapping
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # typing's Any only for the checker: importing typing costs the start
    from typing import Any


class Kind(StrEnum):
    """What sort of schema object a table entry is (the `kind` of the events and files)."""

    UNIQUENESS_CONSTRAINT = "uniqueness_constraint"
    RANGE_INDEX = "range_index"
    TEXT_INDEX = "text_index"
    POINT_INDEX = "point_index"
    FULLTEXT_INDEX = "fulltext_index"
    VECTOR_INDEX = "vector_index"
    # Enterprise Edition only: a table may name them, a Community server refuses them.
    EXISTENCE_CONSTRAINT = "existence_constraint"
    KEY_CONSTRAINT = "key_constraint"
    PROPERTY_TYPE_CONSTRAINT = "property_type_constraint"

    @property
    def is_constraint(self) -> bool:
        return SPECS[self].noun == "CONSTRAINT"

    @property
    def requires_unique(self) -> bool:
        """Whether the data must hold no duplicates (a key constraint is unique too);
        existence and property-type constraints require none."""
        return self in (Kind.UNIQUENESS_CONSTRAINT, Kind.KEY_CONSTRAINT)

    @property
    def spec(self) -> KindSpec:
        return SPECS[self]


class Entity(StrEnum):
    """What a definition is on, spelt as SHOW's `entityType`."""

    NODE = "NODE"
    RELATIONSHIP = "RELATIONSHIP"


Value = Hashable
"""An option's value in a definition: str, bool, int, or a tuple of floats (never a list, so
definitions compare and hash)."""


class OptionError(ValueError):
    """An option's value is of the wrong type or out of range."""


class Option:
    """One `indexConfig` option of a kind: its key in a table file, its key on the server, how a
    table's value is checked (returning the canonical value), its default on the server (None:
    the table must give it), and how a SHOW value is read back."""

    # Plain classes, not dataclasses: each dataclass costs every start of the tool.
    __slots__ = ("check", "config", "default", "describe", "key", "read")

    def __init__(self, key: str, config: str, check: Callable[[Any], Value],
                 describe: str, default: Value | None = None,
                 read: Callable[[Any], Value] | None = None) -> None:
        self.key = key
        self.config = config
        self.check = check
        self.describe = describe
        self.default = default
        self.read = read or check


class KindSpec:
    """How one kind is written, where it applies and what it takes."""

    __slots__ = ("edition", "kind", "max_properties", "max_targets", "noun",
                 "options", "show_types", "since", "word")

    def __init__(self, kind: Kind, *, noun: str, word: str, show_types: frozenset[str],
                 since: Mapping[Entity, tuple[int, int]], max_targets: int = 1,
                 max_properties: int | None = None, options: tuple[Option, ...] = (),
                 edition: str = "community") -> None:
        self.kind = kind
        self.noun = noun  # CONSTRAINT or INDEX
        # The index type before INDEX (RANGE has none: a plain CREATE INDEX, BTREE on 4.4),
        # or what a constraint REQUIRES.
        self.word = word
        self.show_types = show_types  # every spelling of SHOW's `type`: 4.4, 5 and Cypher 25
        self.since = since  # the first Neo4j release with this kind, per entity
        self.max_targets = max_targets  # labels or types; more than one: full-text only
        self.max_properties = max_properties
        self.options = options
        self.edition = edition

    @property
    def entities(self) -> tuple[Entity, ...]:
        return tuple(self.since)

    def option(self, key: str) -> Option | None:
        return next((opt for opt in self.options if opt.key == key), None)

    def canonical_options(self, given: Mapping[str, Any]) -> tuple[tuple[str, Value], ...]:
        """The checked options with the server's defaults filled in, sorted by key; an unknown
        key or a bad value raises OptionError naming it."""
        values: dict[str, Value] = {}
        for key, value in given.items():
            opt = self.option(key)
            if opt is None:
                known = ", ".join(o.key for o in self.options) or "none"
                raise OptionError(f"unknown option {key!r} for {self.kind.value} "
                                  f"(known: {known})")
            try:
                values[key] = opt.check(value)
            except OptionError as exc:
                raise OptionError(f"option {key!r}: {exc}") from None
        for opt in self.options:
            if opt.key not in values:
                if opt.default is None:
                    raise OptionError(f"option {opt.key!r} is required for {self.kind.value} "
                                      f"({opt.describe})")
                values[opt.key] = opt.default
        return tuple(sorted(values.items()))

    def read_options(self, config: Mapping[str, Any], row: Mapping[str, Any]
                     ) -> tuple[tuple[str, Value], ...] | None:
        """The options of a SHOW row in the vocabulary of the table; None when one cannot be
        read (no table definition can match it then)."""
        values: dict[str, Value] = {}
        for opt in self.options:
            raw = row.get(opt.config) if opt.config == "propertyType" else config.get(opt.config)
            if raw is None:
                if opt.default is None:
                    return None
                values[opt.key] = opt.default
                continue
            try:
                values[opt.key] = opt.read(raw)
            except OptionError:
                return None
        return tuple(sorted(values.items()))


# -- option checks: each returns the canonical value or raises OptionError --------------------

def _shown(value: Any) -> str:
    """The value as the error line shows it: its repr, cut so that one line stays short."""
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


def _boolean(value: Any) -> Value:
    if not isinstance(value, bool):
        raise OptionError(f"{_shown(value)} is not true or false")
    return value


def _finite(v: Any) -> bool:
    if not isinstance(v, int | float) or isinstance(v, bool):
        return False
    try:
        return math.isfinite(float(v))
    except OverflowError:  # TOML integers are unbounded: one of 400 digits is no float
        return False


def _bounds(size: int) -> Callable[[Any], Value]:
    def check(value: Any) -> Value:
        if (not isinstance(value, list | tuple) or len(value) != size
                or not all(_finite(v) for v in value)):
            raise OptionError(f"{_shown(value)} is not a list of {size} finite numbers")
        return tuple(float(v) for v in value)
    return check


# Compiled on first use (re caches it): only a table file's options are checked.
_ANALYZER = r"[A-Za-z0-9_-]{1,64}"


def _analyzer(value: Any) -> Value:
    # Written into a string literal: letters, digits, '_' and '-' are every analyzer's name.
    if not isinstance(value, str) or not re.fullmatch(_ANALYZER, value):
        raise OptionError(f"{_shown(value)} is not an analyzer name (letters, digits, '_', '-')")
    return value


MAX_DIMENSIONS = 4096  # the largest the Community servers here accept


def _dimensions(value: Any) -> Value:
    if not isinstance(value, int) or isinstance(value, bool) or not (
            1 <= value <= MAX_DIMENSIONS):
        raise OptionError(f"{_shown(value)} is not a whole number from 1 to {MAX_DIMENSIONS}")
    return value


SIMILARITY_FUNCTIONS = ("cosine", "euclidean")


def _similarity(value: Any) -> Value:
    # The servers report it upper-case (COSINE); tables and Cypher take either.
    if not isinstance(value, str) or value.lower() not in SIMILARITY_FUNCTIONS:
        raise OptionError(f"{_shown(value)} is not one of {', '.join(SIMILARITY_FUNCTIONS)}")
    return value.lower()


_SIMPLE_TYPES = ("BOOLEAN", "STRING", "INTEGER", "FLOAT", "DATE", "LOCAL TIME", "ZONED TIME",
                 "LOCAL DATETIME", "ZONED DATETIME", "DURATION", "POINT")
PROPERTY_TYPES = (*_SIMPLE_TYPES, *(f"LIST<{t} NOT NULL>" for t in _SIMPLE_TYPES))


def _property_type(value: Any) -> Value:
    # Written bare into the statement: only a known type name may pass.
    text = " ".join(value.upper().split()) if isinstance(value, str) else None
    if text not in PROPERTY_TYPES:
        raise OptionError(f"{_shown(value)} is not one of {', '.join(_SIMPLE_TYPES)} or "
                          "LIST<T NOT NULL> of one of them")
    return text


# Neo4j's own defaults, the same on 4.4, 5.26 and 2026.08 (read from SHOW INDEXES there).
_POINT_BOUNDS = (
    ("cartesian_min", "spatial.cartesian.min", (-1000000.0, -1000000.0)),
    ("cartesian_max", "spatial.cartesian.max", (1000000.0, 1000000.0)),
    ("cartesian_3d_min", "spatial.cartesian-3d.min", (-1000000.0, -1000000.0, -1000000.0)),
    ("cartesian_3d_max", "spatial.cartesian-3d.max", (1000000.0, 1000000.0, 1000000.0)),
    ("wgs_84_min", "spatial.wgs-84.min", (-180.0, -90.0)),
    ("wgs_84_max", "spatial.wgs-84.max", (180.0, 90.0)),
    ("wgs_84_3d_min", "spatial.wgs-84-3d.min", (-180.0, -90.0, -1000000.0)),
    ("wgs_84_3d_max", "spatial.wgs-84-3d.max", (180.0, 90.0, 1000000.0)),
)

_BOTH = (Entity.NODE, Entity.RELATIONSHIP)


def _on(*pairs: tuple[Entity, tuple[int, int]]) -> dict[Entity, tuple[int, int]]:
    return dict(pairs)


SPECS: dict[Kind, KindSpec] = {spec.kind: spec for spec in (
    KindSpec(Kind.UNIQUENESS_CONSTRAINT, noun="CONSTRAINT", word="IS UNIQUE",
             show_types=frozenset({"UNIQUENESS", "RELATIONSHIP_UNIQUENESS",
                                   "NODE_PROPERTY_UNIQUENESS",
                                   "RELATIONSHIP_PROPERTY_UNIQUENESS"}),
             # relationship uniqueness constraints since 5.7
             since=_on((Entity.NODE, (4, 4)), (Entity.RELATIONSHIP, (5, 7)))),
    # 4.4 reports the index a plain CREATE INDEX makes as BTREE; its RANGE type is there too.
    KindSpec(Kind.RANGE_INDEX, noun="INDEX", word="", show_types=frozenset({"RANGE", "BTREE"}),
             since=_on((Entity.NODE, (4, 4)), (Entity.RELATIONSHIP, (4, 4)))),
    KindSpec(Kind.TEXT_INDEX, noun="INDEX", word="TEXT", show_types=frozenset({"TEXT"}),
             since=_on((Entity.NODE, (4, 4)), (Entity.RELATIONSHIP, (4, 4))),
             max_properties=1),
    KindSpec(Kind.POINT_INDEX, noun="INDEX", word="POINT", show_types=frozenset({"POINT"}),
             since=_on((Entity.NODE, (4, 4)), (Entity.RELATIONSHIP, (4, 4))),
             max_properties=1,
             options=tuple(Option(key, config, _bounds(len(default)),
                                  f"{len(default)} numbers", default=default)
                           for key, config, default in _POINT_BOUNDS)),
    KindSpec(Kind.FULLTEXT_INDEX, noun="INDEX", word="FULLTEXT",
             show_types=frozenset({"FULLTEXT"}),
             since=_on((Entity.NODE, (4, 4)), (Entity.RELATIONSHIP, (4, 4))),
             max_targets=64,
             options=(Option("analyzer", "fulltext.analyzer", _analyzer, "an analyzer name",
                             default="standard-no-stop-words"),
                      Option("eventually_consistent", "fulltext.eventually_consistent",
                             _boolean, "true or false", default=False))),
    # CREATE VECTOR INDEX since 5.13 (5.11 had procedures only); on relationships since 5.18
    KindSpec(Kind.VECTOR_INDEX, noun="INDEX", word="VECTOR", show_types=frozenset({"VECTOR"}),
             since=_on((Entity.NODE, (5, 13)), (Entity.RELATIONSHIP, (5, 18))),
             max_properties=1,
             options=(Option("dimensions", "vector.dimensions", _dimensions,
                             f"1 to {MAX_DIMENSIONS}"),
                      Option("similarity_function", "vector.similarity_function", _similarity,
                             " or ".join(SIMILARITY_FUNCTIONS)))),
    KindSpec(Kind.EXISTENCE_CONSTRAINT, noun="CONSTRAINT", word="IS NOT NULL",
             show_types=frozenset({"NODE_PROPERTY_EXISTENCE",
                                   "RELATIONSHIP_PROPERTY_EXISTENCE"}),
             since=_on((Entity.NODE, (4, 4)), (Entity.RELATIONSHIP, (4, 4))),
             max_properties=1, edition="enterprise"),
    KindSpec(Kind.KEY_CONSTRAINT, noun="CONSTRAINT", word="KEY",
             show_types=frozenset({"NODE_KEY", "RELATIONSHIP_KEY"}),
             # relationship key constraints since 5.7
             since=_on((Entity.NODE, (4, 4)), (Entity.RELATIONSHIP, (5, 7))),
             edition="enterprise"),
    # property type constraints since 5.9
    KindSpec(Kind.PROPERTY_TYPE_CONSTRAINT, noun="CONSTRAINT", word="IS ::",
             show_types=frozenset({"NODE_PROPERTY_TYPE", "RELATIONSHIP_PROPERTY_TYPE"}),
             since=_on((Entity.NODE, (5, 9)), (Entity.RELATIONSHIP, (5, 9))),
             max_properties=1, edition="enterprise",
             options=(Option("property_type", "propertyType", _property_type,
                             "a Cypher property type such as INTEGER"),)),
)}

# Kinds a table may not declare, and why.
FORBIDDEN = {
    "lookup_index": "lookup indexes exist by default and other tools depend on them: a table "
                    "may not declare them",
}


def by_show_type(constraint: bool, type_: object) -> KindSpec | None:
    """The kind a SHOW CONSTRAINTS (constraint) or SHOW INDEXES row's `type` stands for."""
    for spec in SPECS.values():
        if (spec.noun == "CONSTRAINT") == constraint and type_ in spec.show_types:
            return spec
    return None
