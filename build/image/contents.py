"""What a PyInstaller one-file binary carries, read from its archive: the native libraries and
extension modules, and the Python distributions its modules come from (versions and licences from
the build environment's installed metadata); and the binary's <binary>.sources.json, which names
the Debian source package each native library was built from."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from PyInstaller.archive.readers import CArchiveReader  # type: ignore[import-untyped]

APP_MODULE = "neo4j_schema_rollback"
_LICENCE_FILE = re.compile(r"(LICEN[CS]E|COPYING|NOTICE|AUTHORS)", re.IGNORECASE)
_PYI_MODULES = re.compile(r"^(pyimod\d+_|pyiboot\d+_|pyi_rth_)")
# Modules the build itself generates for its patches of the bundled packages (build/spec:
# precompiled methods, the lazy asyncio proxy): part of the tool, not of any distribution.
_BUILD_MODULES = re.compile(r"^_nsr_")


class ContentsError(Exception):
    """The binary or its sources record cannot be read or do not agree."""


@dataclass(frozen=True)
class PythonDist:
    name: str
    version: str
    licence: str                       # SPDX expression where the metadata has one
    licence_files: dict[str, str]      # file name -> text
    modules: tuple[str, ...]           # top-level modules of it found in the binary


@dataclass(frozen=True)
class Library:
    name: str                          # as in the archive, e.g. libssl.so.3
    debian_source: str
    debian_version: str
    upstream_version: str


@dataclass
class Contents:
    arch: str
    python_version: str
    python_source: str
    python_debian_version: str
    libraries: list[Library]
    extensions: list[str]              # python3.X/lib-dynload/*.so
    dists: list[PythonDist] = field(default_factory=list)
    pyinstaller: PythonDist | None = None
    # the portable build's bootloader: {"source", "version", "sdist_sha256", "patches", "zlib"}
    bootloader: dict[str, Any] | None = None


def archive_entries(binary: Path) -> tuple[list[str], set[str]]:
    """(binary entries of the CArchive, top-level modules of its PYZ and script entries)."""
    try:
        reader = CArchiveReader(str(binary))
    except Exception as err:   # PyInstaller raises bare exceptions for a non-archive
        raise ContentsError(f"{binary}: not a PyInstaller one-file binary ({err})") from err
    binaries, modules = [], set()
    for name, entry in reader.toc.items():
        typecode = entry[-1]
        if typecode == "b":
            binaries.append(name)
        elif typecode == "z":
            modules |= {key.split(".")[0] for key in reader.open_embedded_archive(name).toc}
        elif typecode in ("m", "M", "s"):
            modules.add(name.split(".")[0])
    return sorted(binaries), modules


def _licence(meta: metadata.PackageMetadata) -> str:
    """The SPDX expression, else a one-line License field, else the licence classifiers."""
    fields = meta.json
    expression = str(fields.get("license_expression", ""))
    if expression:
        return expression
    short = str(fields.get("license", "")).strip()
    if short and len(short) <= 80 and "\n" not in short:
        return short
    classifiers = [c.rsplit(" :: ", 1)[-1] for c in fields.get("classifier", [])
                   if c.startswith("License :: ")]
    return " AND ".join(classifiers) if classifiers else "UNKNOWN"


def _dist(dist: metadata.Distribution, modules: tuple[str, ...]) -> PythonDist:
    files = {}
    for item in dist.files or []:
        if (item.parts[0].endswith(".dist-info") and _LICENCE_FILE.search(item.name)
                and item.name != "RECORD"):
            files[item.name] = item.read_text(encoding="utf-8")
    return PythonDist(dist.metadata["Name"], dist.version, _licence(dist.metadata), files,
                      modules)


def _top_levels(dist: metadata.Distribution) -> set[str]:
    tops = set()
    for item in dist.files or []:
        first = item.parts[0]
        if first.endswith((".dist-info", ".egg-info", ".data")) or first in ("..", "bin"):
            continue
        if len(item.parts) == 1 and not first.endswith((".py", ".so", ".pyd")):
            continue
        tops.add(first.split(".")[0])
    return tops


def python_dists(modules: set[str], site_packages: Path) -> tuple[list[PythonDist], PythonDist]:
    """The distributions (from `site_packages`) whose top-level modules are in the binary, and
    PyInstaller's own (its bootloader and loader modules are in every binary). A module that is
    neither the standard library's, the app's, PyInstaller's nor any distribution's is an error:
    the record must name everything the binary holds."""
    by_module: dict[str, metadata.Distribution] = {}
    pyinstaller = None
    for dist in metadata.distributions(path=[str(site_packages)]):
        if dist.metadata["Name"].lower() == "pyinstaller":
            pyinstaller = dist
        for top in _top_levels(dist):
            by_module.setdefault(top, dist)
    if pyinstaller is None:
        raise ContentsError(f"no PyInstaller distribution in {site_packages}")
    found: dict[str, list[str]] = {}
    dists: dict[str, metadata.Distribution] = {}
    unknown = []
    for module in sorted(modules):
        if (module in sys.stdlib_module_names or module == APP_MODULE
                or _PYI_MODULES.match(module) or _BUILD_MODULES.match(module)):
            continue
        if module.endswith("_entry") and module.startswith(APP_MODULE):
            continue
        owner = by_module.get(module)
        if owner is None:
            unknown.append(module)
            continue
        dists[owner.metadata["Name"]] = owner
        found.setdefault(owner.metadata["Name"], []).append(module)
    if unknown:
        raise ContentsError(f"modules in the binary that no distribution in {site_packages} "
                            f"provides: {', '.join(unknown)}")
    listed = [_dist(dists[name], tuple(found[name])) for name in sorted(dists, key=str.lower)]
    return listed, _dist(pyinstaller, ())


def read(binary: Path, site_packages: Path) -> Contents:
    """The binary's contents, checked against <binary>.sources.json: every native library of the
    archive is named there and nothing else is."""
    record_path = Path(f"{binary}.sources.json")
    try:
        record: dict[str, Any] = json.loads(record_path.read_text())
    except FileNotFoundError as err:
        raise ContentsError(f"{record_path} is missing: the build writes it beside the binary "
                            "(the Debian source package of each bundled library)") from err
    binaries, modules = archive_entries(binary)
    python = record["python"]
    dynload = re.compile(r"^python3\.\d+/lib-dynload/")
    extensions = [b for b in binaries if dynload.match(b)]
    libraries = [b for b in binaries if not dynload.match(b)]
    recorded = record.get("libraries", {})
    if sorted(recorded) != libraries:
        raise ContentsError(f"{record_path} names {sorted(recorded)}, the archive holds "
                            f"{libraries}")
    libs = [Library(name, recorded[name]["debian_source"], recorded[name]["debian_version"],
                    recorded[name]["upstream_version"]) for name in libraries]
    dists, pyinstaller = python_dists(modules, site_packages)
    return Contents(record["arch"], python["version"], python["debian_source"],
                    python["debian_version"], libs, extensions, dists, pyinstaller,
                    record.get("bootloader"))


def default_site_packages(root: Path, arch: str | None = None) -> Path:
    """The environment that built the binary: the portable build's of `arch` (amd64 or arm64,
    build/work/portable-<x86_64|arm64>/venv) when it exists, else the host build's
    (build/work/venv)."""
    envs = [root / "build" / "work" / "venv"]
    if arch is not None:
        portable = {"amd64": "x86_64", "arm64": "arm64"}.get(arch, arch)
        envs.insert(0, root / "build" / "work" / f"portable-{portable}" / "venv")
    for env in envs:
        found = sorted((env / "lib").glob("python3.*/site-packages"))
        if found:
            return found[-1]
    raise ContentsError("no build environment (build/work/portable-<arch>/venv or "
                        "build/work/venv): run scripts/build-binary first, or name the build "
                        "environment's site-packages")
