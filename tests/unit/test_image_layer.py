"""The pure parts of scripts/build-image: which package files are kept, dpkg status entries, the
Debian repositories derived from the machine's, and byte-stable layer and archive writing."""

from __future__ import annotations

import gzip
import io
import sys
import tarfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "build" / "image"))

import debian
import layer
import oci


def test_kept_files() -> None:
    """Copyright files stay, other docs, man pages, gconv and sbin go."""
    assert layer.kept("usr/share/doc/libc6/copyright")
    assert layer.kept("usr/share/doc/libc6")
    assert not layer.kept("usr/share/doc/libc6/changelog.Debian.gz")
    assert not layer.kept("usr/share/doc/libc6/examples/x")
    assert not layer.kept("usr/share/man/man1/x.1.gz")
    assert not layer.kept("usr/lib/x86_64-linux-gnu/gconv/UTF-16.so")
    assert not layer.kept("usr/sbin/update-ca-certificates")
    assert layer.kept("lib/x86_64-linux-gnu/libc.so.6")
    assert layer.kept("usr/share/common-licenses/GPL-2")


def test_dpkg_status_puts_status_after_package_and_lists_conffiles() -> None:
    """Status follows Package; Conffiles carry each file's MD5, sorted."""
    control = "Package: netbase\nVersion: 6.4\nArchitecture: all\nDescription: x\n more\n"
    assert layer.dpkg_status(control, {"/etc/services": "bb", "/etc/protocols": "aa"}) == (
        "Package: netbase\nStatus: install ok installed\nVersion: 6.4\nArchitecture: all\n"
        "Description: x\n more\nConffiles:\n /etc/protocols aa\n /etc/services bb\n")


def test_derive_repos_takes_the_machines_entries_for_its_suite() -> None:
    """The machine's own suite, -updates and -security entries, nothing else."""
    targets = [("http://m/debian/", "bookworm", "main"),
               ("http://m/debian/", "bookworm-updates", "main"),
               ("http://s/debian-security/", "bookworm-security", "main"),
               ("http://m/debian/", "bookworm", "contrib"),
               ("http://x/other/", "stable", "main")]
    assert debian.derive_repos(targets, "bookworm") == [
        debian.Repo("http://m/debian/", "bookworm"),
        debian.Repo("http://s/debian-security/", "bookworm-security"),
        debian.Repo("http://m/debian/", "bookworm-updates")]


def test_derive_repos_builds_another_suite_from_the_archive_and_security_uris() -> None:
    """A machine on trixie building a bookworm image: the same archive and security hosts."""
    targets = [("http://m/debian/", "trixie", "main"),
               ("http://s/debian-security/", "trixie-security", "main")]
    assert debian.derive_repos(targets, "bookworm") == [
        debian.Repo("http://m/debian/", "bookworm"),
        debian.Repo("http://m/debian/", "bookworm-updates"),
        debian.Repo("http://s/debian-security/", "bookworm-security")]
    assert debian.Repo("http://m/debian/", "bookworm").line("arm64") == \
        "deb [arch=arm64] http://m/debian/ bookworm main"


def test_layer_tar_is_sorted_with_parents_first_and_fixed_metadata() -> None:
    """Parents come before children, every entry has the one mtime and owner 0, and the same
    tree gives the same bytes (also through gzip)."""
    tree = layer.Tree()
    tree.file("usr/local/bin/tool", b"x", mode=0o555)
    tree.file("etc/passwd", "root\n")
    tree.add(layer.Entry("tmp", "dir", 0o1777))
    tree.add(layer.Entry("lib64/ld.so", "symlink", 0o777, target="/lib/ld.so"))
    raw = layer.layer_tar(tree, 1234)
    with tarfile.open(fileobj=io.BytesIO(raw)) as archive:
        members = archive.getmembers()
    assert [m.name for m in members] == ["etc", "etc/passwd", "lib64", "lib64/ld.so", "tmp",
                                         "usr", "usr/local", "usr/local/bin",
                                         "usr/local/bin/tool"]
    assert {(m.mtime, m.uid, m.gid, m.uname) for m in members} == {(1234, 0, 0, "")}
    assert members[-1].mode == 0o555 and members[4].mode == 0o1777
    assert layer.layer_tar(tree, 1234) == raw
    packed = layer.gzip_bytes(raw)
    assert packed == layer.gzip_bytes(raw) and gzip.decompress(packed) == raw


def test_a_path_written_twice_is_an_error() -> None:
    """Two packages shipping one file is a build error, a shared directory is not."""
    tree = layer.Tree()
    tree.add(layer.Entry("etc", "dir", 0o755))
    tree.add(layer.Entry("etc", "dir", 0o755))
    tree.file("etc/hosts", "x")
    try:
        tree.file("etc/hosts", "y")
    except ValueError as err:
        assert str(err) == "/etc/hosts is written twice"
    else:
        raise AssertionError("no error")


def test_oci_archive_is_stable_and_names_its_platform() -> None:
    """Config, manifest and index are canonical JSON: equal specs give equal archives."""
    spec = oci.ImageSpec(arch="arm64", entrypoint=["/x"], cmd=[], user="1:1", env=[],
                         labels={"org.opencontainers.image.version": "1"}, created=0)
    image = oci.build(spec, b"layer", layer.gzip_bytes(b"layer"), "test")
    again = oci.build(spec, b"layer", layer.gzip_bytes(b"layer"), "test")
    assert oci.archive(image, "n:1") == oci.archive(again, "n:1")
    assert spec.platform == {"architecture": "arm64", "os": "linux", "variant": "v8"}
    assert image.manifest_digest in image.blobs
    assert b'"org.opencontainers.image.ref.name":"n:1"' in oci.index(image, "n:1")
