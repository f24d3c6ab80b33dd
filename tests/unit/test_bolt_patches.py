"""The binary's driver imports the class of the Bolt version a connection negotiates, not of every
version (build/spec/bolt_patches.py), against the installed driver."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import neo4j._sync.io._bolt as bolt_package
import neo4j._sync.io._bolt._base as bolt_base
from neo4j._sync.io._bolt import Bolt

from patched import assert_changed_upstream_fails, run_with_patched_copies, spec_module

driver_patches = spec_module("driver_patches")
bolt_patches = spec_module("bolt_patches")
PATCHES = bolt_patches.patches()

# Run against the patched copies: what is imported when, and what the table answers.
SCRIPT = r'''
import json, sys
import neo4j
from neo4j._io import BoltProtocolVersion
from neo4j._sync.io._bolt import Bolt

def loaded():
    return sorted(m for m in sys.modules
                  if m in {f"neo4j._sync.io._bolt._bolt{n}" for n in "3456"})

handlers = Bolt.protocol_handlers
print(json.dumps(loaded()))
print(json.dumps([list(v.version) for v in sorted(handlers.keys())]))
print(json.dumps([str(v) for v in handlers]), len(handlers))
print(json.dumps(loaded()))
chosen = handlers.get(BoltProtocolVersion(4, 4))
print(chosen.__module__, chosen.__qualname__, chosen.PROTOCOL_VERSION)
print(json.dumps(loaded()))
print(handlers[BoltProtocolVersion(5, 8)].__qualname__, json.dumps(loaded()))
print(handlers.get(BoltProtocolVersion(9, 9)), BoltProtocolVersion(9, 9) in handlers)
try:
    handlers[BoltProtocolVersion(9, 9)]
except KeyError:
    print("KeyError")
print(json.dumps(sorted([list(v.version), c.__module__, c.__qualname__]
                        for v, c in handlers.items())))
'''


def _source(module: object) -> str:
    name = module.__name__  # type: ignore[attr-defined]
    path = Path(module.__file__)  # type: ignore[attr-defined]
    return str(driver_patches.patched_source(name, path.read_text(encoding="utf-8"), PATCHES))


def _installed() -> list[list[object]]:
    return sorted([list(v.version), c.__module__, c.__qualname__]
                  for v, c in Bolt.protocol_handlers.items())


def test_each_version_s_class_is_imported_when_it_is_looked_up(tmp_path: Path) -> None:
    """No protocol module at import; the keys are every version; a lookup imports its module."""
    lines = run_with_patched_copies(
        tmp_path, ["neo4j"], {bolt_package: _source(bolt_package), bolt_base: _source(bolt_base)},
        SCRIPT)
    versions = sorted(Bolt.protocol_handlers)
    assert lines[0] == "[]"
    assert json.loads(lines[1]) == [list(v.version) for v in versions]
    assert lines[2] == f"{json.dumps([str(v) for v in versions])} {len(versions)}"
    assert lines[3] == "[]"
    assert lines[4] == "neo4j._sync.io._bolt._bolt4 Bolt4x4 4.4"
    assert json.loads(lines[5]) == ["neo4j._sync.io._bolt._bolt3", "neo4j._sync.io._bolt._bolt4"]
    assert lines[6] == ('Bolt5x8 ["neo4j._sync.io._bolt._bolt3", "neo4j._sync.io._bolt._bolt4", '
                        '"neo4j._sync.io._bolt._bolt5"]')
    assert lines[7:9] == ["None False", "KeyError"]
    assert json.loads(lines[9]) == _installed()


def test_the_table_is_the_installed_driver_s() -> None:
    """Every version with a class, and the module that defines it (4.0 and 4.1 have none)."""
    assert bolt_patches.versions() == {
        tuple(v.version): c.__module__.rpartition(".")[2]
        for v, c in sorted(Bolt.protocol_handlers.items())}
    assert set(bolt_patches.versions().values()) == {"_bolt3", "_bolt4", "_bolt5", "_bolt6"}
    assert "neo4j._sync.io._bolt._bolt4" in sys.modules  # the installed driver imports them all


def test_a_changed_driver_fails_the_build() -> None:
    assert_changed_upstream_fails(bolt_package, "    _bolt6,\n)", "    _bolt6,\n    _bolt7,\n)",
                                  PATCHES)
    assert_changed_upstream_fails(bolt_base, "    ] = {}\n", "    ] = dict()\n", PATCHES)
