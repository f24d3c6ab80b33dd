"""scripts/build-image: what the OCI archive of each architecture holds, read from the archive
itself (no container runtime), and that two builds are the same bytes."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from images import (
    ARCHES,
    ROOT,
    SOURCE_LABEL,
    OciArchive,
    archive,
    build_image,
    container_tools,
    podman,
    version,
)
from images import loaded as loaded_image

BINARY = "usr/local/bin/neo4j-schema-rollback"
PACKAGES = {"base-files", "netbase", "libc6", "libgcc-s1", "gcc-12-base", "ca-certificates"}
SHELLS = {"sh", "bash", "dash", "ash", "zsh", "ksh", "busybox", "toybox"}
PACKAGE_MANAGERS = {"dpkg", "apt", "apt-get", "rpm", "dnf", "microdnf", "yum", "apk", "pip",
                    "pip3"}
TRIPLET = {"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}
LOADER = {"amd64": "ld-linux-x86-64.so.2", "arm64": "ld-linux-aarch64.so.1"}

arches = pytest.mark.parametrize("arch", ARCHES)


def read(arch: str) -> OciArchive:
    return OciArchive.read(archive(arch))


@arches
def test_archive_is_one_manifest_for_its_platform(arch: str) -> None:
    """index.json holds one manifest for linux/<arch>, named neo4j-schema-rollback:<v>-<arch>."""
    image = read(arch)
    [descriptor] = image.index["manifests"]
    expected = {"architecture": arch, "os": "linux", **({"variant": "v8"} if arch == "arm64"
                                                         else {})}
    assert descriptor["platform"] == expected
    assert descriptor["annotations"] == {
        "org.opencontainers.image.ref.name": f"neo4j-schema-rollback:{version()}-{arch}"}
    assert image.config["architecture"] == arch
    assert image.config["os"] == "linux"


@arches
def test_no_shell_no_package_manager_and_the_only_programs(arch: str) -> None:
    """No shell or package manager anywhere; bin/sbin folders empty; the executable files are
    the binary, the dynamic loader and libc.so.6 (which glibc marks executable) alone."""
    image = read(arch)
    names = {path.rsplit("/", 1)[-1] for path, (member, _) in image.layer.items()
             if not member.isdir()}
    assert names & SHELLS == set()
    assert names & PACKAGE_MANAGERS == set()
    assert not any(n.startswith("python") or n.startswith("perl") for n in names), names
    for folder in ("bin", "sbin", "usr/bin", "usr/sbin"):
        inside = [p for p in image.layer if p.startswith(folder + "/")]
        assert inside == [], f"/{folder} holds {inside}"
    programs = {path for path, (member, _) in image.layer.items()
                if member.isreg() and member.mode & 0o111}
    lib = f"lib/{TRIPLET[arch]}"
    assert programs == {BINARY, f"{lib}/{LOADER[arch]}", f"{lib}/libc.so.6"}
    assert image.layer[BINARY][0].mode == 0o555
    assert image.layer[BINARY][1] == (ROOT / "dist" /
                                      f"neo4j-schema-rollback-{version()}-linux-"
                                      f"{ {'amd64': 'x86_64', 'arm64': 'arm64'}[arch] }"
                                      ).read_bytes()


@arches
def test_dpkg_status_names_every_package_and_its_files(arch: str) -> None:
    """/var/lib/dpkg/status has an 'install ok installed' entry for each Debian package of the
    image, of the image's architecture; every file its .list names is in the layer and every
    .md5sums line matches the file."""
    image = read(arch)
    paragraphs = [p for p in image.text("var/lib/dpkg/status").split("\n\n") if p.strip()]
    fields = [dict(line.split(": ", 1) for line in p.splitlines() if ": " in line
                   and not line.startswith(" ")) for p in paragraphs]
    assert {f["Package"] for f in fields} == PACKAGES
    for f in fields:
        assert f["Status"] == "install ok installed"
        assert f["Architecture"] in (arch, "all"), f
        assert f["Version"]
        name = f["Package"] + (f":{arch}" if f.get("Multi-Arch") == "same" else "")
        listed = image.text(f"var/lib/dpkg/info/{name}.list").splitlines()
        assert listed[0] == "/."
        missing = [p for p in listed[1:] if p.lstrip("/") not in image.layer]
        assert missing == [], f"{name}: listed but absent: {missing}"
        for line in image.text(f"var/lib/dpkg/info/{name}.md5sums").splitlines():
            digest, path = line.split("  ", 1)
            assert hashlib.md5(image.layer[path][1]).hexdigest() == digest, path
    assert "ubuntu" not in image.text("usr/lib/os-release").lower()
    assert 'VERSION_CODENAME=bookworm' in image.text("usr/lib/os-release")


@arches
def test_user_groups_nss_and_tmp(arch: str) -> None:
    """A non-root user with a numeric UID and no shell is the image's user; /etc/nsswitch.conf
    resolves hosts from files then DNS; /tmp is world-writable and sticky."""
    image = read(arch)
    passwd = image.text("etc/passwd").splitlines()
    assert "nonroot:x:65532:65532:nonroot:/nonexistent:/usr/sbin/nologin" in passwd
    assert all(line.split(":")[6] == "/usr/sbin/nologin" for line in passwd)
    assert "usr/sbin/nologin" not in image.layer
    assert "nonroot:x:65532:" in image.text("etc/group").splitlines()
    assert image.config["config"]["User"] == "65532:65532"
    assert "hosts: files dns" in image.text("etc/nsswitch.conf").splitlines()
    tmp = image.layer["tmp"][0]
    assert tmp.isdir() and stat.S_IMODE(tmp.mode) == 0o1777
    for path, (member, _) in image.layer.items():
        assert (member.uid, member.gid, member.uname, member.gname) == (0, 0, "", ""), path


@arches
def test_ca_bundle_is_every_mozilla_certificate(arch: str) -> None:
    """/etc/ssl/certs/ca-certificates.crt is the concatenation of ca-certificates' Mozilla set."""
    image = read(arch)
    certs = sorted(p for p in image.layer if p.startswith("usr/share/ca-certificates/mozilla/"))
    bundle = image.layer["etc/ssl/certs/ca-certificates.crt"][1]
    assert len(certs) > 100
    assert bundle.count(b"-----BEGIN CERTIFICATE-----") == len(certs)
    assert bundle == b"".join(image.layer[p][1] for p in certs)


@arches
def test_labels_entrypoint_and_times(arch: str) -> None:
    """OCI labels (and manifest annotations) name version, revision, source and the licence of
    pyproject.toml; the entrypoint is the binary; every time is SOURCE_DATE_EPOCH."""
    image = read(arch)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True, check=True).stdout.strip()
    epoch = int(subprocess.run(["git", "log", "-1", "--format=%ct"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout)
    labels = image.config["config"]["Labels"]
    created = labels["org.opencontainers.image.created"]
    assert labels == {
        "org.opencontainers.image.title": "neo4j-schema-rollback",
        "org.opencontainers.image.description": project["description"],
        "org.opencontainers.image.version": version(),
        "org.opencontainers.image.revision": head,
        "org.opencontainers.image.source": SOURCE_LABEL,
        "org.opencontainers.image.licenses": project["license"],
        "org.opencontainers.image.created": created,
    }
    assert image.manifest["annotations"] == labels
    assert image.config["created"] == created
    assert image.config["config"]["Entrypoint"] == ["/" + BINARY]
    assert image.config["config"]["Cmd"] == ["--help"]
    assert {m.mtime for m, _ in image.layer.values()} == {epoch}
    assert created.startswith("20") and created.endswith("Z")


@arches
def test_licence_notices_cover_the_binary_and_the_packages(arch: str) -> None:
    """/usr/share/doc/neo4j-schema-rollback/NOTICES names every native library of the binary's
    record, its Python packages with their licence files, and each Debian package, whose
    copyright files are in place."""
    image = read(arch)
    notices = image.text("usr/share/doc/neo4j-schema-rollback/NOTICES")
    asset = ROOT / "dist" / (f"neo4j-schema-rollback-{version()}-linux-"
                             f"{ {'amd64': 'x86_64', 'arm64': 'arm64'}[arch] }")
    record = json.loads(Path(f"{asset}.sources.json").read_text())
    for lib, source in record["libraries"].items():
        assert f"* {lib} " in notices
        assert f"usr/share/doc/neo4j-schema-rollback/debian/{source['debian_source']}/copyright" \
            in image.layer
    for dist in ("neo4j", "cyclopts", "structlog", "pyinstaller"):
        assert f"* Python package {dist} " in notices
        files = [p for p in image.layer
                 if p.startswith(f"usr/share/doc/neo4j-schema-rollback/python/{dist}/")]
        assert files, f"no licence file for {dist}"
    for package in PACKAGES:
        assert f"* {package} " in notices
        assert (f"usr/share/doc/{package}/copyright" in image.layer
                or image.layer[f"usr/share/doc/{package}"][0].issym())


@arches
def test_two_builds_are_the_same_bytes(arch: str, tmp_path: Path) -> None:
    """A second build from the same inputs writes the same archive, so the same digest."""
    first = archive(arch)
    proc = build_image(arch, tmp_path / "again.tar")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "again.tar").read_bytes() == first.read_bytes()
    assert proc.stdout.strip() == OciArchive.read(first).digest


def test_another_source_date_epoch_changes_only_times(tmp_path: Path) -> None:
    """SOURCE_DATE_EPOCH is every timestamp: another value gives another digest and the same
    files."""
    proc = build_image("amd64", tmp_path / "other.tar", SOURCE_DATE_EPOCH="1700000000")
    assert proc.returncode == 0, proc.stderr
    other, first = OciArchive.read(tmp_path / "other.tar"), OciArchive.read(archive("amd64"))
    assert other.digest != first.digest
    assert other.config["created"] == "2023-11-14T22:13:20Z"
    assert {p: d for p, (_, d) in other.layer.items()} == {p: d for p, (_, d) in
                                                           first.layer.items()}


def test_bad_input_is_one_line_and_exit_1(tmp_path: Path) -> None:
    """A binary of the wrong architecture, or one without its sources record, is refused in
    one line with exit 1."""
    amd64 = ROOT / "dist" / f"neo4j-schema-rollback-{version()}-linux-x86_64"
    wrong = subprocess.run([str(ROOT / "scripts" / "build-image"), "--arch", "arm64",
                            "--binary", str(amd64), "--output", str(tmp_path / "x.tar")],
                           cwd=ROOT, capture_output=True, text=True, check=False)
    assert (wrong.returncode, wrong.stderr) == (
        1, f"build-image: error: {amd64} is not a Linux arm64 ELF binary\n")
    bare = tmp_path / "bare"
    bare.write_bytes(amd64.read_bytes())
    missing = subprocess.run([str(ROOT / "scripts" / "build-image"), "--arch", "amd64",
                              "--binary", str(bare), "--output", str(tmp_path / "y.tar")],
                             cwd=ROOT, capture_output=True, text=True, check=False,
                             env={**os.environ, "NSR_SOURCE": SOURCE_LABEL})
    assert missing.returncode == 1
    assert missing.stderr.splitlines()[-1] == (
        f"build-image: error: {bare}.sources.json is missing: the build writes it beside the "
        "binary (the Debian source package of each bundled library)")
    assert not (tmp_path / "x.tar").exists() and not (tmp_path / "y.tar").exists()


@arches
def test_podman_image_inspect(arch: str) -> None:
    """podman image inspect of the loaded archive shows the user, entrypoint and labels."""
    proc = podman("image", "inspect", loaded_image(arch))
    assert proc.returncode == 0, proc.stderr
    [info] = json.loads(proc.stdout)
    assert info["Architecture"] == arch
    assert info["Config"]["User"] == "65532:65532"
    assert info["Config"]["Entrypoint"] == ["/" + BINARY]
    assert info["Labels"]["org.opencontainers.image.version"] == version()
    assert info["Labels"]["org.opencontainers.image.licenses"] == "MIT"


def test_the_archives_merge_into_one_index_that_skopeo_copies_unchanged(tmp_path: Path) -> None:
    """build/image/oci_index.py lays every archive's manifest into one image index;
    `skopeo copy --all --preserve-digests` (as release.yml pushes) keeps every digest."""
    container_tools()
    archives = [str(archive(arch)) for arch in ARCHES]
    merged = subprocess.run([sys.executable, str(ROOT / "build" / "image" / "oci_index.py"),
                             str(tmp_path / "layout"), "1", *archives],
                            capture_output=True, text=True, check=True).stdout.strip()
    copy = subprocess.run(["skopeo", "copy", "--quiet", "--all", "--preserve-digests",
                           f"oci:{tmp_path / 'layout'}:1", f"oci:{tmp_path / 'copy'}:1"],
                          capture_output=True, text=True, check=False)
    assert copy.returncode == 0, copy.stderr
    raw = subprocess.run(["skopeo", "inspect", "--raw", f"oci:{tmp_path / 'copy'}:1"],
                         capture_output=True, check=True).stdout
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == merged
    index = json.loads(raw)
    assert [m["digest"] for m in index["manifests"]] == [
        OciArchive.read(Path(a)).digest for a in archives]
    assert [m["platform"]["architecture"] for m in index["manifests"]] == list(ARCHES)
