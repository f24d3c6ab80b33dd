"""PYZ entries stored, not deflated: the modules the start-up paths import (binary only).

PyInstaller deflates every module of the PYZ archive (zlib level 6), and the binary inflates each
one it imports on every start: about 57 M instructions of inflate and 13 M of adler32 in a no-op
rollback. Storing the whole archive would add 5.5 MB, past the binary's size limit, so only
what the start-up paths import is stored: zlib level 0 (stored deflate blocks), which every
zlib reader, PyInstaller's tools among them, still reads (inflating them is copying).

The set is recorded by the build (`record`): fresh interpreters import exactly what the binary
bundles (the TOC's own files: the patched copies, the generated modules, the bundled extension
modules, `base_library.zip`, and nothing else: an excluded module is not found) and run the
tool's commands of RECORDED_RUNS. A command that connects stops at its first `connect`
(nothing listens on port 1), before the refused connection's error path imports what a run that
connects never needs (`asyncio`, `ssl`, `subprocess`...); AFTER_CONNECT names what a connected
run imports after that point, and is imported there instead. `--help` is not recorded: rich,
markdown-it and pygments would add 0.9 MB that only help and usage errors read.
tests/integration/test_pyz_reads.py runs the binary against real servers and fails when a run
reads a deflated entry, or when much of what is stored is never read.

`install` wraps PyInstaller's ZlibArchiveWriter._write_entry so the recorded names are written
at level 0; the build fails when the writer no longer has the shape this relies on, and
`check_archive` checks the written archive.

zlib would still copy a stored entry into its output and its window and compute its adler32
checksum (13 M instructions of a no-op rollback), so the bundled copy of PyInstaller's run-time
reader (`pyimod01_archive`, a bootstrap module in the PKG; `patch_reader`) slices the data out
of the stored blocks itself and hands anything else to zlib as before. The checksum goes
unchecked, as for every entry of the PKG stored uncompressed (libcrypto). Exact text patches,
as driver_patches.py's; `check_reader` checks the built binary.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import bolt_patches
from driver_patches import Patch, PatchError, patched_source

# The commands recorded, each in a fresh interpreter, with RECORD_ENV: `--version` and
# `statements` run to their end, the connected ones until their first connect.
RECORDED_RUNS: tuple[tuple[str, ...], ...] = (
    ("--version",), ("statements",), ("rollback", "--yes"), ("apply",), ("status",),
)
RECORD_ENV = {"NEO4J_URI": "bolt://127.0.0.1:1", "NEO4J_PASSWORD": "x", "NEO4J_WAIT": "0"}
# Every report a run can write, asked for (the paths in a scratch folder): Kubernetes' init jobs
# write the termination message by themselves, GitHub Actions the annotations, CI a JUnit file;
# and what is recorded must not depend on where the build runs (GITHUB_ACTIONS, a writable
# /dev/termination-log).
REPORTS = "junit={scratch}/junit.xml,github,termination={scratch}/termination-log"
# What a connected run imports after its first connect, imported at that point by the recorder:
# `apply` and `status` their duplicate counts (preflight), the driver pytz for the temporal
# values that 5.x and calendar-versioned servers send (SHOW INDEXES' lastRead), and the
# reports' writers, at the run's end; and the driver's protocol modules, imported for the Bolt
# version the connection negotiates (bolt_patches.py), all of them since every line negotiates
# another. Found by running the binary against real servers of every line (the rest of the run
# path, the driver's results included, is imported before the connect);
# tests/integration/test_pyz_reads.py fails when a run reads an entry that is not stored.
BOLT_MODULES = tuple(sorted(set(bolt_patches.versions().values())))
AFTER_CONNECT: tuple[str, ...] = (
    "neo4j_schema_rollback.preflight", "pytz", "neo4j_schema_rollback.reports.junit",
    "neo4j_schema_rollback.reports.github", "neo4j_schema_rollback.reports.termination",
    *(f"{bolt_patches.PACKAGE}.{module}" for module in BOLT_MODULES),
)

# Each TOC entry, as the recorder's interpreter finds it: name, kind, file.
Entry = tuple[str, str, str]  # kind: module, package, namespace or extension

# Run by `python -I -S -B -X utf8 -c CHILD TABLE OUT BASE_LIBRARY AFTER_CONNECT ARG...`. It
# imports nothing from the bundle itself (sys, the import system and io are loaded before any
# code runs; os and what it imports are frozen modules, never read from the archive).
# It writes the names of the bundled modules whose code was read, one a line: what the binary
# reads from its archive (a module already in sys.modules under a name, such as
# importlib._bootstrap, or found frozen, is never read there).
CHILD = r'''
import sys
import os
from _frozen_importlib import BuiltinImporter, FrozenImporter, ModuleSpec
from _frozen_importlib_external import ExtensionFileLoader, PathFinder, SourceFileLoader

table, out, base_library, after_connect, *argv = sys.argv[1:]
bundle = {}
read = set()
with open(table, encoding="utf-8") as handle:
    for line in handle.read().splitlines():
        name, kind, path = line.split("\t")
        bundle[name] = (kind, path)


class BundleLoader(SourceFileLoader):
    """Notes each module whose code is read: the binary reads it from its archive there."""

    def get_code(self, fullname):
        read.add(fullname)
        return super().get_code(fullname)


class BundleFinder:
    """The TOC's files, as the binary's archive holds them; a submodule of a bundled package
    that the TOC lacks was excluded, and is not found on disk either."""

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        found = bundle.get(name)
        if found is None:
            if name.rpartition(".")[0] in bundle:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None
        kind, file = found
        if kind == "namespace":
            return ModuleSpec(name, None, is_package=True)
        loader = (ExtensionFileLoader if kind == "extension" else BundleLoader)(name, file)
        spec = ModuleSpec(name, loader, origin=file, is_package=kind == "package")
        spec.has_location = True
        if kind == "package":
            spec.submodule_search_locations = [os.path.dirname(file)]
        return spec


def done():
    with open(out, "w", encoding="utf-8") as handle:
        handle.write("".join(name + "\n" for name in sorted(read)))
    sys.stdout.flush()
    os._exit(0)


def audit(event, args):
    if event == "socket.connect":
        for name in filter(None, after_connect.split(",")):
            __import__(name)
        done()


sys.path[:] = [base_library]
sys.path_importer_cache.clear()
sys.meta_path[:] = [BuiltinImporter, FrozenImporter, BundleFinder, PathFinder]
sys.addaudithook(audit)
from neo4j_schema_rollback.main import run

code = run(argv)
if code != 0 or argv[0] not in ("--version", "statements"):
    sys.stderr.write(f"pyz_stored: {argv} exited {code} without connecting\n")
    sys.stderr.flush()
    os._exit(3)
done()
'''


def toc_entries(pure: Iterable[tuple[str, str, str]],
                binaries: Iterable[tuple[str, str, str]]) -> list[Entry]:
    """The Analysis' pure modules and extension modules as the recorder finds them."""
    entries = []
    for name, path, _ in pure:
        if path in ("-", None):
            entries.append((name, "namespace", ""))
        else:
            kind = "package" if Path(path).name == "__init__.py" else "module"
            entries.append((name, kind, str(Path(path).resolve())))
    for dest, path, typecode in binaries:
        if typecode == "EXTENSION":
            entries.append((extension_name(dest), "extension", str(Path(path).resolve())))
    return entries


def extension_name(dest: str) -> str:
    """The module name of an extension by its destination: the binary's sys.path holds its
    folder and `python3.X/lib-dynload` in it."""
    parts = Path(dest).parts
    if "lib-dynload" in parts:
        parts = parts[parts.index("lib-dynload") + 1:]
    return ".".join([*parts[:-1], parts[-1].split(".")[0]])


def record(entries: Iterable[Entry], base_library: str,
           runs: tuple[tuple[str, ...], ...] = RECORDED_RUNS,
           after_connect: tuple[str, ...] = AFTER_CONNECT, python: str = sys.executable,
           run: Callable[..., Any] = subprocess.run) -> set[str]:
    """The bundled modules whose code `runs` read (see CHILD), together."""
    recorded: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="pyz-stored-") as scratch:
        table = Path(scratch) / "toc.tsv"
        table.write_text("".join(f"{name}\t{kind}\t{path}\n" for name, kind, path in entries),
                         encoding="utf-8")
        out = Path(scratch) / "modules.txt"
        # The developer's NEO4J_* variables must not change the imports (TLS settings would
        # import ssl); the rest stays (Windows needs SYSTEMROOT to open a socket).
        env = {**{key: value for key, value in os.environ.items()
                  if not key.upper().startswith("NEO4J_")}, "HOME": scratch, **RECORD_ENV,
               "NEO4J_REPORT": REPORTS.format(scratch=Path(scratch).as_posix())}
        for argv in runs:
            proc = run([python, "-I", "-S", "-B", "-X", "utf8", "-c", CHILD, str(table), str(out),
                        base_library, ",".join(after_connect), *argv],
                       cwd=scratch, env=env, capture_output=True, text=True, check=False)
            if proc.returncode != 0 or not out.exists():
                raise SystemExit(f"pyz_stored: recording {' '.join(argv)} failed "
                                 f"(exit {proc.returncode}):\n{proc.stderr}")
            recorded |= set(out.read_text(encoding="utf-8").split())
            out.unlink()
    return recorded


# The one line of ZlibArchiveWriter._write_entry that compresses an entry.
COMPRESS = "obj = zlib.compress(data, cls._COMPRESSION_LEVEL)"


def install(stored: frozenset[str], writer: type | None = None) -> None:
    """Make ZlibArchiveWriter write the entries named in `stored` at zlib level 0: its
    `_write_entry` (a classmethod reading the level from `cls`) is called with a subclass whose
    level is 0 for those. Fails unless the writer is that shape."""
    if writer is None:
        from PyInstaller.archive.writers import ZlibArchiveWriter

        writer = ZlibArchiveWriter
    method = writer.__dict__.get("_write_entry")
    if not isinstance(method, classmethod):
        raise PatchError(f"{writer.__qualname__}._write_entry is not a classmethod")
    if getattr(method.__func__, "_nsr_stored", None) is not None:
        raise PatchError(f"{writer.__qualname__}._write_entry is wrapped already")
    source = inspect.getsource(method.__func__)
    if source.count(COMPRESS) != 1 or source.count("zlib.") != 1 \
            or not isinstance(getattr(writer, "_COMPRESSION_LEVEL", None), int):
        raise PatchError(f"{writer.__qualname__}._write_entry no longer compresses with "
                         f"`{COMPRESS}` alone")
    original = method.__func__
    stored_writer = type("StoredZlibArchiveWriter", (writer,), {"_COMPRESSION_LEVEL": 0})

    def _write_entry(cls: type, fp: Any, entry: tuple[str, str, str], code_dict: Any) -> Any:
        return original(stored_writer if entry[0] in stored else cls, fp, entry, code_dict)

    _write_entry._nsr_stored = stored  # type: ignore[attr-defined]
    writer._write_entry = classmethod(_write_entry)


def is_stored(blob: bytes) -> bool:
    """Whether a zlib stream is level 0's: its data in stored blocks, nothing deflated."""
    return blob == zlib.compress(zlib.decompress(blob), 0)


def check_archive(pyz: str, stored: Iterable[str]) -> None:
    """Fail unless every entry of `stored` is in the built archive, written at level 0."""
    from PyInstaller.loader.pyimod01_archive import PYZ_ITEM_NSPKG, ZlibArchiveReader

    archive = ZlibArchiveReader(pyz)
    with open(pyz, "rb") as handle:
        for name in sorted(stored):
            entry = archive.toc.get(name)
            if entry is None:
                raise PatchError(f"{pyz}: no {name} to store")
            typecode, offset, length = entry
            if typecode == PYZ_ITEM_NSPKG:  # no data: nothing to inflate
                continue
            handle.seek(offset)
            if not is_stored(handle.read(length)):
                raise PatchError(f"{pyz}: {name} is deflated, not stored")


def stored_names(recorded: Iterable[str], archived: Mapping[str, Any] | Iterable[str]) -> \
        frozenset[str]:
    """The recorded modules that the PYZ archive holds (the others are built in, frozen, in
    base_library.zip or extension modules)."""
    return frozenset(recorded) & frozenset(archived)



# PyInstaller's run-time reader of the PYZ archive (a bootstrap module, bundled in the PKG).
READER = "pyimod01_archive"
READER_FUNCTION = Patch(
    module=READER,
    original='''

class ArchiveReadError(RuntimeError):
    pass
''',
    replacement='''

# neo4j-schema-rollback build patch: the data of an entry written at zlib level 0.
def _nsr_stored_data(blob):
    """The data of a zlib stream of stored blocks only (zlib level 0), else None."""
    if blob[:2] != b"\\x78\\x01":
        return None
    parts = []
    pos = 2
    end = len(blob) - 4  # the adler32 checksum, not checked: PKG entries have none either
    final = 0
    while not final:
        if pos + 5 > end or blob[pos] > 1:  # a deflated block, or no block header
            return None
        final = blob[pos]
        length = blob[pos + 1] | blob[pos + 2] << 8
        if blob[pos + 3] | blob[pos + 4] << 8 != length ^ 0xFFFF:
            return None
        pos += 5 + length
        parts.append(blob[pos - length:pos])
    if pos != end:
        return None
    return parts[0] if len(parts) == 1 else b"".join(parts)


class ArchiveReadError(RuntimeError):
    pass
''',
)
READER_EXTRACT = Patch(
    module=READER,
    original='''
        try:
            obj = zlib.decompress(obj)
''',
    replacement='''
        try:
            # neo4j-schema-rollback build patch: an entry written at zlib level 0 is sliced out of
            # its stored blocks; zlib would copy it to its window too and compute its checksum.
            obj = _nsr_stored_data(obj) or zlib.decompress(obj)
''',
)
READER_PATCHES = (READER_FUNCTION, READER_EXTRACT)
READER_MARKER = "_nsr_stored_data"


def reader_source() -> str:
    """PyInstaller's run-time reader, patched."""
    from PyInstaller.loader import pyimod01_archive

    original = Path(pyimod01_archive.__file__).read_text(encoding="utf-8")
    return patched_source(READER, original, READER_PATCHES)


def patch_reader(dependencies: list[tuple[str, str, str]], out: Path) -> \
        list[tuple[str, str, str]]:
    """PYZ.dependencies (the bootstrap modules for the PKG) with the patched reader, compiled
    into `out`, in place of PyInstaller's."""
    from PyInstaller.building.utils import compile_pymodule

    source = out / f"{READER}.py"
    out.mkdir(parents=True, exist_ok=True)
    source.write_text(reader_source(), encoding="utf-8")
    result, found = [], False
    for name, path, typecode in dependencies:
        if name == READER and typecode == "PYMODULE":
            path, found = compile_pymodule(READER, str(source), str(out), optimize=0), True
        result.append((name, path, typecode))
    if not found:
        raise PatchError(f"no {READER} among PyInstaller's bootstrap modules")
    return result


def check_reader(executable: str) -> None:
    """Fail unless the built executable's PKG holds the patched reader."""
    import marshal

    from PyInstaller.archive.readers import CArchiveReader

    code = marshal.loads(CArchiveReader(executable).extract(READER))
    if READER_MARKER not in code.co_names:
        raise PatchError(f"{executable}: {READER} is not the patched copy")
