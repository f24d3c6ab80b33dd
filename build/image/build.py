"""scripts/build-image: the init-container image of one architecture, from scratch, as an OCI
archive (see scripts/build-image --help)."""

from __future__ import annotations

import argparse
import os
import sys
import time
import tomllib
from pathlib import Path

import contents
import debian
import layer
import oci
import source_label

ROOT = Path(__file__).resolve().parents[2]
OCI_ARCH = {"x86_64": "amd64", "arm64": "arm64"}
ELF_MACHINE = {"amd64": 0x3E, "arm64": 0xB7}


def fail(message: str) -> None:
    print(f"build-image: error: {message}", file=sys.stderr)
    raise SystemExit(1)


def say(message: str) -> None:
    print(f"build-image: {message}", file=sys.stderr)


def elf_arch(binary: Path) -> str | None:
    head = binary.read_bytes()[:20]
    if head[:4] != b"\x7fELF":
        return None
    machine = int.from_bytes(head[18:20], "little")
    return next((arch for arch, code in ELF_MACHINE.items() if code == machine), None)


def source_url() -> str:
    """Where the source is: NSR_SOURCE, GitHub Actions' repository URL or the origin remote."""
    try:
        return source_label.source_url(os.environ)
    except source_label.NoSource as exc:
        fail(str(exc))
        raise AssertionError from None


def copyright_of(apt: debian.PrivateApt, index: list[dict[str, str]], source: str,
                 cache: Path) -> tuple[str, str, bytes]:
    """(package, version, copyright file) of a package built from Debian source `source`."""
    names = sorted({p["Package"] for p in index
                    if p.get("Source", p["Package"]).split(" ")[0] == source},
                   key=lambda n: (n not in debian.PACKAGES, n.endswith(("-dev", "-doc", "-dbg")),
                                  not n.startswith("lib"), n))
    for candidate in apt.candidates(names) if names else []:
        name = candidate.package
        deb = debian.read_deb(apt.download(candidate, cache))
        for member, data in deb.members():
            path = member.name.removeprefix("./")
            if path == f"usr/share/doc/{name}/copyright" and member.isreg():
                return name, candidate.version, data
    fail(f"no package of Debian source {source} in {apt.repos[0].suite} has a copyright file")
    raise AssertionError


def notices(tree: layer.Tree, found: contents.Contents, packages: list[debian.Candidate],
            copyrights: dict[str, tuple[str, str, bytes]], version: str, licence: str,
            suite: str) -> None:
    """Third-party licence notices under /usr/share/doc/neo4j-schema-rollback."""
    base = layer.NOTICE_DIR
    lines = [f"neo4j-schema-rollback {version} (licence: {licence})", "",
             "/usr/local/bin/neo4j-schema-rollback is a PyInstaller one-file binary. It holds:", "",
             f"* CPython {found.python_version}, built from Debian source {found.python_source} "
             f"{found.python_debian_version}, with its extension modules "
             f"({len(found.extensions)} in lib-dynload).",
             f"  Licence: debian/{found.python_source}/copyright"]
    for lib in found.libraries:
        lines += [f"* {lib.name} {lib.upstream_version}, built from Debian source "
                  f"{lib.debian_source} {lib.debian_version}.",
                  f"  Licence: debian/{lib.debian_source}/copyright"]
    assert found.pyinstaller is not None
    for dist in [found.pyinstaller, *found.dists]:
        what = "its bootloader and loader modules" if dist is found.pyinstaller else \
            "modules " + ", ".join(dist.modules)
        if dist is found.pyinstaller and found.bootloader:
            boot = found.bootloader
            what = (f"its loader modules; the bootloader is built from its {boot['source']} "
                    f"(sha256 {boot['sdist_sha256']}), patched by "
                    f"{', '.join(boot['patches'])}, with zlib {boot['zlib']['version']} linked "
                    "statically")
        files = ", ".join(f"python/{dist.name}/{f}" for f in sorted(dist.licence_files))
        lines += [f"* Python package {dist.name} {dist.version} ({what}); licence "
                  f"{dist.licence}.", f"  Licence: {files or '(no licence file shipped)'}"]
        for name, licence_text in sorted(dist.licence_files.items()):
            tree.file(f"{base}/python/{dist.name}/{name}", licence_text)
    for source, (package, pkg_version, copyright_text) in sorted(copyrights.items()):
        tree.file(f"{base}/debian/{source}/copyright", copyright_text)
        lines.append(f"(debian/{source}/copyright is the copyright file of Debian {suite}'s "
                     f"{package} {pkg_version}.)")
    lines += ["", f"The image's Debian {suite} packages, each with its copyright file in "
              "/usr/share/doc/<package>/copyright:", ""]
    lines += [f"* {c.package} {c.version} (source {c.source})" for c in packages]
    tree.file(f"{base}/NOTICES", "\n".join(lines) + "\n")


def main() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    version = project["version"]
    parser = argparse.ArgumentParser(prog="scripts/build-image")
    parser.add_argument("--arch", choices=sorted(ELF_MACHINE), default=None)
    parser.add_argument("--binary", type=Path)
    parser.add_argument("--output", type=Path)
    parser.add_argument("--suite", default="bookworm")
    parser.add_argument("--site-packages", type=Path)
    args = parser.parse_args()
    arch = args.arch or OCI_ARCH.get(os.uname().machine.replace("aarch64", "arm64"), "amd64")
    binary_arch = {"amd64": "x86_64", "arm64": "arm64"}[arch]
    binary = args.binary or ROOT / "dist" / f"neo4j-schema-rollback-{version}-linux-{binary_arch}"
    output = args.output or ROOT / "dist" / f"neo4j-schema-rollback-{version}-oci-{arch}.tar"
    if not binary.is_file():
        fail(f"no binary {binary} (scripts/build-binary --portable writes it)")
    if elf_arch(binary) != arch:
        fail(f"{binary} is not a Linux {arch} ELF binary")
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    if not epoch.isdigit():
        fail("SOURCE_DATE_EPOCH is not set to a number of seconds")
    commit = os.environ.get("NSR_COMMIT", "")
    if not commit:
        fail("NSR_COMMIT (the revision label) is not set")
    site_packages = args.site_packages or contents.default_site_packages(ROOT, arch)
    cache = Path(os.environ.get("NSR_CACHE_DIR") or "/var/cache/neo4j-schema-rollback") / "image"
    start = time.monotonic()

    def lap(what: str) -> None:
        say(f"{what} ({time.monotonic() - start:.1f} s)")

    try:
        found = contents.read(binary, site_packages)
        if OCI_ARCH[found.arch] != arch:
            fail(f"{binary}.sources.json says {found.arch}, not {arch}")
        if not found.bootloader:
            # PyInstaller's own bootloader links the host's libz, which the image does not carry
            fail(f"{binary}.sources.json names no bootloader: build the binary with "
                 "scripts/build-binary --portable (its bootloader links zlib statically)")
        repos = debian.derive_repos(debian.machine_targets(), args.suite)
        apt = debian.PrivateApt(cache / f"apt-{args.suite}-{arch}", arch, repos)
        apt.update()
        lap(f"apt lists for {args.suite} {arch} up to date")
        candidates = apt.candidates(list(debian.PACKAGES))
        debs = [debian.read_deb(apt.download(c, cache / "debs")) for c in candidates]
        index = apt.packages_index()
        sources = {found.python_source, *(lib.debian_source for lib in found.libraries)}
        copyrights = {s: copyright_of(apt, index, s, cache / "debs") for s in sorted(sources)}
        lap(f"{len(debs)} packages and {len(copyrights)} copyright files at hand")
    except (debian.DebianError, contents.ContentsError) as err:
        fail(str(err))

    tree = layer.Tree()
    layer.install_packages(tree, debs)
    layer.add_system_files(tree)
    notices(tree, found, candidates, copyrights, version, project["license"], args.suite)
    tree.file(layer.BINARY_PATH, binary.read_bytes(), mode=0o555)

    created = int(epoch)
    labels = {
        "org.opencontainers.image.title": project["name"],
        "org.opencontainers.image.description": project["description"],
        "org.opencontainers.image.version": version,
        "org.opencontainers.image.revision": commit,
        "org.opencontainers.image.source": source_url(),
        "org.opencontainers.image.licenses": project["license"],
        "org.opencontainers.image.created": oci.rfc3339(created),
    }
    spec = oci.ImageSpec(arch=arch, entrypoint=["/" + layer.BINARY_PATH], cmd=["--help"],
                         user=f"{layer.UID}:{layer.UID}",
                         env=["PATH=/usr/local/bin:/usr/bin:/bin"], labels=labels,
                         created=created)
    tar = layer.layer_tar(tree, created)
    lap(f"layer of {len(tree.entries)} entries, {len(tar)} bytes")
    image = oci.build(spec, tar, layer.gzip_bytes(tar),
                      f"scripts/build-image (Debian {args.suite}: {', '.join(debian.PACKAGES)})")
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    partial.write_bytes(oci.archive(image, f"{project['name']}:{version}-{arch}"))
    partial.replace(output)
    say(f"wrote {output} ({output.stat().st_size} bytes, {arch}, manifest "
        f"{image.manifest_digest}) in {time.monotonic() - start:.1f} s")
    print(image.manifest_digest)


if __name__ == "__main__":
    main()
