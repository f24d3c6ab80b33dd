"""Debian packages for the image: a private apt configuration derived from the machine's, the
download of exact .deb files (cached by name, version and architecture, checked by SHA256), and
reading a .deb's control data and files."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

# What the image needs from Debian, and why:
#   base-files    /etc/os-release (image scanners identify the distribution by it), the licence
#                 texts the copyright files refer to (/usr/share/common-licenses)
#   netbase       /etc/services, /etc/protocols (getaddrinfo with service names)
#   libc6         glibc: loader, libc, libm, libdl, libpthread, NSS files+dns (in libc since 2.34)
#   libgcc-s1     glibc loads libgcc_s for thread cancellation and unwinding
#   gcc-12-base   libgcc-s1's dependency: its copyright file
#   ca-certificates  the Mozilla CA set the bundle is made from
# (No zlib1g: the portable build's bootloader links its zlib statically, and the binary carries
# the libz its CPython uses.)
PACKAGES = ("base-files", "netbase", "libc6", "libgcc-s1", "gcc-12-base", "ca-certificates")


class DebianError(Exception):
    """A failure to reach or read the Debian archive; its message is shown as is."""


@dataclass(frozen=True)
class Repo:
    uri: str
    suite: str
    component: str = "main"

    def line(self, arch: str) -> str:
        return f"deb [arch={arch}] {self.uri} {self.suite} {self.component}"


def derive_repos(targets: list[tuple[str, str, str]], suite: str) -> list[Repo]:
    """The suite, its -updates and its -security, from the machine's (uri, release, component)
    index targets: exactly the machine's entries when it has the suite, else built from its
    archive and security URIs (a mirror holds every suite)."""
    mains = [(uri, release) for uri, release, component in targets if component == "main"]
    family = {suite, f"{suite}-updates", f"{suite}-security"}
    own = [Repo(uri, release) for uri, release in mains if release in family]
    if any(repo.suite == suite for repo in own):
        return sorted(set(own), key=lambda r: (r.suite, r.uri))
    archive = next((uri for uri, release in mains
                    if "/" not in release and not release.endswith("-security")), None)
    if archive is None:
        raise DebianError("no Debian archive with a 'main' component in the machine's apt "
                          "configuration (apt-get indextargets lists none; see "
                          "/etc/apt/sources.list and /etc/apt/sources.list.d/)")
    security = next((uri for uri, release in mains if release.endswith("-security")), None)
    repos = [Repo(archive, suite), Repo(archive, f"{suite}-updates")]
    if security is not None:
        repos.append(Repo(security, f"{suite}-security"))
    return repos


def machine_targets() -> list[tuple[str, str, str]]:
    """(uri, release, component) of every Packages index the machine's apt configuration has."""
    proc = subprocess.run(
        ["apt-get", "indextargets", "--format", "$(REPO_URI) $(RELEASE) $(COMPONENT)",
         "Identifier: Packages"], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise DebianError(f"apt-get indextargets failed: {proc.stderr.strip()}")
    triples = []
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3:
            triples.append((parts[0], parts[1], parts[2]))
    return sorted(set(triples))


@dataclass(frozen=True)
class Candidate:
    package: str
    version: str
    arch: str
    sha256: str
    source: str

    @property
    def filename(self) -> str:
        # apt's own naming, the epoch's colon escaped
        return f"{self.package}_{self.version.replace(':', '%3a')}_{self.arch}.deb"


class PrivateApt:
    """apt for one architecture and suite with its own lists and no system state: the machine's
    apt.conf.d (proxies, certificates) and trusted keys apply; its sources and dpkg status don't."""

    def __init__(self, home: Path, arch: str, repos: list[Repo]) -> None:
        self.home = home
        self.arch = arch
        self.repos = repos
        for sub in ("lists/partial", "cache/archives/partial", "parts", "prefs"):
            (home / sub).mkdir(parents=True, exist_ok=True)
        (home / "status").touch()
        (home / "sources.list").write_text("".join(r.line(arch) + "\n" for r in repos))

    def options(self) -> list[str]:
        h = self.home
        opts = {
            "Dir::State": str(h), "Dir::State::Lists": str(h / "lists"),
            "Dir::State::status": str(h / "status"), "Dir::Cache": str(h / "cache"),
            "Dir::Etc::SourceList": str(h / "sources.list"),
            "Dir::Etc::SourceParts": str(h / "parts"),
            "Dir::Etc::Preferences": str(h / "prefs" / "none"),
            "Dir::Etc::PreferencesParts": str(h / "prefs"),
            "APT::Architecture": self.arch, "APT::Architectures": self.arch,
            "Acquire::Languages": "none",
            # only Packages: no AppStream metadata, no Contents
            "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled": "false",
            "Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled": "false",
            "Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled": "false",
            "Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled": "false",
        }
        if os.geteuid() == 0:
            opts["APT::Sandbox::User"] = "root"   # the _apt user cannot write our private dirs
        return [arg for key, value in opts.items() for arg in ("-o", f"{key}={value}")]

    def run(self, *args: str, cwd: Path | None = None) -> str:
        proc = subprocess.run(["apt-get", *self.options(), *args], capture_output=True,
                              text=True, check=False, cwd=cwd)
        if proc.returncode != 0:
            raise DebianError(f"apt-get {args[0]} ({self.arch}) failed:\n{proc.stderr.strip()}")
        return proc.stdout

    def update(self) -> None:
        self.run("update", "-qq")

    def candidates(self, packages: list[str]) -> list[Candidate]:
        """The version apt would install of each package (one apt-cache call for all)."""
        proc = subprocess.run(["apt-cache", *self.options(), "show", "--no-all-versions",
                               *packages], capture_output=True, text=True, check=False)
        found = {}
        for chunk in proc.stdout.split("\n\n"):
            if chunk.strip():
                fields = parse_control(chunk)
                found[fields["Package"]] = Candidate(
                    fields["Package"], fields["Version"], fields["Architecture"],
                    fields["SHA256"], fields.get("Source", fields["Package"]).split(" ")[0])
        missing = [p for p in packages if p not in found]
        if proc.returncode != 0 or missing:
            raise DebianError(f"not in the Debian archive for {self.arch}: {', '.join(missing)} "
                              f"{proc.stderr.strip()}")
        return [found[p] for p in packages]

    def packages_index(self) -> list[dict[str, str]]:
        """Every paragraph of the Packages lists apt fetched for this architecture."""
        proc = subprocess.run(["apt-cache", *self.options(), "dumpavail"], capture_output=True,
                              text=True, check=False)
        if proc.returncode != 0:
            raise DebianError(f"apt-cache dumpavail ({self.arch}) failed: {proc.stderr.strip()}")
        return [parse_control(chunk) for chunk in proc.stdout.split("\n\n") if chunk.strip()]

    def download(self, candidate: Candidate, cache: Path) -> Path:
        """The .deb, from `cache` when its SHA256 matches the index, else downloaded by apt."""
        cache.mkdir(parents=True, exist_ok=True)
        target = cache / candidate.filename
        if target.exists() and sha256_file(target) == candidate.sha256:
            return target
        scratch = cache / f".partial-{os.getpid()}"
        scratch.mkdir(exist_ok=True)
        try:
            self.run("download", "-qq", f"{candidate.package}={candidate.version}", cwd=scratch)
            [got] = list(scratch.glob("*.deb"))
            if sha256_file(got) != candidate.sha256:
                raise DebianError(f"{got.name}: SHA256 differs from the signed index")
            os.replace(got, target)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return target


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def parse_control(text: str) -> dict[str, str]:
    """One deb822 paragraph -> fields (continuation lines kept with their newlines)."""
    fields: dict[str, str] = {}
    key = None
    for line in text.splitlines():
        if line[:1] in (" ", "\t") and key is not None:
            fields[key] += "\n" + line
        elif ":" in line:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


@dataclass(frozen=True)
class Deb:
    """A .deb read into memory: its control paragraph (text, as dpkg keeps it), md5sums,
    conffiles and data archive."""

    control: str
    md5sums: dict[str, str]
    conffiles: list[str]
    data: bytes

    @property
    def fields(self) -> dict[str, str]:
        return parse_control(self.control)

    def members(self) -> list[tuple[tarfile.TarInfo, bytes]]:
        """The data archive's members in order, each with its content (b"" but for files)."""
        out = []
        with tarfile.open(fileobj=io.BytesIO(self.data)) as archive:
            for member in archive:
                handle = archive.extractfile(member) if member.isreg() else None
                out.append((member, handle.read() if handle is not None else b""))
        return out


def read_deb(path: Path) -> Deb:
    def dpkg_deb(flag: str) -> bytes:
        proc = subprocess.run(["dpkg-deb", flag, str(path)], capture_output=True, check=False)
        if proc.returncode != 0:
            raise DebianError(f"dpkg-deb {flag} {path.name}: {proc.stderr.decode().strip()}")
        return proc.stdout

    control_files: dict[str, str] = {}
    with tarfile.open(fileobj=io.BytesIO(dpkg_deb("--ctrl-tarfile"))) as ctrl:
        for member in ctrl.getmembers():
            name = member.name.removeprefix("./")
            if member.isfile() and name in ("control", "md5sums", "conffiles"):
                handle = ctrl.extractfile(member)
                assert handle is not None
                control_files[name] = handle.read().decode("utf-8")
    md5sums = {}
    for line in control_files.get("md5sums", "").splitlines():
        digest, _, name = line.partition("  ")
        md5sums[name.strip()] = digest
    conffiles = [line.split()[0] for line in control_files.get("conffiles", "").splitlines()
                 if line.strip()]
    return Deb(control_files["control"].strip("\n"), md5sums, conffiles,
               dpkg_deb("--fsys-tarfile"))
