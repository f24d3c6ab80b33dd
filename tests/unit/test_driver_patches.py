"""The binary's lazy driver tables (build/spec/driver_patches.py) against the driver's own code.

Each patched module is compiled from the installed driver's source with the patches applied, and
every table is compared, key by key, with the eager table that the driver's original text builds
in the same namespace.
"""

from __future__ import annotations

import types
import warnings
from pathlib import Path
from typing import Any

import neo4j.time
import pytest
from neo4j._codec.packstream import v1 as packstream_v1

from patched import assert_changed_upstream_fails, run_with_patched_copies, spec_module

patches = spec_module("driver_patches")


def _patched(module: types.ModuleType) -> dict[str, Any]:
    """The namespace of `module` executed from its patched source."""
    assert module.__file__ is not None
    source = Path(module.__file__).read_text(encoding="utf-8")
    namespace: dict[str, Any] = {"__name__": f"{module.__name__}_patched",
                                 "__package__": module.__name__}
    exec(compile(patches.patched_source(module.__name__, source), module.__file__, "exec"),
         namespace)
    return namespace


def _eager(namespace: dict[str, Any], patch: Any) -> dict[str, Any]:
    """The tables the driver's original text builds, in a copy of the patched namespace."""
    copy = dict(namespace)
    exec(patch.original, copy)
    return copy


@pytest.fixture(scope="module")
def time_ns() -> dict[str, Any]:
    return _patched(neo4j.time)


@pytest.mark.parametrize(("patch_name", "table"), [
    ("TIME_TABLES", "_IS_LEAP_YEAR"),
    ("TIME_DAYS_IN_YEAR", "_DAYS_IN_YEAR"),
    ("TIME_DAYS_IN_MONTH", "_DAYS_IN_MONTH"),
])
def test_calendar_tables_hold_the_drivers_values(time_ns: dict[str, Any], patch_name: str,
                                                 table: str) -> None:
    fresh = _patched(neo4j.time)[table]  # other tests fill the shared namespace's tables
    assert type(fresh) is not dict
    assert len(fresh) <= 3  # at import, only Date.min, Date.max and the Unix epoch
    eager = _eager(time_ns, getattr(patches, patch_name))[table]
    lazy = time_ns[table]
    assert len(eager) in (9999, 9999 * 12)
    assert {key: lazy[key] for key in eager} == eager


@pytest.mark.parametrize("table", ["_IS_LEAP_YEAR", "_DAYS_IN_YEAR", "_DAYS_IN_MONTH"])
@pytest.mark.parametrize("key", [
    0, 10000, -1, 2020.5, "2020", None, (2020, 0), (2020, 13), (0, 1), (10000, 1), (2020,),
    (2020, 1, 1), (2020.5, 1), ("2020", 1), 2020, 2020.0, True, (2020, 2), (2020.0, 2), (True, 1),
])
def test_calendar_tables_answer_any_key_like_the_driver(time_ns: dict[str, Any], table: str,
                                                        key: Any) -> None:
    patch = {"_IS_LEAP_YEAR": patches.TIME_TABLES, "_DAYS_IN_YEAR": patches.TIME_DAYS_IN_YEAR,
             "_DAYS_IN_MONTH": patches.TIME_DAYS_IN_MONTH}[table]
    eager = _eager(time_ns, patch)[table]
    lazy = time_ns[table]
    if key in eager:
        assert lazy[key] == eager[key]
    else:
        with pytest.raises(KeyError):
            lazy[key]


def test_patched_calendar_does_date_arithmetic_like_the_driver(time_ns: dict[str, Any]) -> None:
    date = time_ns["Date"]
    for ordinal in (1, 59, 60, 365, 366, 730_119, 738_000, 3_652_059):
        patched = date.from_ordinal(ordinal)
        original = neo4j.time.Date.from_ordinal(ordinal)
        assert (patched.year, patched.month, patched.day) == \
            (original.year, original.month, original.day)
        assert patched.to_ordinal() == ordinal
    assert date.days_in_month(2024, 2) == 29 and date.days_in_month(2100, 2) == 28
    assert date.is_leap_year(2000) and not date.is_leap_year(1900)


@pytest.fixture(scope="module")
def packstream_ns() -> dict[str, Any]:
    return _patched(packstream_v1)


def test_packed_uint16_indexes_like_the_drivers_list(packstream_ns: dict[str, Any]) -> None:
    eager = _eager(packstream_ns, patches.PACKSTREAM_TABLES)["PACKED_UINT_16"]
    lazy = packstream_ns["PACKED_UINT_16"]
    assert len(lazy) == len(eager) == 0x10000
    assert all(lazy[index] == eager[index] for index in range(-0x10000, 0x10000))
    for index in (0x10000, -0x10001, 10**20):
        with pytest.raises(IndexError):
            eager[index]
        with pytest.raises(IndexError):
            lazy[index]
    for bad in (1.0, "1", None):
        with pytest.raises(TypeError):
            eager[bad]
        with pytest.raises(TypeError):
            lazy[bad]


def test_unpacked_uint16_holds_the_drivers_values(packstream_ns: dict[str, Any]) -> None:
    eager = _eager(packstream_ns, patches.PACKSTREAM_TABLES)["UNPACKED_UINT_16"]
    lazy = packstream_ns["UNPACKED_UINT_16"]
    assert {key: lazy[key] for key in eager} == eager
    for key in (b"", b"\x00", b"\x00\x00\x00", "ab", 1, None):
        with pytest.raises(KeyError):
            lazy[key]
        assert key not in eager


def test_patched_packer_writes_what_the_driver_writes(packstream_ns: dict[str, Any]) -> None:
    values: list[Any] = [0, 127, 128, 255, 256, 32767, 32768, -129, -32768, 2**31, -(2**40),
                         "x" * 300, "y" * 70000, list(range(300)), {str(i): i for i in range(300)},
                         b"z" * 300]
    for value in values:
        expected, got = bytearray(), bytearray()
        packstream_v1.Packer(_Buffer(expected)).pack(value)
        packstream_ns["Packer"](_Buffer(got)).pack(value)
        assert got == expected


class _Buffer:
    def __init__(self, data: bytearray) -> None:
        self.data = data

    def write(self, chunk: bytes) -> None:
        self.data += chunk


def test_a_changed_driver_fails_the_build() -> None:
    assert_changed_upstream_fails(neo4j.time, "for year in range(MIN_YEAR, MAX_YEAR + 1)\n}",
                                  "for year in range(MIN_YEAR, MAX_YEAR + 2)\n}")


def test_patch_modules_writes_packages_as_packages(tmp_path: Path) -> None:
    toc = [("neo4j", neo4j.__file__, "PYMODULE"), ("neo4j.time", neo4j.time.__file__, "PYMODULE"),
           ("neo4j._codec.packstream.v1", packstream_v1.__file__, "PYMODULE"),
           ("os", "/somewhere/os.py", "PYMODULE")]
    result = patches.patch_modules(toc, tmp_path)
    assert result == [
        ("neo4j", str(tmp_path / "neo4j" / "__init__.py"), "PYMODULE"),
        ("neo4j.time", str(tmp_path / "neo4j" / "time" / "__init__.py"), "PYMODULE"),
        ("neo4j._codec.packstream.v1",
         str(tmp_path / "neo4j" / "_codec" / "packstream" / "v1" / "__init__.py"), "PYMODULE"),
        ("os", "/somewhere/os.py", "PYMODULE"),
    ]
    assert "_LazyTable" in (tmp_path / "neo4j" / "time" / "__init__.py").read_text()


def test_patch_modules_fails_when_a_module_is_not_bundled(tmp_path: Path) -> None:
    with pytest.raises(patches.PatchError, match=r"not bundled: \['neo4j', 'neo4j._codec"):
        patches.patch_modules([("neo4j.time", neo4j.time.__file__, "PYMODULE")], tmp_path)


def _archive(tmp_path: Path, patched: bool) -> str:
    from PyInstaller.archive.writers import ZlibArchiveWriter

    toc = [("neo4j", neo4j.__file__, "PYMODULE"), ("neo4j.time", neo4j.time.__file__, "PYMODULE"),
           ("neo4j._codec.packstream.v1", packstream_v1.__file__, "PYMODULE")]
    if patched:
        toc = patches.patch_modules(toc, tmp_path / "patched")
    pyz = str(tmp_path / "test.pyz")
    code = {name: compile(Path(path).read_text(encoding="utf-8"), path, "exec")
            for name, path, _ in toc}
    ZlibArchiveWriter(pyz, toc, code)
    return pyz


def test_check_archive_accepts_the_patched_modules(tmp_path: Path) -> None:
    patches.check_archive(_archive(tmp_path, patched=True))


def test_check_archive_refuses_an_unpatched_driver(tmp_path: Path) -> None:
    with pytest.raises(patches.PatchError, match=r"neo4j\.time is not the patched copy"):
        patches.check_archive(_archive(tmp_path, patched=False))


def _patched_package_init() -> types.ModuleType:
    """neo4j/__init__.py executed from its patched source as a second module of the package:
    its relative imports resolve to the installed (already imported) driver modules."""
    assert neo4j.__file__ is not None
    source = Path(neo4j.__file__).read_text(encoding="utf-8")
    module = types.ModuleType("neo4j")
    module.__dict__.update(__package__="neo4j", __path__=list(neo4j.__path__),
                           __file__=neo4j.__file__)
    exec(compile(patches.patched_source("neo4j", source), neo4j.__file__, "exec"),
         module.__dict__)
    return module


def test_patched_driver_package_offers_the_same_names() -> None:
    patched = _patched_package_init()
    assert "AsyncGraphDatabase" not in vars(patched)  # not imported until asked for
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the deprecated and preview names warn, as they did
        for name in [*neo4j.__all__, "_AsyncHttpDriver", "_HttpDriver"]:
            assert getattr(patched, name) is getattr(neo4j, name), name
    assert dir(patched) == dir(neo4j)
    with pytest.raises(AttributeError, match="no attribute NoSuchName"):
        patched.NoSuchName  # noqa: B018


def test_patched_driver_still_warns_for_the_preview_async_http_driver() -> None:
    patched = _patched_package_init()
    with pytest.warns(neo4j.warnings.PreviewWarning, match="AsyncHttpDriver"):
        assert patched.AsyncHttpDriver is neo4j._AsyncHttpDriver  # type: ignore[attr-defined]


def test_import_neo4j_leaves_the_async_api_out(tmp_path: Path) -> None:
    """A fresh interpreter with the patched package imports no async driver module until asked."""
    script = (
        "import sys, neo4j\n"
        "assert neo4j.__file__.startswith(sys.argv[1]), neo4j.__file__\n"
        "driver = neo4j.GraphDatabase.driver('bolt://127.0.0.1:1', auth=('u', 'p'))\n"
        "driver.close()\n"
        "print(sorted(m for m in sys.modules if m.startswith('neo4j._async.')))\n"
        "neo4j.AsyncGraphDatabase\n"
        "print('neo4j._async.driver' in sys.modules)\n")
    assert neo4j.__file__ is not None
    lines = run_with_patched_copies(
        tmp_path, ["neo4j"],
        {neo4j: patches.patched_source("neo4j", Path(neo4j.__file__).read_text(encoding="utf-8"))},
        script)
    # auth_management: neo4j.auth_management re-exports the async auth managers
    assert lines == ["['neo4j._async.auth_management']", "True"]
