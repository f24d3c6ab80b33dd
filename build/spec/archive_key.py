"""Write the SHA-256 of a one-file binary's archive into its bootloader (the portable Linux build:
bootloader_cache.py), after PyInstaller has built it.

On Linux PyInstaller puts the archive into the ELF section `pydata`; the patched bootloader
holds a placeholder (bootloader_cache.KEY_PLACEHOLDER) where this writes the digest of that
section's bytes, in place: the archive itself does not change, so the digest stays true, and
the same inputs give the same binary. The bootloader names its unpack cache by the digest.

`python3 build/spec/archive_key.py BINARY` stamps BINARY and prints the digest;
`--show BINARY` prints the stamped digest and the one its archive has, without writing.
"""

from __future__ import annotations

import hashlib
import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bootloader_cache import KEY_PLACEHOLDER, KEY_PREFIX

SECTION = b"pydata"


class StampError(Exception):
    """The binary cannot be stamped: not an ELF file with one `pydata` section, or no (or more
    than one) placeholder."""


def _section(data: bytes, wanted: bytes) -> tuple[int, int]:
    """(offset, size) of the ELF section named `wanted` in `data` (ELF32/64, either byte order)."""
    if data[:4] != b"\x7fELF":
        raise StampError("not an ELF file")
    wide = data[4] == 2
    order = "<" if data[5] == 1 else ">"
    if wide:
        shoff, = struct.unpack_from(order + "Q", data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from(order + "HHH", data, 0x3A)
        entry = order + "IIQQQQIIQQ"
    else:
        shoff, = struct.unpack_from(order + "I", data, 0x20)
        shentsize, shnum, shstrndx = struct.unpack_from(order + "HHH", data, 0x2E)
        entry = order + "IIIIIIIIII"

    def header(index: int) -> tuple[int, ...]:
        return struct.unpack_from(entry, data, shoff + index * shentsize)

    names_offset = header(shstrndx)[4]
    found = []
    for index in range(shnum):
        name, _, _, _, offset, size, *_ = header(index)
        start = names_offset + name
        if data[start:data.index(b"\0", start)] == wanted:
            found.append((offset, size))
    if len(found) != 1:
        raise StampError(f"{len(found)} sections named {wanted.decode()}, not one")
    return found[0]


def archive_digest(data: bytes) -> str:
    """The SHA-256 of the binary's archive (its `pydata` section)."""
    offset, size = _section(data, SECTION)
    return hashlib.sha256(data[offset:offset + size]).hexdigest()


def stamped_digest(data: bytes) -> str | None:
    """The digest the bootloader holds, or None while it holds the placeholder."""
    at = data.find(KEY_PREFIX)
    if at < 0 or data.find(KEY_PREFIX, at + 1) >= 0:
        raise StampError("no single archive key placeholder in the bootloader")
    value = data[at + len(KEY_PREFIX):at + len(KEY_PLACEHOLDER)].decode("ascii")
    return None if value == "0" * 64 else value


def stamp(path: Path) -> str:
    """Write the archive's digest into the binary at `path` (again: the same bytes) and
    return it."""
    data = bytearray(path.read_bytes())
    digest = archive_digest(bytes(data))
    stamped_digest(bytes(data))  # exactly one placeholder (or an earlier stamp)
    at = data.find(KEY_PREFIX) + len(KEY_PREFIX)
    data[at:at + 64] = digest.encode("ascii")
    path.write_bytes(bytes(data))
    return digest


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--show":
        data = Path(argv[1]).read_bytes()
        print(stamped_digest(data) or "unstamped", archive_digest(data))
        return 0
    if len(argv) != 1:
        print("usage: archive_key.py [--show] BINARY", file=sys.stderr)
        return 2
    try:
        print(stamp(Path(argv[0])))
    except (StampError, OSError, ValueError, struct.error) as error:
        print(f"archive_key.py: error: {argv[0]}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
