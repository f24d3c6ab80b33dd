"""build/spec/archive_key.py: the digest of a one-file binary's archive (its ELF `pydata`
section) written into the bootloader's placeholder, in place, on a real ELF file made with
objcopy as PyInstaller makes one."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from patched import spec_module

archive_key = spec_module("archive_key")
bootloader_cache = spec_module("bootloader_cache")


def elf_with(tmp_path: Path, placeholders: int = 1) -> tuple[Path, bytes]:
    """A copy of /bin/true with a `pydata` section (the archive) and a section holding the
    placeholder `placeholders` times (as the bootloader's .rodata does once)."""
    archive = bytes(range(256)) * 300 + b"MEI\x0c\x0b\x0a\x0b\x0e"
    (tmp_path / "pkg").write_bytes(archive)
    (tmp_path / "key").write_bytes(b"\0".join([bootloader_cache.KEY_PLACEHOLDER] * placeholders))
    binary = tmp_path / "binary"
    shutil.copyfile(shutil.which("true") or "/bin/true", binary)
    subprocess.run(["objcopy", "--add-section", f"nsrkey={tmp_path / 'key'}",
                    "--add-section", f"pydata={tmp_path / 'pkg'}", str(binary)], check=True)
    return binary, archive


def test_the_stamp_is_the_archive_digest_and_changes_nothing_else(tmp_path: Path) -> None:
    binary, archive = elf_with(tmp_path)
    before = binary.read_bytes()
    assert archive_key.stamped_digest(before) is None
    digest = archive_key.stamp(binary)
    after = binary.read_bytes()
    assert digest == hashlib.sha256(archive).hexdigest()
    assert archive_key.stamped_digest(after) == digest == archive_key.archive_digest(after)
    assert len(after) == len(before)
    changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    at = before.index(bootloader_cache.KEY_PREFIX) + len(bootloader_cache.KEY_PREFIX)
    assert changed and min(changed) >= at and max(changed) < at + 64
    assert archive_key.stamp(binary) == digest and binary.read_bytes() == after  # again: same


def test_no_single_placeholder_or_no_archive_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "two").mkdir()
    binary, _ = elf_with(tmp_path / "two", placeholders=2)
    with pytest.raises(archive_key.StampError, match="no single archive key placeholder"):
        archive_key.stamp(binary)
    plain = tmp_path / "plain"
    shutil.copyfile(shutil.which("true") or "/bin/true", plain)
    with pytest.raises(archive_key.StampError, match="0 sections named pydata, not one"):
        archive_key.stamp(plain)
    text = tmp_path / "text"
    text.write_text("not an ELF file\n")
    assert archive_key.main([str(text)]) == 1
