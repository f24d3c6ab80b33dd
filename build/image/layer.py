"""The image's one layer as data: Debian packages unpacked (with dpkg status entries so scanners
identify them), the user, NSS configuration, CA bundle, licence notices and the binary."""

from __future__ import annotations

import gzip
import hashlib
import io
import stat
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, field

from debian import Deb

UID = 65532   # the image's user and group (the "nonroot" of distroless images)
BINARY_PATH = "usr/local/bin/neo4j-schema-rollback"
NOTICE_DIR = "usr/share/doc/neo4j-schema-rollback"

PASSWD = ("root:x:0:0:root:/root:/usr/sbin/nologin\n"
          "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
          f"nonroot:x:{UID}:{UID}:nonroot:/nonexistent:/usr/sbin/nologin\n")
GROUP = f"root:x:0:\nnogroup:x:65534:\nnonroot:x:{UID}:\n"
# hosts: files then DNS, the order glibc uses without the file; both modules are in libc.so.6
NSSWITCH = ("passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\n"
            "protocols: files\nservices: files\nethers: files\nrpc: files\n")

# Package files left out of the image: documentation but the copyright files, and what needs a
# shell or serves no binary here (iconv's gconv modules, update-ca-certificates, a motd script).
_DROPPED_TREES = ("usr/share/man", "usr/share/info", "usr/share/lintian", "usr/share/locale",
                  "usr/share/bug", "usr/sbin", "etc/update-motd.d/10-uname")


def kept(path: str) -> bool:
    """Whether a package's file (path without a leading slash) goes into the image."""
    parts = path.split("/")
    if parts[:3] == ["usr", "share", "doc"]:
        return len(parts) <= 4 or (len(parts) == 5 and parts[4] == "copyright")
    if any(path == tree or path.startswith(tree + "/") for tree in _DROPPED_TREES):
        return False
    return not (len(parts) >= 4 and parts[:2] == ["usr", "lib"] and parts[3] == "gconv")


@dataclass(frozen=True)
class Entry:
    """One layer member. path has no leading slash; kind is dir, file or symlink."""

    path: str
    kind: str
    mode: int
    data: bytes = b""
    target: str = ""
    uid: int = 0
    gid: int = 0


@dataclass
class Tree:
    entries: dict[str, Entry] = field(default_factory=dict)

    def add(self, entry: Entry) -> None:
        old = self.entries.get(entry.path)
        if old is not None:
            if old.kind == entry.kind == "dir":
                return   # a directory shared by packages
            raise ValueError(f"/{entry.path} is written twice")
        parent = entry.path.rpartition("/")[0]
        if parent and parent not in self.entries:
            self.add(Entry(parent, "dir", 0o755))
        self.entries[entry.path] = entry

    def file(self, path: str, data: bytes | str, mode: int = 0o644) -> None:
        raw = data.encode() if isinstance(data, str) else data
        self.add(Entry(path, "file", mode, raw))

    def sorted(self) -> list[Entry]:
        return [self.entries[p] for p in sorted(self.entries, key=lambda p: p.split("/"))]


def _normal(name: str) -> str:
    path = name.removeprefix("./").strip("/")
    return "" if path == "." else path


def install(tree: Tree, deb: Deb) -> list[str]:
    """Unpack the kept files of `deb` into `tree`; returns the paths installed (as dpkg lists
    them: '/.' and absolute paths), in the package's order."""
    installed = ["/."]
    for member, data in deb.members():
        path = _normal(member.name)
        if not path or not kept(path):
            continue
        mode = stat.S_IMODE(member.mode)
        if member.isdir():
            tree.add(Entry(path, "dir", mode))
        elif member.issym():
            tree.add(Entry(path, "symlink", 0o777, target=member.linkname))
        elif member.isreg():
            tree.add(Entry(path, "file", mode, data))
        elif member.islnk():
            target = tree.entries[_normal(member.linkname)]
            tree.add(Entry(path, "file", mode, target.data))
        else:
            raise ValueError(f"{deb.fields['Package']}: unexpected member type {member.name}")
        installed.append("/" + path)
    return installed


def dpkg_status(control: str, conffiles: dict[str, str]) -> str:
    """The package's paragraph in /var/lib/dpkg/status: its control with Status after Package,
    and its conffiles with their MD5 (as dpkg records them at installation)."""
    lines = control.strip("\n").splitlines()
    assert lines[0].startswith("Package: "), lines[0]
    out = [lines[0], "Status: install ok installed", *lines[1:]]
    if conffiles:
        out.append("Conffiles:")
        out.extend(f" {path} {digest}" for path, digest in sorted(conffiles.items()))
    return "\n".join(out) + "\n"


def install_packages(tree: Tree, debs: Iterable[Deb]) -> None:
    """Every package, plus /var/lib/dpkg/status and info/<pkg>.list and .md5sums."""
    paragraphs = []
    for deb in sorted(debs, key=lambda d: d.fields["Package"]):
        fields = deb.fields
        paths = install(tree, deb)
        name = fields["Package"]
        if fields.get("Multi-Arch") == "same":
            name += ":" + fields["Architecture"]
        present = {p.lstrip("/") for p in paths}
        conffiles = {c: hashlib.md5(tree.entries[c.lstrip("/")].data).hexdigest()
                     for c in deb.conffiles if c.lstrip("/") in present}
        paragraphs.append(dpkg_status(deb.control, conffiles))
        tree.file(f"var/lib/dpkg/info/{name}.list", "".join(p + "\n" for p in paths))
        md5 = "".join(f"{digest}  {path}\n" for path, digest in deb.md5sums.items()
                      if path in present)
        if md5:
            tree.file(f"var/lib/dpkg/info/{name}.md5sums", md5)
    tree.file("var/lib/dpkg/status", "\n".join(paragraphs))


def ca_bundle(tree: Tree) -> bytes:
    """What update-ca-certificates would write with Debian's default selection: every Mozilla
    certificate, in name order."""
    prefix = "usr/share/ca-certificates/mozilla/"
    certs = [tree.entries[p].data for p in sorted(tree.entries)
             if p.startswith(prefix) and p.endswith(".crt")]
    if not certs:
        raise ValueError("ca-certificates gave no certificates")
    return b"".join(c if c.endswith(b"\n") else c + b"\n" for c in certs)


def add_system_files(tree: Tree) -> None:
    """The user, groups, NSS configuration, CA bundle and a world-writable sticky /tmp."""
    tree.file("etc/passwd", PASSWD)
    tree.file("etc/group", GROUP)
    tree.file("etc/nsswitch.conf", NSSWITCH)
    tree.file("etc/ssl/certs/ca-certificates.crt", ca_bundle(tree))
    tree.add(Entry("tmp", "dir", 0o1777))


def layer_tar(tree: Tree, mtime: int) -> bytes:
    """The layer as an uncompressed tar: sorted, every time `mtime`, numeric owners only."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as archive:
        for entry in tree.sorted():
            info = tarfile.TarInfo(entry.path)
            info.mtime = mtime
            info.mode = entry.mode
            info.uid, info.gid = entry.uid, entry.gid
            info.uname = info.gname = ""
            if entry.kind == "dir":
                info.type = tarfile.DIRTYPE
                archive.addfile(info)
            elif entry.kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = entry.target
                archive.addfile(info)
            else:
                info.size = len(entry.data)
                archive.addfile(info, io.BytesIO(entry.data))
    return buffer.getvalue()


def gzip_bytes(data: bytes) -> bytes:
    """gzip with no name and time in its header, so equal input gives equal output."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, filename="", compresslevel=9) as out:
        out.write(data)
    return buffer.getvalue()
