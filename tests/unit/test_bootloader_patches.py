"""The patched PyInstaller bootloader (build/spec/bootloader_patches.py) against the sources of
the sdist uv.lock pins: each upstream text occurs once, a changed one fails the build, and the
patched sources build with PyInstaller's own waf, zlib static. What the bootloader then does
on noexec and foreign-owned directories: tests/integration/test_binary.py and test_arm64.py."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from patched import spec_module

ROOT = Path(__file__).resolve().parents[2]
bootloader_patches = spec_module("bootloader_patches")
driver_patches = spec_module("driver_patches")


@pytest.fixture(scope="module")
def sdist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pinned sdist, unpacked (build/portable/fetch-pyinstaller: the lock's file and hash,
    kept in the portable build's cache)."""
    cache = Path(os.environ.get("NSR_CACHE_DIR", "/var/cache/neo4j-schema-rollback"))
    proc = subprocess.run([str(ROOT / "build" / "portable" / "fetch-pyinstaller"),
                           str(cache / "pyinstaller-sdist")], capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    tarball, version, _ = proc.stdout.splitlines()
    out = tmp_path_factory.mktemp("sdist")
    with tarfile.open(tarball) as archive:
        archive.extractall(out, filter="data")
    return out / f"pyinstaller-{version}"


def test_each_upstream_text_occurs_once_and_is_replaced(sdist: Path) -> None:
    """The upstream search over $TMPDIR, $TEMP, $TMP, /tmp, /var/tmp and /usr/tmp is gone; the
    patched function tries the documented candidates and exits 73 when none will do."""
    source = (sdist / bootloader_patches.FILE).read_text(encoding="utf-8")
    for patch in bootloader_patches.PATCHES:
        assert source.count(patch.original) == 1, patch.original[:60]
    patched = driver_patches.patched_source(bootloader_patches.FILE, source,
                                            bootloader_patches.PATCHES)
    assert "Check the standard temporary directory paths" not in patched
    assert "return _nsr_create_application_directory(pyi_ctx);" in patched
    assert re.search(r'labels\[4\] = \{"TMPDIR", "XDG_RUNTIME_DIR", "the binary\'s directory",'
                     r'\s+"HOME/.cache"\}', patched)
    assert "exit(73);" in patched
    assert "ST_NOEXEC" in patched and "PROT_EXEC" in patched


def test_a_changed_bootloader_fails_the_build(sdist: Path) -> None:
    source = (sdist / bootloader_patches.FILE).read_text(encoding="utf-8")
    changed = source.replace("/* Check the standard environment variables */",
                             "/* Check the environment variables */")
    assert changed != source
    with pytest.raises(driver_patches.PatchError, match="occurs 0 times"):
        driver_patches.patched_source(bootloader_patches.FILE, changed,
                                      bootloader_patches.PATCHES)


def test_the_patched_bootloader_builds_with_static_zlib(sdist: Path) -> None:
    """PyInstaller's documented build (`./waf all`, --static-zlib) of the patched tree: the
    bootloader needs no libz, only glibc's libraries."""
    subprocess.run([sys.executable, str(ROOT / "build" / "spec" / "bootloader_patches.py"),
                    str(sdist)], check=True)
    proc = subprocess.run([sys.executable, "./waf", "--static-zlib", "--no-tests", "all"],
                          cwd=sdist / "bootloader", capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run = sdist / "bootloader" / "build" / "release" / "run"
    dynamic = subprocess.run([shutil.which("readelf") or "readelf", "-d", str(run)],
                             capture_output=True, text=True, check=True).stdout
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+)\]", dynamic)
    assert needed and set(needed) <= {"libc.so.6", "libdl.so.2", "libpthread.so.0", "libm.so.6"}
    assert b"no directory to unpack into" in run.read_bytes()
