"""The inputs of the portable build: Debian source packages fetched through the machine's own apt
configuration (the signed index, apt's checksums), the pinned minimum versions, and the short,
reasoned list of Debian patches of CPython that the build leaves out."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FETCH = ROOT / "scripts" / "fetch-debian-source"


def pinned() -> dict[str, tuple[str, str]]:
    """build/portable/sources: package -> (suite, minimum version)."""
    rows = {}
    for line in (ROOT / "build" / "portable" / "sources").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            package, suite, minimum = line.split()
            rows[package] = (suite, minimum)
    return rows


def fetch(suite: str, package: str, minimum: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(FETCH), suite, package, minimum], capture_output=True, text=True,
                          timeout=600, check=False)


def test_sources_are_bookworm_cpython_and_trixie_libraries() -> None:
    """CPython is bookworm's 3.11 (the lock's and the tests' minor version); every bundled
    library comes from trixie, the newest supported release."""
    assert pinned() == {
        "python3.11": ("bookworm", pinned()["python3.11"][1]),
        "openssl": ("trixie", pinned()["openssl"][1]),
        "zlib": ("trixie", pinned()["zlib"][1]),
        "libffi": ("trixie", pinned()["libffi"][1]),
    }


def test_fetch_gives_a_verified_source_package_at_or_above_the_minimum() -> None:
    """The newest servable openssl of trixie: a .dsc with its files, in a directory named by
    its version, which is at least the pinned minimum (dpkg's own comparison)."""
    suite, minimum = pinned()["openssl"]
    proc = fetch(suite, "openssl", minimum)
    assert proc.returncode == 0, proc.stderr
    directory = Path(proc.stdout.strip())
    [dsc] = directory.glob("*.dsc")
    version = re.search(r"^Version: (\S+)$", dsc.read_text(), re.MULTILINE)
    assert version, dsc.read_text()
    assert directory.name == f"openssl_{version.group(1)}"
    assert subprocess.run(["dpkg", "--compare-versions", version.group(1), "ge", minimum],
                          check=False).returncode == 0
    assert list(directory.glob("openssl_*.orig.tar.*")), list(directory.iterdir())


def test_fetch_fails_below_the_minimum() -> None:
    """A minimum that no served version meets is a one-line error and exit 1."""
    proc = fetch("trixie", "zlib", "1:99")
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "zlib: no servable version >= 1:99 in trixie" in proc.stderr.splitlines()[-1]


def test_fetch_refuses_an_unknown_package() -> None:
    """A package the suite does not have is exit 1, naming it."""
    proc = fetch("trixie", "no-such-source-package", "0")
    assert proc.returncode == 1
    assert "trixie has no source package no-such-source-package" in proc.stderr


def test_skipped_python_patches_are_layout_only_and_in_the_series() -> None:
    """Every patch the build leaves out is in Debian's series, has a reason, and is neither a
    CVE fix nor an upstream backport; all the others (security fixes included) are applied."""
    suite, minimum = pinned()["python3.11"]
    proc = fetch(suite, "python3.11", minimum)
    assert proc.returncode == 0, proc.stderr
    [debian] = Path(proc.stdout.strip()).glob("*.debian.tar.*")
    series = subprocess.run(["tar", "-xOf", str(debian), "debian/patches/series"],
                            capture_output=True, text=True, check=True).stdout.split()
    skipped = {}
    for line in (ROOT / "build" / "portable" / "python-patches-skipped").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, reason = line.split(maxsplit=1)
            skipped[name] = reason
    assert set(skipped) <= set(series)
    assert all(len(reason) > 20 for reason in skipped.values()), skipped
    assert not [name for name in skipped if name.startswith("CVE-") or "-gh-" in name]
    security = [name for name in series if name.startswith("CVE-")]
    assert len(security) > 30, security  # bookworm's 3.11 carries dozens of CVE fixes
    assert len(skipped) == 7
