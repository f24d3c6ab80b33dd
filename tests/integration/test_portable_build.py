"""The inputs of the portable build: Debian source packages fetched through the machine's own apt
configuration (the signed index, apt's checksums), the pinned minimum versions, and the short,
reasoned list of Debian patches of CPython that the build leaves out."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from tool import make_rootfs

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


def test_fetch_uv_gets_the_arm64_build_without_pip(tmp_path: Path) -> None:
    """The arm64 build's uv comes from the package index through uv itself: this test runs
    under `uv run`, whose python3 first on PATH has no pip (the fresh-clone CI failed when the
    build asked it for one). A second call fetches nothing."""
    version = subprocess.run(["uv", "--version"], capture_output=True, text=True,
                             check=True).stdout.split()[1]
    target = tmp_path / f"uv-{version}-arm64"
    command = [str(ROOT / "build" / "portable" / "fetch-uv"), "arm64", version, str(target)]
    first = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert first.returncode == 0, first.stderr
    uv = Path(first.stdout.strip())
    assert uv == target / "uv"
    header = uv.read_bytes()[:20]
    assert header[:4] == b"\x7fELF" and header[18:20] == b"\xb7\x00"  # EM_AARCH64
    assert "fetching uv" in first.stderr
    again = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert (again.returncode, again.stdout, again.stderr) == (0, first.stdout, "")


def test_fetch_uv_refuses_an_unknown_architecture(tmp_path: Path) -> None:
    proc = subprocess.run([str(ROOT / "build" / "portable" / "fetch-uv"), "riscv64", "0.1.0",
                           str(tmp_path / "uv")], capture_output=True, text=True, check=False)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == "fetch-uv: error: unknown architecture riscv64 (arm64)\n"


# The build roots of build/portable/build (their --include lists, exactly).
BUILD_ROOTS = {"x86_64": "build-essential,quilt,gcc-aarch64-linux-gnu",
               "arm64": "build-essential,quilt,gcc-aarch64-linux-gnu,libc6-dev-arm64-cross"}
COMPILE = {"x86_64": ("gcc", "/lib/x86_64-linux-gnu"),
           "arm64": ("aarch64-linux-gnu-gcc", "/usr/aarch64-linux-gnu/lib")}
MATH = ("#include <math.h>\n"
        "double f(double x) { return pow(x, x) + exp(x) + log(x) + exp2(x) + log2(x); }\n")


@pytest.mark.parametrize("arch", sorted(COMPILE))
def test_check_glibc_fails_without_the_pins_and_passes_with_them(arch: str,
                                                                 tmp_path: Path) -> None:
    """A library calling libm's exp, exp2, log, log2 and pow, compiled in the build root of
    `arch` against bullseye's glibc 2.31: as is, it needs GLIBC_2.29 and check-glibc --max 2.28
    fails; with build/portable/glibc-compat's forced-include header (what every C file of the
    portable build gets) it needs no more than 2.28 and passes."""
    root = make_rootfs("bullseye", include=BUILD_ROOTS[arch])
    (tmp_path / "math.c").write_text(MATH)
    compiler, libdir = COMPILE[arch]
    script = (f"/nsr-build/glibc-compat {arch} {libdir} > /tmp/compat.h && cd /work && "
              f"{compiler} -O2 -shared -fPIC -o plain.so math.c -lm && "
              f"{compiler} -O2 -shared -fPIC -include /tmp/compat.h -o pinned.so math.c -lm")
    proc = subprocess.run([str(ROOT / "build" / "portable" / "in-root"), str(root),
                           "--bind", f"{ROOT / 'build' / 'portable'}:/nsr-build:ro",
                           "--bind", f"{tmp_path}:/work", "--", "/bin/sh", "-c", script],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr

    def gate(name: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(ROOT / "scripts" / "check-glibc"), "--plain", "--max", "2.28",
                               str(tmp_path / name)], capture_output=True, text=True, check=False)

    plain = gate("plain.so")
    assert (plain.returncode, plain.stdout) == (1, "2.29\n"), plain.stderr
    assert "needs GLIBC 2.29, more than the allowed 2.28" in plain.stderr
    pinned = gate("pinned.so")
    assert pinned.returncode == 0, pinned.stderr
    assert pinned.stdout == {"x86_64": "2.2.5\n", "arm64": "2.17\n"}[arch], pinned.stderr
