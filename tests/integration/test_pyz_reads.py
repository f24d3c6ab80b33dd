"""The binary stores, not deflates, the PYZ entries its commands read (build/spec/pyz_stored.py).

Each command runs for real against a server of every line holding none of the tool's objects,
traced (strace, following the bootloader into the process it starts): every offset of the
binary that it seeks to is one entry of its PYZ archive read. None may be deflated: a module a
connected run imports after its first connect, which the build's recorder does not reach, must
be named in pyz_stored.AFTER_CONNECT. And little may be stored that no command reads: stored
bytes count against the binary's size limit (16 MB), which is checked too.

Both builds: the portable binary (what ships) and the host build (scripts/build-binary).
"""

from __future__ import annotations

import re
import subprocess
import zlib
from pathlib import Path
from typing import Any

import pytest
from db import env_for
from PyInstaller.archive.readers import CArchiveReader  # type: ignore[import-untyped]
from tool import ensure_binary, system_tool

# Each command as it runs unattended (stdout a pipe), no-ops on an empty database, with the
# reports that write themselves: the rollback as a Kubernetes init job (a writable termination
# log), `status` as a GitHub Actions step, `apply` with a JUnit file.
COMMANDS: tuple[tuple[tuple[str, ...], dict[str, str]], ...] = (
    (("--version",), {}),
    (("statements",), {}),
    (("rollback", "--yes"), {"NEO4J_TERMINATION_LOG": "{tmp}/termination-log"}),
    (("apply", "--dry-run", "--report", "junit={tmp}/junit.xml"), {}),
    (("status",), {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": "{tmp}/summary.md"}),
)
# Stored but read by none of COMMANDS on one line: pytz (55 KB) on 4.4, whose SHOW INDEXES
# sends no temporal value. More than this is a recorded import that no command needs.
UNREAD_BUDGET = 64 * 1024
# ... beside the driver's modules of the Bolt versions this line does not speak (its protocol
# classes, and the PackStream and hydration modules only they import: bolt_patches.py), which
# another line reads.
OTHER_BOLT_VERSIONS = re.compile(
    r"neo4j\._sync\.io\._bolt\._bolt\d|neo4j\._codec\.(hydration\.bolt|packstream)\.v\d+(\..*)?")
SIZE_LIMIT = 16_000_000  # bytes, of a release binary: what is stored counts against it


@pytest.fixture(scope="module", params=["portable", "host"])
def binary(request: pytest.FixtureRequest) -> Path:
    return ensure_binary(portable=request.param == "portable")


def _pyz(binary: Path) -> Any:
    """The binary's embedded PYZ archive, read with PyInstaller's own reader."""
    archive = CArchiveReader(str(binary))
    [name] = [name for name, entry in archive.toc.items() if entry[-1] == "z"]
    return archive.open_embedded_archive(name)


def _entries(binary: Path) -> dict[str, tuple[bool, int]]:
    """Name -> (stored, length of its data) of every PYZ entry that has data."""
    pyz = _pyz(binary)
    entries = {}
    with binary.open("rb") as handle:
        for name, (_, offset, length) in pyz.toc.items():
            if length:
                handle.seek(pyz._start_offset + offset)
                data = zlib.decompress(blob := handle.read(length))
                entries[name] = (blob == zlib.compress(data, 0), len(data))
    return entries


def _read(binary: Path, args: tuple[str, ...], env: dict[str, str], trace: Path) -> set[str]:
    """The PYZ entries that one run of the binary reads: the offsets of the binary it seeks to
    (PyInstaller's reader opens the binary, seeks to an entry and reads it)."""
    pyz = _pyz(binary)
    offsets = {pyz._start_offset + offset: name for name, (_, offset, length) in pyz.toc.items()
               if length}
    path = binary.resolve()
    proc = subprocess.run([system_tool("strace"), "-f", "-qq", "-P", str(path), "-e",
                           "trace=lseek", "-o", str(trace), str(path), *args],
                          env=env, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL, check=False)
    assert proc.returncode == 0, f"{args}: exit {proc.returncode}\n{proc.stdout}{proc.stderr}"
    seeks = re.findall(r"lseek\(\d+, (\d+), SEEK_SET", trace.read_text(encoding="utf-8"))
    return {offsets[int(offset)] for offset in seeks if int(offset) in offsets}


def test_every_entry_a_command_reads_is_stored(binary: Path, clean_neo4j: Any,
                                                tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **env_for(clean_neo4j)}
    (tmp_path / "termination-log").touch()  # Kubernetes creates it; the tool writes it if it can
    read: set[str] = set()
    for args, extra in COMMANDS:
        read |= _read(binary, tuple(arg.format(tmp=tmp_path) for arg in args),
                      {**env, **{key: value.format(tmp=tmp_path) for key, value in extra.items()}},
                      tmp_path / "trace")
    assert (tmp_path / "termination-log").stat().st_size > 0
    assert (tmp_path / "junit.xml").exists() and (tmp_path / "summary.md").exists()
    entries = _entries(binary)
    assert {"neo4j_schema_rollback.main", "neo4j._sync.work.result", "cyclopts",
            "neo4j_schema_rollback.reports.termination"} <= read
    deflated = sorted(name for name in read if not entries[name][0])
    assert deflated == [], (f"{binary.name} reads deflated PYZ entries on {clean_neo4j.version}:"
                            " add what a connected run imports to pyz_stored.AFTER_CONNECT")
    unread = {name: length for name, (stored, length) in entries.items()
              if stored and name not in read and not OTHER_BOLT_VERSIONS.fullmatch(name)}
    assert sum(unread.values()) <= UNREAD_BUDGET, f"stored but never read: {sorted(unread)}"


def test_the_binary_stays_within_its_size_limit(binary: Path) -> None:
    """Storing all of the PYZ would break it (5.5 MB more); the start-up modules add 2.5 MB."""
    assert binary.stat().st_size <= SIZE_LIMIT
