"""The PYZ entries the binary's start-up paths import, stored instead of deflated
(build/spec/pyz_stored.py): the writer's patch, the archive check and the recorder."""

from __future__ import annotations

import marshal
import sys
import types
import zlib
from pathlib import Path

import pytest
from PyInstaller.archive.writers import ZlibArchiveWriter  # type: ignore[import-untyped]
from PyInstaller.loader.pyimod01_archive import ZlibArchiveReader  # type: ignore[import-untyped]

from patched import spec_module

pyz_stored = spec_module("pyz_stored")
PatchError = spec_module("driver_patches").PatchError


def _writer() -> type:
    """A subclass of PyInstaller's writer with its own copy of _write_entry to patch."""
    return type("Writer", (ZlibArchiveWriter,),
                {"_write_entry": ZlibArchiveWriter.__dict__["_write_entry"]})


def _archive(tmp_path: Path, writer: type, names: list[str]) -> tuple[str, dict[str, int]]:
    """A PYZ of one module per name (the last one large, over one stored block of 64 KiB)."""
    sources = {name: f"NAME = {name!r}\n" for name in names}
    sources[names[-1]] += "".join(f"VALUE_{i} = {i * 7919}\n" for i in range(12_000))
    entries, code = [], {}
    for name, source in sources.items():
        path = tmp_path / f"{name}.py"
        path.write_text(source, encoding="utf-8")
        entries.append((name, str(path), "PYMODULE"))
        code[name] = compile(source, str(path), "exec")
    pyz = str(tmp_path / "test.pyz")
    writer(pyz, entries, code_dict=code)
    return pyz, {name: len(marshal.dumps(code[name])) for name in names}


def _blob(pyz: str, name: str) -> bytes:
    _, offset, length = ZlibArchiveReader(pyz).toc[name]
    with open(pyz, "rb") as handle:
        handle.seek(offset)
        return handle.read(length)


def test_the_named_entries_are_stored_and_read_back_unchanged(tmp_path: Path) -> None:
    writer = _writer()
    pyz_stored.install(frozenset({"a", "big"}), writer)
    pyz, data = _archive(tmp_path, writer, ["a", "b", "big"])
    assert data["big"] > 65_535  # more than one stored block
    reader = ZlibArchiveReader(pyz)
    for name in ("a", "b", "big"):
        namespace: dict[str, object] = {}
        exec(reader.extract(name), namespace)
        assert namespace["NAME"] == name
    assert namespace["VALUE_11999"] == 11_999 * 7919
    assert pyz_stored.is_stored(_blob(pyz, "a")) and pyz_stored.is_stored(_blob(pyz, "big"))
    assert not pyz_stored.is_stored(_blob(pyz, "b"))
    assert len(_blob(pyz, "b")) < data["b"]  # still deflated at level 6
    pyz_stored.check_archive(pyz, {"a", "big"})
    with pytest.raises(PatchError, match="b is deflated"):
        pyz_stored.check_archive(pyz, {"a", "b"})
    with pytest.raises(PatchError, match="no c to store"):
        pyz_stored.check_archive(pyz, {"c"})


def test_pyinstallers_own_writer_is_the_shape_the_patch_expects() -> None:
    """The installed PyInstaller: a classmethod compressing at cls._COMPRESSION_LEVEL once."""
    pyz_stored.install(frozenset(), _writer())


def test_a_writer_of_another_shape_fails_the_build(tmp_path: Path) -> None:
    def compressing(source: str) -> type:
        path = tmp_path / "other_writer.py"  # inspect reads the source from the file
        path.write_text(source, encoding="utf-8")
        namespace: dict[str, object] = {"zlib": zlib}
        exec(compile(source, str(path), "exec"), namespace)
        return type("Other", (), {"_COMPRESSION_LEVEL": 6,
                                  "_write_entry": classmethod(namespace["_write_entry"])})

    source = ("def _write_entry(cls, fp, entry, code_dict):\n"
              "    data = b''\n"
              "    obj = zlib.compress(data, {level})\n")
    with pytest.raises(PatchError, match="no longer compresses"):
        pyz_stored.install(frozenset(), compressing(source.format(level=9)))
    plain = type("Plain", (), {"_COMPRESSION_LEVEL": 6,
                               "_write_entry": staticmethod(lambda fp, entry, code: None)})
    with pytest.raises(PatchError, match="not a classmethod"):
        pyz_stored.install(frozenset(), plain)
    writer = _writer()
    pyz_stored.install(frozenset(), writer)
    with pytest.raises(PatchError, match="wrapped already"):
        pyz_stored.install(frozenset(), writer)


@pytest.mark.parametrize(("dest", "name"), [
    ("python3.11/lib-dynload/_socket.cpython-311-x86_64-linux-gnu.so", "_socket"),
    ("lib-dynload/math.cpython-311-darwin.so", "math"),
    ("charset_normalizer/md.cpython-311-x86_64-linux-gnu.so", "charset_normalizer.md"),
])
def test_extension_names(dest: str, name: str) -> None:
    assert pyz_stored.extension_name(dest) == name


def _bundle(tmp_path: Path) -> list[tuple[str, str, str]]:
    """A bundle of a fake tool: `statements` imports `early`; `rollback` imports `early`, then
    connects (the audit event of a socket's connect), then imports `late`; `status` returns
    without connecting; `excluded.gone` is on disk but not bundled."""
    files = {
        "neo4j_schema_rollback/__init__.py": "",
        "neo4j_schema_rollback/main.py": (
            "import sys\n"
            "def run(argv):\n"
            "    import early\n"
            "    try:\n"
            "        import excluded.gone\n"
            "    except ModuleNotFoundError:\n"
            "        pass\n"
            "    else:\n"
            "        raise SystemExit('an excluded module was found')\n"
            "    if argv == ['statements']:\n"
            "        return 0\n"
            "    if argv == ['status']:\n"
            "        return 1\n"
            "    sys.audit('socket.connect', None, ('127.0.0.1', 1))\n"
            "    import late\n"
            "    return 1\n"),
        "early.py": "import os\n",
        "late.py": "",
        "after.py": "import after_dependency\n",
        "after_dependency.py": "",
        "excluded/__init__.py": "",
        "excluded/gone.py": "",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    pure = [(name.removesuffix("/__init__.py").removesuffix(".py").replace("/", "."),
             str(tmp_path / name), "PYMODULE") for name in files if name != "excluded/gone.py"]
    return pyz_stored.toc_entries(pure, [])


def test_the_recorder_reads_what_the_bundle_imports_until_the_first_connect(
        tmp_path: Path) -> None:
    base_library = tmp_path / "base_library"
    base_library.mkdir()
    recorded = pyz_stored.record(_bundle(tmp_path / "bundle"), str(base_library),
                                 runs=(("statements",), ("rollback", "--yes")),
                                 after_connect=("after",))
    # os is frozen: never read from the archive; late comes after the connect
    assert recorded == {"neo4j_schema_rollback", "neo4j_schema_rollback.main", "early",
                        "excluded", "after", "after_dependency"}


def test_a_connected_command_that_never_connects_fails_the_build(tmp_path: Path) -> None:
    base_library = tmp_path / "base_library"
    base_library.mkdir()
    with pytest.raises(SystemExit, match=r"recording status failed \(exit 3\)"):
        pyz_stored.record(_bundle(tmp_path / "bundle"), str(base_library),
                          runs=(("status",),), after_connect=())


def test_stored_names_are_the_recorded_modules_in_the_archive() -> None:
    assert pyz_stored.stored_names({"a", "os", "b"}, ["a", "b", "c"]) == frozenset({"a", "b"})


def test_the_recorder_imports_nothing_from_the_bundle() -> None:
    """CHILD imports only modules built into or frozen into the interpreter, never one that the
    binary reads from its archive (on every platform the spec builds on)."""
    import _imp

    imported = _names(compile(pyz_stored.CHILD, "<child>", "exec"))
    imported.discard("neo4j_schema_rollback.main")
    assert imported == {"sys", "os", "_frozen_importlib", "_frozen_importlib_external"}
    assert all(name in sys.builtin_module_names or _imp.is_frozen(name) for name in imported)


def _names(code: types.CodeType) -> set[str]:
    """The modules an `import` statement of `code` names."""
    import dis

    names = {instruction.argval for instruction in dis.get_instructions(code)
             if instruction.opname == "IMPORT_NAME"}
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names



@pytest.fixture(scope="module")
def patched_reader() -> types.ModuleType:
    """PyInstaller's run-time reader as the binary bundles it (the patched copy)."""
    module = types.ModuleType(pyz_stored.READER)
    exec(compile(pyz_stored.reader_source(), f"{pyz_stored.READER}.py", "exec"), module.__dict__)
    return module


@pytest.mark.parametrize("size", [0, 1, 1000, 65_535, 65_536, 131_070, 131_071, 300_000])
def test_stored_data_is_what_zlib_inflates(patched_reader: types.ModuleType, size: int) -> None:
    data = bytes(range(256)) * (size // 256 + 1)
    data = data[:size]
    assert patched_reader._nsr_stored_data(zlib.compress(data, 0)) == data
    if size:
        assert patched_reader._nsr_stored_data(zlib.compress(data, 6)) is None


def test_anything_but_an_intact_stored_stream_goes_to_zlib(
        patched_reader: types.ModuleType) -> None:
    blob = zlib.compress(b"x" * 100_000, 0)
    cut = patched_reader._nsr_stored_data
    assert cut(blob[:-1]) is None  # truncated
    assert cut(blob + b"\0") is None  # trailing bytes
    assert cut(blob[:3] + b"\0" + blob[4:]) is None  # LEN and NLEN disagree
    assert cut(b"\x78\x9c" + blob[2:]) is None  # not level 0's header
    assert cut(blob[:2] + bytes([blob[2] | 0b100]) + blob[3:]) is None  # a deflated block
    assert cut(b"") is None


def test_the_patched_reader_reads_every_entry_as_pyinstallers_does(
        tmp_path: Path, patched_reader: types.ModuleType) -> None:
    writer = _writer()
    pyz_stored.install(frozenset({"a", "big"}), writer)
    pyz, _ = _archive(tmp_path, writer, ["a", "b", "big"])
    ours, theirs = patched_reader.ZlibArchiveReader(pyz), ZlibArchiveReader(pyz)
    for name in ("a", "b", "big"):
        assert ours.extract(name, raw=True) == theirs.extract(name, raw=True)
        assert ours.extract(name) == theirs.extract(name)


def test_a_changed_reader_fails_the_build() -> None:
    from PyInstaller.loader import pyimod01_archive  # type: ignore[import-untyped]

    source = Path(pyimod01_archive.__file__).read_text(encoding="utf-8")
    patches = spec_module("driver_patches")
    for old, new in (("obj = zlib.decompress(obj)\n", "obj = zlib.decompress(obj, 15)\n"),
                     ("class ArchiveReadError(RuntimeError):", "class ArchiveError(Exception):")):
        assert source.count(old) == 1
        with pytest.raises(PatchError, match="occurs 0 times"):
            patches.patched_source(pyz_stored.READER, source.replace(old, new),
                                   pyz_stored.READER_PATCHES)


def test_the_bootstrap_modules_get_the_patched_reader(tmp_path: Path) -> None:
    dependencies = [("struct", "/x/struct.pyc", "PYMODULE"),
                    (pyz_stored.READER, "/x/pyimod01_archive.pyc", "PYMODULE"),
                    ("pyiboot01_bootstrap", "/x/pyiboot01_bootstrap.py", "PYSOURCE")]
    result = pyz_stored.patch_reader(dependencies, tmp_path)
    assert [entry for entry in result if entry[0] != pyz_stored.READER] == \
        [entry for entry in dependencies if entry[0] != pyz_stored.READER]
    [(_, pyc, typecode)] = [entry for entry in result if entry[0] == pyz_stored.READER]
    assert typecode == "PYMODULE" and Path(pyc).is_relative_to(tmp_path)
    code = marshal.loads(Path(pyc).read_bytes()[16:])  # after the .pyc header
    assert pyz_stored.READER_MARKER in code.co_names
    with pytest.raises(PatchError, match="no pyimod01_archive"):
        pyz_stored.patch_reader(dependencies[:1], tmp_path / "none")
