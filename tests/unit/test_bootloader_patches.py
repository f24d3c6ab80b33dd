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
bootloader_cache = spec_module("bootloader_cache")
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


def _patched(sdist: Path) -> dict[str, str]:
    """Each patched file's text, every upstream text checked to occur exactly once."""
    texts = {}
    for name in bootloader_patches.FILES:
        source = (sdist / name).read_text(encoding="utf-8")
        for patch in bootloader_patches.PATCHES:
            if patch.module == name:
                assert source.count(patch.original) == 1, patch.original[:60]
        texts[name] = driver_patches.patched_source(name, source, bootloader_patches.PATCHES)
    return texts


def test_each_upstream_text_occurs_once_and_is_replaced(sdist: Path) -> None:
    """The upstream search over $TMPDIR, $TEMP, $TMP, /tmp, /var/tmp and /usr/tmp is gone; the
    patched function tries the unpack cache, then the documented candidates, and exits 73
    when none will do."""
    assert bootloader_patches.FILES == (bootloader_patches.FILE, bootloader_cache.MAIN,
                                        bootloader_cache.SECURITY, bootloader_cache.ARCHIVE)
    patched = _patched(sdist)[bootloader_patches.FILE]
    assert "Check the standard temporary directory paths" not in patched
    assert ("    if (_nsr_use_cache(pyi_ctx) == 0) {\n        return 0;\n    }\n"
            "    return _nsr_create_application_directory(pyi_ctx);") in patched
    assert re.search(r'labels\[4\] = \{"TMPDIR", "XDG_RUNTIME_DIR", "the binary\'s directory",'
                     r'\s+"HOME/.cache"\}', patched)
    assert "exit(73);" in patched
    assert "ST_NOEXEC" in patched and "PROT_EXEC" in patched


def test_the_cache_patch_reaches_every_step_of_the_parent_and_the_child(sdist: Path) -> None:
    """The parent execs the application when the cache is warm, skips extraction and removal
    when a first run fills it, syncs while the application runs; the child accepts the cache's
    directory names (a digest, a staging directory) outside privileged mode only."""
    patched = _patched(sdist)
    main = patched[bootloader_cache.MAIN]
    assert "return pyi_nsr_exec_application(pyi_ctx);" in main
    assert ("if (!pyi_nsr_unpack_cache_filling() && "
            "pyi_launch_extract_files_from_archive(pyi_ctx) < 0)") in main
    assert "pyi_nsr_finish_fill();\n    } else if (pyi_main_onefile_parent_cleanup" in main
    utils = patched[bootloader_patches.FILE]
    assert "_nsr_sync_fill(); /*" in utils and utils.index("_nsr_sync_fill();") < utils.index(
        "wait_rc = waitpid(child_pid, &rc, 0);")
    assert utils.count(bootloader_cache.KEY_PLACEHOLDER.decode()) == 1
    for variable in (bootloader_cache.CACHE_DIR_VARIABLE, bootloader_cache.NO_CACHE_VARIABLE,
                     "XDG_CACHE_HOME"):
        assert f'pyi_getenv("{variable}")' in utils
    security = patched[bootloader_cache.SECURITY]
    assert "if (!pyi_ctx->has_elevated_privileges\n        && ((name_len == 64" in security


def test_a_fill_starts_each_file_s_writeback_as_it_is_unpacked(sdist: Path) -> None:
    """Only while a fill unpacks (the flag is set around that extraction alone), after the
    file's data is complete and flushed; SYNC_FILE_RANGE_WRITE starts writing, the fsync of
    every file later makes the copy durable as before."""
    patched = _patched(sdist)
    utils = patched[bootloader_patches.FILE]
    assert ("        pyi_nsr_writeback = 1;\n"
            "        ok = pyi_launch_extract_files_from_archive(pyi_ctx) == 0;\n"
            "        pyi_nsr_writeback = 0;\n") in utils
    assert utils.count("pyi_nsr_writeback = 1;") == 1
    assert utils.count("pyi_launch_extract_files_from_archive(") == 1
    archive = patched[bootloader_cache.ARCHIVE]
    assert "extern int pyi_nsr_writeback;" in archive
    writeback = ("    if (rc == 0 && pyi_nsr_writeback && fflush(out_fp) == 0) {\n"
                 "        syscall(SYS_sync_file_range, fileno(out_fp), (long long)0, "
                 "(long long)0, 2u);\n")
    assert archive.count(writeback) == 1
    assert archive.index("fchmod(fileno(out_fp), S_IRUSR | S_IWUSR);") < archive.index(writeback)
    assert archive.index(writeback) < archive.index("cleanup:\n", archive.index(writeback))


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
    assert run.read_bytes().count(bootloader_cache.KEY_PLACEHOLDER) == 1
