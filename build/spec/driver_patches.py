"""Build-time patches to the Neo4j driver's import-time lookup tables (binary only).

Importing the driver builds three calendar tables in `neo4j.time` (~120,000 dict entries,
60 ms in the binary) and two PackStream tables of 65,536 entries each (30 ms), on every start,
before the tool has sent a byte. The tool reads at most a handful of temporal values (SHOW
INDEXES' lastRead) and never packs a 16-bit size. These patches replace the eager tables with
ones that compute an entry on first use and give the same value for every key the originals
hold, and KeyError/IndexError for every other, as tests/unit/test_driver_patches.py checks key
by key against the driver's own code.

Each patch is an exact text replacement. When an upgraded driver no longer contains the original
text verbatim, the build fails rather than shipping an unpatched or half-patched module.
The installed package (pip/uv) is never patched: only the copy compiled into the binary.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import CodeType


class PatchError(Exception):
    """The driver's source no longer matches what a patch replaces."""


@dataclass(frozen=True)
class Patch:
    module: str
    original: str
    replacement: str


_LAZY_TABLE = '''

class _LazyTable(dict):
    # neo4j-schema-rollback build patch: an entry is computed on first lookup instead of all
    # of them at import; `has` says which keys the eager table held.
    __slots__ = ("_compute", "_has")

    def __init__(self, compute, has):
        super().__init__()
        self._compute = compute
        self._has = has

    def __missing__(self, key):
        if not self._has(key):
            raise KeyError(key)
        value = self[key] = self._compute(key)
        return value

'''

TIME_TABLES = Patch(
    module="neo4j.time",
    original='''
_IS_LEAP_YEAR = {
    year: _is_leap_year(year) for year in range(MIN_YEAR, MAX_YEAR + 1)
}
''',
    replacement=_LAZY_TABLE + '''
_YEARS = range(MIN_YEAR, MAX_YEAR + 1)
_IS_LEAP_YEAR = _LazyTable(_is_leap_year, _YEARS.__contains__)
''',
)

TIME_DAYS_IN_YEAR = Patch(
    module="neo4j.time",
    original='''
_DAYS_IN_YEAR = {
    year: _days_in_year(year) for year in range(MIN_YEAR, MAX_YEAR + 1)
}
''',
    replacement='''
_DAYS_IN_YEAR = _LazyTable(_days_in_year, _YEARS.__contains__)
''',
)

TIME_DAYS_IN_MONTH = Patch(
    module="neo4j.time",
    original='''
_DAYS_IN_MONTH = {
    (year, month): _days_in_month(year, month)
    for year in range(MIN_YEAR, MAX_YEAR + 1)
    for month in range(1, 13)
}
''',
    replacement='''
_DAYS_IN_MONTH = _LazyTable(
    lambda key: _days_in_month(*key),
    lambda key: (isinstance(key, tuple) and len(key) == 2
                 and key[0] in _YEARS and key[1] in range(1, 13)),
)
''',
)

PACKSTREAM_TABLES = Patch(
    module="neo4j._codec.packstream.v1",
    original='''
PACKED_UINT_16 = [struct_pack(">H", value) for value in range(0x10000)]

UNPACKED_UINT_8 = {bytes(bytearray([x])): x for x in range(0x100)}
UNPACKED_UINT_16 = {struct_pack(">H", x): x for x in range(0x10000)}
''',
    replacement='''

from operator import index as _operator_index


class _PackedUInt16:
    # neo4j-schema-rollback build patch: packs on lookup, like indexing the eager list of
    # struct_pack(">H", value) for value in range(0x10000): same values, same IndexError and
    # TypeError (no slicing: the driver only indexes it).
    __slots__ = ()

    def __getitem__(self, index):
        index = _operator_index(index)
        if not -0x10000 <= index < 0x10000:
            raise IndexError("list index out of range")
        return struct_pack(">H", index % 0x10000)

    def __len__(self):
        return 0x10000


PACKED_UINT_16 = _PackedUInt16()

UNPACKED_UINT_8 = {bytes(bytearray([x])): x for x in range(0x100)}


class _UnpackedUInt16(dict):
    # neo4j-schema-rollback build patch: the driver never reads this table; it is filled on
    # lookup with what the eager {struct_pack(">H", x): x} held.
    __slots__ = ()

    def __missing__(self, key):
        if not (isinstance(key, bytes) and len(key) == 2):
            raise KeyError(key)
        value = self[key] = int.from_bytes(key, "big")
        return value


UNPACKED_UINT_16 = _UnpackedUInt16()
''',
)

_ASYNC_IMPORTS = '''from ._async.driver import (  # noqa: F401 dynamic attribute
    AsyncBoltDriver,
    AsyncDriver,
    AsyncGraphDatabase,
    AsyncHttpDriver as _AsyncHttpDriver,
    AsyncNeo4jDriver,
)
from ._async.work import (
    AsyncManagedTransaction,
    AsyncResult,
    AsyncSession,
    AsyncTransaction,
)
'''

# `import neo4j` imported the whole async API (drivers, sessions, connection pool, Bolt
# protocols: a copy of the sync one) for the sync code that the tool uses. The same imports
# now run on the first access to one of their names, through the module's __getattr__.
ASYNC_API = Patch(
    module="neo4j",
    original=_ASYNC_IMPORTS,
    replacement='''# neo4j-schema-rollback build patch: the async API is imported on first use, by
# __getattr__, with the imports that stood here.
_ASYNC_API = frozenset({
    "AsyncBoltDriver", "AsyncDriver", "AsyncGraphDatabase", "_AsyncHttpDriver",
    "AsyncNeo4jDriver", "AsyncManagedTransaction", "AsyncResult", "AsyncSession",
    "AsyncTransaction",
})


def _import_async_api():
''' + "".join(f"    {line}\n" if line else "\n" for line in _ASYNC_IMPORTS.splitlines()) + '''\
    imported = locals()
    globals().update({name: imported[name] for name in _ASYNC_API})


''',
)

ASYNC_API_GETATTR = Patch(
    module="neo4j",
    original='''
def __getattr__(name) -> _t.Any:
    # TODO: 7.0 - consider removing this
''',
    replacement='''
def __getattr__(name) -> _t.Any:
    if name in _ASYNC_API or name == "AsyncHttpDriver":
        _import_async_api()
        if name in _ASYNC_API:
            return globals()[name]
    # TODO: 7.0 - consider removing this
''',
)

PATCHES: tuple[Patch, ...] = (TIME_TABLES, TIME_DAYS_IN_YEAR, TIME_DAYS_IN_MONTH,
                              PACKSTREAM_TABLES, ASYNC_API, ASYNC_API_GETATTR)
# A name each patched module defines only when patched: proof that the archive holds the patch.
MARKERS = {"neo4j.time": "_LazyTable", "neo4j._codec.packstream.v1": "_PackedUInt16",
           "neo4j": "_import_async_api"}


def patched_source(module: str, source: str, patches: tuple[Patch, ...] = PATCHES) -> str:
    """The source of `module` with its patches applied; each original must occur exactly once."""
    for patch in patches:
        if patch.module != module:
            continue
        count = source.count(patch.original)
        if count != 1:
            raise PatchError(
                f"{module}: the text to patch occurs {count} times, not once (did the package "
                f"change?): {patch.original.strip().splitlines()[0]!r}")
        source = source.replace(patch.original, patch.replacement)
    return source


def patch_modules(pure: list[tuple[str, str, str]], out: Path,
                  patches: tuple[Patch, ...] = PATCHES) -> list[tuple[str, str, str]]:
    """Point the PyInstaller TOC entries of the patched modules at patched copies under `out`."""
    modules = {patch.module for patch in patches}
    found: set[str] = set()
    result = []
    for name, path, typecode in pure:
        if name in modules:
            original = Path(path)
            # A package stays a package: PyInstaller tells them apart by the __init__.py name.
            target = out.joinpath(*name.split("."))
            target = target / "__init__.py" if original.name == "__init__.py" else \
                target.with_suffix(".py")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(
                patched_source(name, original.read_text(encoding="utf-8"), patches),
                encoding="utf-8")
            path = str(target)
            found.add(name)
        result.append((name, path, typecode))
    if found != modules:
        raise PatchError(f"modules to patch not bundled: {sorted(modules - found)}")
    return result


def _names(code: CodeType) -> Iterator[str]:
    """The names that `code` and the code nested in it (functions, classes) use."""
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, CodeType):
            yield from _names(const)


def check_archive(pyz: str, markers: Mapping[str, str] = MARKERS) -> None:
    """Fail unless the built PYZ archive holds the patched code of every patched module."""
    from PyInstaller.loader.pyimod01_archive import ZlibArchiveReader

    archive = ZlibArchiveReader(pyz)
    for module, marker in markers.items():
        code = archive.extract(module)
        if code is None or marker not in set(_names(code)):
            raise PatchError(f"{pyz}: {module} is not the patched copy (no {marker})")
