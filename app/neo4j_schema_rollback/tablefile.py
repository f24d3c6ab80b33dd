"""A table file (TOML, docs/table-files.md) -> the same `Table` as the embedded ones.

Imported only when a file is named: `tomllib` costs the embedded table's start nothing. Every
problem is one UsageError naming the file, the object and the field.
"""

from __future__ import annotations

import tomllib
from typing import Any

from .errors import UsageError
from .kinds import FORBIDDEN, SPECS, Entity, Kind, OptionError
from .table import EMBEDDED, Definition, SchemaObject, Table, TableError, check_identifier

TOP_FIELDS = ("name", "objects")
OBJECT_FIELDS = ("version", "name", "kind", "label", "labels", "type", "types", "properties",
                 "options")
_TARGETS = {"label": Entity.NODE, "labels": Entity.NODE, "type": Entity.RELATIONSHIP,
            "types": Entity.RELATIONSHIP}


def read_table(path: str, source: str = "--table") -> Table:
    """Read and validate the table file at `path` (named by `source`, for messages)."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        embedded = ", ".join(EMBEDDED)
        raise UsageError(f"{source}: {path!r} is neither an embedded table ({embedded}) nor "
                         "an existing file") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the table file: "
                         f"{exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # The parser's message carries the line and column: "... (at line 3, column 9)".
        raise UsageError(f"{path}: not valid TOML: {exc}") from None
    except ValueError:  # int() refuses more than 4300 digits (CPython's limit)
        raise UsageError(f"{path}: not a table file: an integer has more than 4300 digits") \
            from None
    try:
        return parse_table(data)
    except TableError as exc:
        raise UsageError(f"{path}: {exc}") from None


def parse_table(data: dict[str, Any]) -> Table:
    """A parsed TOML document -> Table, or TableError naming the object and field."""
    for key in data:
        if key not in TOP_FIELDS:
            raise TableError(f"unknown field {key!r} (known: {', '.join(TOP_FIELDS)})")
    if "name" not in data:
        raise TableError("field 'name': missing (the table's name)")
    name = check_identifier("field 'name'", data["name"])
    objects = data.get("objects")
    if not isinstance(objects, list) or not objects:
        raise TableError("field 'objects': missing or empty (one [[objects]] per object)")
    parsed: list[SchemaObject] = []
    names: set[str] = set()
    previous = 0
    for index, entry in enumerate(objects, start=1):
        obj = _object(index, entry)
        where = f"object {obj.name!r}"
        if obj.name in names:
            raise TableError(f"{where}: field 'name': the name appears twice")
        if obj.version < previous:
            raise TableError(f"{where}: field 'version': versions never decrease "
                             f"({obj.version} after {previous})")
        names.add(obj.name)
        previous = obj.version
        parsed.append(obj)
    return Table(name, tuple(parsed))


def _object(index: int, entry: Any) -> SchemaObject:
    if not isinstance(entry, dict):
        raise TableError(f"object #{index}: not a table ([[objects]])")
    raw_name = entry.get("name")
    where = f"object {raw_name!r}" if isinstance(raw_name, str) else f"object #{index}"
    for key in entry:
        if key not in OBJECT_FIELDS:
            raise TableError(f"{where}: unknown field {key!r} (known: "
                             f"{', '.join(OBJECT_FIELDS)})")
    for key in ("version", "name", "kind", "properties"):
        if key not in entry:
            raise TableError(f"{where}: field {key!r}: missing")
    name = check_identifier(f"{where}: field 'name'", raw_name)
    version = entry["version"]
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= 10**9:
        raise TableError(f"{where}: field 'version': {version!r} is not a whole number from 1")
    kind_text = entry["kind"]
    if isinstance(kind_text, str) and kind_text in FORBIDDEN:
        raise TableError(f"{where}: field 'kind': {FORBIDDEN[kind_text]}")
    if not isinstance(kind_text, str) or kind_text not in SPECS:
        raise TableError(f"{where}: field 'kind': unknown kind {kind_text!r} (known: "
                         f"{', '.join(SPECS)})")
    kind = Kind(kind_text)
    spec = kind.spec
    given = [key for key in _TARGETS if key in entry]
    if len(given) != 1:
        raise TableError(f"{where}: give exactly one of the fields 'label' or 'labels' (nodes), "
                         f"'type' or 'types' (relationships)")
    field = given[0]
    entity = _TARGETS[field]
    value = entry[field]
    if field in ("label", "type"):
        labels: tuple[str, ...] = (check_identifier(f"{where}: field {field!r}", value),)
    else:
        if spec.max_targets == 1:
            raise TableError(f"{where}: field {field!r}: {kind.value} takes one; use "
                             f"{field[:-1]!r}")
        labels = _names(where, field, value)
    properties = _names(where, "properties", entry["properties"])
    options = entry.get("options", {})
    if not isinstance(options, dict):
        raise TableError(f"{where}: field 'options': not a table (e.g. options = {{ ... }})")
    try:
        canonical = spec.canonical_options(options)
    except OptionError as exc:
        raise TableError(f"{where}: field 'options': {exc}") from None
    return SchemaObject(version, name, Definition(kind, labels, properties, entity, canonical))


def _names(where: str, field: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise TableError(f"{where}: field {field!r}: not a list of strings")
    if not value:
        raise TableError(f"{where}: field {field!r}: the list is empty")
    return tuple(check_identifier(f"{where}: field {field!r}", item) for item in value)
