"""CycloneDX 1.5 SBOMs (JSON) for a release binary and for an image archive, from what each
holds: the binary's PyInstaller archive (see contents.py) and the image's dpkg status."""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import tarfile
import time
import tomllib
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import contents
from debian import parse_control

ROOT = Path(__file__).resolve().parents[2]
PROPERTY = "neo4j-schema-rollback"   # namespace of our CycloneDX properties


def _timestamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(os.environ["SOURCE_DATE_EPOCH"])))


def _serial(data: bytes) -> str:
    """A serial number derived from the subject, so the same subject gives the same document."""
    return f"urn:uuid:{uuid.UUID(bytes=hashlib.sha256(data).digest()[:16], version=5)}"


def _licences(expression: str) -> list[dict[str, Any]]:
    if expression in ("", "UNKNOWN"):
        return []
    return [{"expression": expression}]


def _deb_purl(name: str, version: str, arch: str) -> str:
    return f"pkg:deb/debian/{name}@{quote(version, safe='')}?arch={arch}"


def _project() -> dict[str, Any]:
    project: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project


def _document(subject: dict[str, Any], components: list[dict[str, Any]], data: bytes) -> str:
    doc = {"bomFormat": "CycloneDX", "specVersion": "1.5", "serialNumber": _serial(data),
           "version": 1,
           "metadata": {"timestamp": _timestamp(), "component": subject,
                        "tools": {"components": [{"type": "application",
                                                  "name": "scripts/release"}]}},
           "components": components}
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def binary_components(found: contents.Contents) -> list[dict[str, Any]]:
    """CPython, each native library and each Python package found in the binary's archive."""
    python = {"type": "library", "bom-ref": "cpython", "name": "cpython",
              "version": found.python_version, "licenses": _licences("PSF-2.0"),
              "purl": _deb_purl(found.python_source, found.python_debian_version, "source"),
              "properties": [{"name": f"{PROPERTY}:archive-entry", "value": e}
                             for e in found.extensions]}
    libs = [{"type": "library", "bom-ref": f"lib:{lib.name}", "name": lib.name,
             "version": lib.upstream_version,
             "purl": _deb_purl(lib.debian_source, lib.debian_version, "source"),
             "properties": [{"name": f"{PROPERTY}:archive-entry", "value": lib.name},
                            {"name": f"{PROPERTY}:debian-source", "value": lib.debian_source}]}
            for lib in found.libraries]
    assert found.pyinstaller is not None
    dists = [{"type": "library" if dist is not found.pyinstaller else "application",
              "bom-ref": f"pypi:{dist.name.lower()}", "name": dist.name, "version": dist.version,
              "purl": f"pkg:pypi/{dist.name.lower()}@{dist.version}",
              "licenses": _licences(dist.licence),
              "properties": [{"name": f"{PROPERTY}:module", "value": m} for m in dist.modules]}
             for dist in [found.pyinstaller, *found.dists]]
    return [python, *libs, *dists, *bootloader_components(found)]


def bootloader_components(found: contents.Contents) -> list[dict[str, Any]]:
    """The portable build's bootloader (built from the pinned PyInstaller sdist, patched) and
    the zlib linked into it statically; none for a binary with PyInstaller's own."""
    boot = found.bootloader
    if not boot:
        return []
    return [
        {"type": "application", "bom-ref": "bootloader", "name": "pyinstaller-bootloader",
         "version": boot["version"], "purl": f"pkg:pypi/pyinstaller@{boot['version']}",
         "licenses": _licences("GPL-2.0-or-later WITH Bootloader-exception"),
         "properties": [{"name": f"{PROPERTY}:source", "value": boot["source"]},
                        {"name": f"{PROPERTY}:sdist-sha256", "value": boot["sdist_sha256"]},
                        *({"name": f"{PROPERTY}:patch", "value": patch}
                          for patch in boot["patches"])]},
        {"type": "library", "bom-ref": "bootloader:zlib", "name": "zlib",
         "version": boot["zlib"]["version"], "licenses": _licences("Zlib"),
         "properties": [{"name": f"{PROPERTY}:linked", "value": boot["zlib"]["from"]}]},
    ]


def binary_sbom(binary: Path, site_packages: Path, glibc: str) -> str:
    found = contents.read(binary, site_packages)
    project = _project()
    data = binary.read_bytes()
    subject = {"type": "application", "bom-ref": "binary", "name": project["name"],
               "version": project["version"], "licenses": _licences(project["license"]),
               "hashes": [{"alg": "SHA-256", "content": hashlib.sha256(data).hexdigest()}],
               "properties": [{"name": f"{PROPERTY}:file", "value": binary.name},
                              {"name": f"{PROPERTY}:arch", "value": found.arch},
                              # the host provides glibc: a requirement, not a component
                              {"name": f"{PROPERTY}:requires", "value": f"glibc>={glibc}"}]}
    return _document(subject, binary_components(found), data)


def image_packages(archive: Path) -> tuple[dict[str, Any], list[dict[str, str]], bytes]:
    """(the image config, the dpkg status paragraphs, the binary) of an OCI image archive."""
    with tarfile.open(archive) as outer:
        def blob(digest: str) -> bytes:
            handle = outer.extractfile("blobs/sha256/" + digest.removeprefix("sha256:"))
            assert handle is not None
            return handle.read()
        index_file = outer.extractfile("index.json")
        assert index_file is not None
        manifest = json.loads(blob(json.loads(index_file.read())["manifests"][0]["digest"]))
        config = json.loads(blob(manifest["config"]["digest"]))
        layer = gzip.decompress(blob(manifest["layers"][0]["digest"]))
    with tarfile.open(fileobj=io.BytesIO(layer)) as inner:
        status_file = inner.extractfile("var/lib/dpkg/status")
        binary_file = inner.extractfile("usr/local/bin/neo4j-schema-rollback")
        assert status_file is not None and binary_file is not None
        status, binary = status_file.read().decode(), binary_file.read()
    packages = [parse_control(p) for p in status.split("\n\n") if p.strip()]
    return config, packages, binary


def image_sbom(archive: Path) -> str:
    config, packages, binary = image_packages(archive)
    project = _project()
    arch = config["architecture"]
    data = archive.read_bytes()
    subject = {"type": "container", "bom-ref": "image", "name": project["name"],
               "version": project["version"], "licenses": _licences(project["license"]),
               "hashes": [{"alg": "SHA-256", "content": hashlib.sha256(data).hexdigest()}],
               "properties": [{"name": f"{PROPERTY}:file", "value": archive.name},
                              {"name": f"{PROPERTY}:arch", "value": arch}]}
    components = [{"type": "application", "bom-ref": "binary", "name": project["name"],
                   "version": project["version"],
                   "hashes": [{"alg": "SHA-256", "content": hashlib.sha256(binary).hexdigest()}],
                   "properties": [{"name": f"{PROPERTY}:path",
                                   "value": "/usr/local/bin/neo4j-schema-rollback"}]}]
    for p in sorted(packages, key=lambda p: p["Package"]):
        source = p.get("Source", p["Package"]).split(" ")[0]
        components.append({
            "type": "library", "bom-ref": f"deb:{p['Package']}", "name": p["Package"],
            "version": p["Version"],
            "purl": _deb_purl(p["Package"], p["Version"], p["Architecture"]),
            "properties": [{"name": f"{PROPERTY}:debian-source", "value": source}]})
    return _document(subject, components, data)


def main() -> None:
    parser = argparse.ArgumentParser(prog="build/image/sbom.py")
    sub = parser.add_subparsers(dest="kind", required=True)
    b = sub.add_parser("binary")
    b.add_argument("binary", type=Path)
    b.add_argument("--glibc", required=True)
    b.add_argument("--site-packages", type=Path)
    b.add_argument("--output", type=Path, required=True)
    i = sub.add_parser("image")
    i.add_argument("archive", type=Path)
    i.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    try:
        if args.kind == "binary":
            site = args.site_packages or contents.default_site_packages(ROOT)
            text = binary_sbom(args.binary, site, args.glibc)
        else:
            text = image_sbom(args.archive)
    except contents.ContentsError as err:
        raise SystemExit(f"sbom: error: {err}") from err
    args.output.write_text(text)


if __name__ == "__main__":
    main()
