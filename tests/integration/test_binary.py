"""The portable binary (what ships) runs without Python on the Linux hosts operators have: in
minimal Debian 11 (bullseye, glibc 2.31: the floor it is built for) and Debian 12 (bookworm)
roots, with a noexec TMPDIR (fails loudly), and with no newer glibc than 2.31. The whole
end-to-end suite runs it in the bullseye root too (tests/integration/tool.py: binary_tool); the
host build (this machine's Python) only has to pass its smoke tests.

Needs root (chroot, mount, unshare) and debootstrap: ``scripts/make-rootfs`` builds each
Python-free root once into the cache (about a minute each) and later runs reuse it. Nothing here
is ever skipped: a machine that cannot do it makes the tests fail or error.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from db import cypher, env_for, names
from tool import Result, ensure_binary, in_root, make_rootfs, system_tool, version

ROOT = Path(__file__).resolve().parents[2]
ALL = {"compute_pk", "kafka_topic", "compute_tags", "queue_interval", "compute_buffering_since"}
NEWEST_FIRST = ["compute_buffering_since", "queue_interval", "compute_tags", "kafka_topic",
                "compute_pk"]
GLIBC_FLOOR = "2.31"  # Debian 11's; the build fails above it (scripts/build-binary --portable)
ROOTS = {"bullseye": "2.31", "bookworm": "2.36"}  # suite -> its glibc


@pytest.fixture(scope="session")
def binary() -> Path:
    """The portable binary, (re)built when older than any of its sources."""
    return ensure_binary()


@pytest.fixture(scope="session", params=sorted(ROOTS))
def rootfs(request: pytest.FixtureRequest) -> Path:
    """A minimal Debian root without Python, of each suite (built once, then cached)."""
    return make_rootfs(request.param)


def test_rootfs_has_no_python(rootfs: Path) -> None:
    """The root is a real Debian (dpkg, a shell) of its suite with no Python interpreter or
    libpython, and the glibc the suite is known for."""
    suite = rootfs.name.split("-")[0]  # scripts/make-rootfs names it <suite>-<arch>-<key>
    assert (rootfs / "var" / "lib" / "dpkg" / "status").exists()
    assert suite in (rootfs / "etc" / "os-release").read_text()
    pythons = [str(p.relative_to(rootfs)) for p in rootfs.rglob("*")
               if re.match(r"(lib)?python", p.name) and not p.is_dir()]
    assert pythons == [], f"the root has a python: {pythons}"
    packages = (rootfs / "var" / "lib" / "dpkg" / "status").read_text()
    assert not re.search(r"^Package: (lib)?python", packages, re.MULTILINE)
    proc = subprocess.run([system_tool("chroot"), str(rootfs), "/bin/sh", "-c",
                           "command -v python3 python; ldd --version | head -n 1"],
                          env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert "python" not in proc.stdout, f"python on the root's PATH: {proc.stdout}"
    assert proc.stdout.split()[-1] == ROOTS[suite], proc.stdout


def test_version_statements_and_a_usage_error_in_each_root(rootfs: Path, binary: Path) -> None:
    """In each Python-free root: --version names the tool, the Debian CPython and the OpenSSL it
    carries; `statements` prints the apply table; a usage error is one line and exit 2."""
    r = in_root(rootfs, binary, "--version")
    assert r.code == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == f"neo4j-schema-rollback {version()}"
    assert re.fullmatch(r"python: 3\.11\.\d+ \(linux; Debian python3\.11 3\.11\.\S+\)",
                        lines[3]), lines
    assert re.fullmatch(r"openssl: OpenSSL 3\.\d+\.\d+ .*", lines[5]), lines
    r = in_root(rootfs, binary, "statements", "--action", "apply", "--server-version", "4.4")
    assert r.code == 0, r.stderr
    assert r.stdout.startswith("CREATE CONSTRAINT compute_pk IF NOT EXISTS FOR"), r.stdout
    assert all(line.endswith(";") for line in r.stdout.splitlines())
    r = in_root(rootfs, binary, "apply", "--no-such-flag", "--log-format", "json")
    assert r.code == 2
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "--no-such-flag" in r.stderr
    assert [e["event"] for e in r.events] == ["error", "run.end"]
    assert r.end["exit_code"] == 2


def test_apply_and_rollback_in_a_root_without_python(rootfs: Path, binary: Path,
                                                     clean_neo4j: Any) -> None:
    """A real apply, then a real `rollback --yes`, from each Python-free root against the
    test-bed server over loopback, with only the connection variables set: exit 0, JSON Lines
    ending in a successful run.end, and the server's schema really gone."""

    def run(*args: str) -> Result:
        return in_root(rootfs, binary, *args, env=env_for(clean_neo4j),
                       secrets=(clean_neo4j.password,))

    applied = run("apply", "--log-format", "json")
    assert applied.code == 0, applied.stdout + applied.stderr
    assert applied.end["outcome"] == "success"
    assert names(clean_neo4j) == ALL

    r = run("rollback", "--yes", "--log-format", "json")
    assert r.code == 0, r.stdout + r.stderr
    assert r.events, "no JSON lines on stdout"
    assert r.events[0]["event"] == "run.start"
    assert r.events[0]["command"] == "rollback"
    assert r.events[-1]["event"] == "run.end"
    assert r.end["outcome"] == "success"
    assert r.end["exit_code"] == 0
    assert r.end["done"] == NEWEST_FIRST
    assert r.end["not_done"] == []
    assert names(clean_neo4j) == set()
    assert cypher(clean_neo4j, "RETURN 1 AS one") == [{"one": 1}]


def test_portable_binary_passes_the_smoke_tests(binary: Path) -> None:
    """scripts/smoke-binary --openssl: every help screen, statements for every line, the exit
    codes offline, and --version's OpenSSL line equal to the libcrypto the archive carries."""
    proc = subprocess.run([str(ROOT / "scripts" / "smoke-binary"), "--openssl", str(binary)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "smoke tests passed" in proc.stderr


def test_host_build_passes_its_smoke_tests() -> None:
    """The host build (this machine's Python: for development) is built and smoke-tested by
    scripts/build-binary, and writes no release asset name."""
    host = ensure_binary(portable=False)
    proc = subprocess.run([str(ROOT / "scripts" / "smoke-binary"), str(host)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert host.name == "neo4j-schema-rollback"


def test_sources_json_names_every_bundled_shared_object(binary: Path) -> None:
    """<asset>.sources.json names the Debian source of every native library in the archive
    (OpenSSL and zlib from trixie, libpython from bookworm's python3.11) and the CPython that
    the extension modules belong to."""
    record = json.loads(Path(f"{binary}.sources.json").read_text())
    archive = archive_binaries(binary)
    assert sorted(record["libraries"]) == [name for name in archive if "/lib-dynload/" not in name]
    assert any("/lib-dynload/" in name for name in archive)
    assert record["arch"] == "x86_64"
    assert record["python"]["debian_source"] == "python3.11"
    assert "+deb12u" in record["python"]["debian_version"]
    assert record["python"]["version"] == record["python"]["debian_version"].split("-")[0]
    by_name = {Path(name).name: source for name, source in record["libraries"].items()}
    assert by_name["libssl.so.3"]["debian_source"] == "openssl"
    assert "~deb13u" in by_name["libssl.so.3"]["debian_version"]
    assert by_name["libcrypto.so.3"] == by_name["libssl.so.3"]
    assert by_name["libz.so.1"]["debian_source"] == "zlib"
    assert by_name["libpython3.11.so.1.0"]["debian_source"] == "python3.11"


def stable(stdout: str) -> str:
    """stdout with each JSON event's per-run values (time, run id, duration) taken out."""
    lines = []
    for line in stdout.splitlines(keepends=True):
        if line.startswith("{"):
            event = {key: value for key, value in json.loads(line).items()
                     if key not in ("timestamp", "run_id", "duration_ms")}
            line = json.dumps(event) + "\n"
        lines.append(line)
    return "".join(lines)


def archive_binaries(binary: Path) -> list[str]:
    """The names of the shared objects in a one-file binary's archive (PyInstaller's reader)."""
    from PyInstaller.archive.readers import CArchiveReader

    return sorted(name for name, entry in CArchiveReader(str(binary)).toc.items()
                  if entry[-1] == "b")


@contextlib.contextmanager
def tmpfs(where: Path, options: str) -> Iterator[Path]:
    """A small tmpfs mounted at `where` with `options`; always unmounted."""
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"{options},size=64m", "tmpfs", str(where)],
                   check=True, capture_output=True, text=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


def run_binary(binary: Path, tmpdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The binary with a bare environment: no Python on PATH, no PYTHON*, TMPDIR=`tmpdir`."""
    return subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=120,
                          check=False, stdin=subprocess.DEVNULL,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmpdir),
                               "TMPDIR": str(tmpdir)})


def test_noexec_tmpdir_fails_loudly_and_an_exec_one_works(binary: Path, tmp_path: Path) -> None:
    """The one-file binary unpacks its shared libraries into $TMPDIR and loads them from there:
    on a noexec file system the dynamic loader refuses them, and the run fails at once with
    the loader's message (seen here: ``<binary>: error while loading shared libraries:
    libz.so.1: failed to map segment from shared object``, exit 127), leaving nothing behind.
    Pointing TMPDIR at an exec-allowed folder is the fix."""
    with tmpfs(tmp_path / "noexec", "noexec") as noexec:
        findmnt = subprocess.run(["findmnt", "-n", "-o", "OPTIONS", str(noexec)],
                                 capture_output=True, text=True, check=True)
        assert "noexec" in findmnt.stdout.split(",")
        proc = run_binary(binary, noexec, "--version")
        assert proc.returncode != 0, proc.stdout + proc.stderr
        assert "error while loading shared libraries" in proc.stderr, proc.stderr
        assert "failed to map segment from shared object" in proc.stderr, proc.stderr
        assert "neo4j-schema-rollback 0" not in proc.stdout
        assert list(noexec.iterdir()) == [], "the failed run left its unpacked files behind"

    exec_dir = tmp_path / "exec"
    exec_dir.mkdir()
    proc = run_binary(binary, exec_dir, "--version")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[0] == f"neo4j-schema-rollback {version()}"
    assert list(exec_dir.iterdir()) == [], "the run left its unpacked files behind"


def test_closed_stdout_and_stderr(binary: Path, tmp_path: Path) -> None:
    """The binary ends with os._exit after flushing: with stderr closed (`2>&-`) a run still
    succeeds with all of its output; with the reader of stdout gone it is a quiet exit 1."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TMPDIR": str(tmp_path)}
    normal = subprocess.run([str(binary), "statements"], capture_output=True, text=True,
                            check=True, env=env)
    r = subprocess.run([str(binary), "statements"], stdout=subprocess.PIPE, text=True,
                       check=False, env=env, preexec_fn=lambda: os.close(2))
    assert r.returncode == 0
    assert r.stdout == normal.stdout != ""
    read, write = os.pipe()
    os.close(read)
    gone = subprocess.run([str(binary), "statements"], stdout=write, stderr=subprocess.PIPE,
                          text=True, check=False, env=env)
    os.close(write)
    assert gone.returncode == 1
    assert gone.stderr == ""


def _glibc_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def test_glibc_needed_is_at_most_the_floor(binary: Path) -> None:
    """scripts/check-glibc prints the highest GLIBC symbol version the binary (bootloader and
    every bundled library) needs: at most 2.31, Debian 11's, whose root runs the whole suite;
    its --max gate refuses a lower floor."""
    proc = subprocess.run([str(ROOT / "scripts" / "check-glibc"), str(binary)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    needed = proc.stdout.strip()
    assert re.fullmatch(r"2\.\d{1,2}(\.\d+)?", needed), f"not a glibc version: {proc.stdout!r}"
    assert _glibc_tuple(needed) <= _glibc_tuple(GLIBC_FLOOR), needed
    check_glibc = str(ROOT / "scripts" / "check-glibc")
    gate = subprocess.run([check_glibc, "--max", GLIBC_FLOOR, str(binary)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)
    assert gate.returncode == 0, gate.stderr
    lower = f"2.{int(needed.split('.')[1]) - 1}"
    refused = subprocess.run([check_glibc, "--max", lower, str(binary)], cwd=ROOT,
                             capture_output=True, text=True, timeout=300, check=False)
    assert refused.returncode == 1, refused.stderr
    assert f"needs GLIBC {needed}, more than the allowed {lower}" in refused.stderr


@pytest.mark.parametrize("args", [
    ["--help"], ["apply", "--help"], ["rollback", "--help"], ["status", "--help"],
    ["statements", "--help"], ["--no-such-flag"], ["statements", "--action", "drop"],
    ["rollback", "--to", "1.5"], ["statements"], ["statements", "--action", "rollback",
                                                  "--server-version", "4.4"],
], ids=" ".join)
@pytest.mark.parametrize("columns", ["80", "100", "120"])
def test_the_binary_prints_what_the_module_prints(binary: Path, tmp_path: Path,
                                                  args: list[str], columns: str) -> None:
    """The build patches the bundled libraries (cyclopts' help modules among them): help,
    usage errors and statements are exactly those of `python -m neo4j_schema_rollback`, at
    80, 100 and 120 columns."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TMPDIR": str(tmp_path),
           "COLUMNS": columns, "TERM": "dumb"}
    frozen = subprocess.run([str(binary), *args], capture_output=True, text=True, check=False,
                            env=env, stdin=subprocess.DEVNULL)
    module = subprocess.run([sys.executable, "-m", "neo4j_schema_rollback", *args],
                            capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL,
                            env={**env, "PYTHONPATH": str(ROOT / "app")})
    assert (frozen.returncode, stable(frozen.stdout), frozen.stderr) == \
        (module.returncode, stable(module.stdout), module.stderr)
    assert frozen.stdout or frozen.stderr
