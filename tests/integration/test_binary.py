"""The portable binary (what ships) runs without Python on the Linux hosts operators have: in
minimal Debian 11 (bullseye, glibc 2.31) and Debian 12 (bookworm) roots, on hardened hosts (a
noexec TMPDIR and /tmp: it unpacks elsewhere by itself; nowhere to unpack: one line, exit 73),
and with no newer glibc than 2.28 (RHEL 8's) by symbol versions. The whole end-to-end suite
runs it in the bullseye root too (tests/integration/tool.py: binary_tool); the host build (this
machine's Python) only has to pass its smoke tests.

Needs root (chroot, mount, unshare) and debootstrap: ``scripts/make-rootfs`` builds each
Python-free root once into the cache (about a minute each) and later runs reuse it. Nothing here
is ever skipped: a machine that cannot do it makes the tests fail or error.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from db import cypher, env_for, names
from tool import (
    UNPACK_EXIT,
    Result,
    check,
    ensure_binary,
    hardened,
    in_root,
    make_rootfs,
    root_command,
    system_tool,
    unpack_error,
    version,
)

ROOT = Path(__file__).resolve().parents[2]
ALL = {"compute_pk", "kafka_topic", "compute_tags", "queue_interval", "compute_buffering_since"}
NEWEST_FIRST = ["compute_buffering_since", "queue_interval", "compute_tags", "kafka_topic",
                "compute_pk"]
GLIBC_FLOOR = "2.28"  # RHEL 8's; the build fails above it (scripts/build-binary --portable)
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


def test_the_bootloader_needs_only_glibc_and_is_named_in_sources_json(binary: Path) -> None:
    """The bootloader is built from the pinned PyInstaller sdist with zlib linked statically:
    `readelf -d` lists glibc's libraries only (no libz.so.1), and sources.json names its source,
    the sdist's hash (uv.lock's), the patch and the zlib in it."""
    dynamic = subprocess.run(["readelf", "-d", str(binary)], capture_output=True, text=True,
                             check=True).stdout
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+)\]", dynamic)
    assert set(needed) == {"libdl.so.2", "libpthread.so.0", "libc.so.6"}, needed
    lock = (ROOT / "uv.lock").read_text()
    pinned = re.search(r'name = "pyinstaller"\nversion = "([^"]+)"(?:.|\n)*?sdist = \{[^}]*'
                       r'hash = "sha256:([0-9a-f]{64})"', lock)
    assert pinned, "no pyinstaller sdist in uv.lock"
    record = json.loads(Path(f"{binary}.sources.json").read_text())
    assert record["bootloader"] == {
        "source": "pyinstaller sdist", "version": pinned.group(1),
        "sdist_sha256": pinned.group(2), "patches": ["build/spec/bootloader_patches.py"],
        "zlib": {"version": "1.3.2", "from": "pyinstaller's bundled copy, linked statically"}}


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


SECOND_UID = 4242  # a real second user: no passwd entry needed, setpriv sets the IDs


def run_hardened(binary: Path, setup: str, env: dict[str, str], *args: str,
                 uid: int | None = None) -> Result:
    """The binary in the Python-less bullseye root with `setup` (see hardened) and exactly
    `env`; never a traceback, never the loader's words."""
    proc = subprocess.run([*root_command(make_rootfs("bullseye"), binary, setup, uid), *args],
                          env=env, capture_output=True, text=True, timeout=300, check=False,
                          stdin=subprocess.DEVNULL)
    result = Result(proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "error while loading shared libraries" not in proc.stderr, proc.stderr
    return check(result, args, ()) if "json" in args else result


def test_noexec_tmpdir_and_tmp_fall_back_to_home_cache(binary: Path, tmp_path: Path,
                                                       clean_neo4j: Any) -> None:
    """TMPDIR on a real noexec tmpfs and /tmp itself noexec, as on a CIS-hardened host: the
    bootloader passes both over (and the binary's read-only directory) and unpacks into a
    private directory of its own under $HOME/.cache, which it makes (mode 0700); apply,
    status and rollback all succeed against the server. The unpack cache, in $HOME/.cache too,
    serves them; with it off, each run unpacks per start there and leaves nothing behind."""
    noexec = tmp_path / "noexec"
    noexec.mkdir()
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    empty = tmp_path / "no-python-bin"
    empty.mkdir()
    # $HOME: a bind of the machine's folder (exec allowed) at /root, to look into afterwards
    setup = hardened(noexec, home=None, extra=f'$MOUNT --bind "{home}" "$root/root"')
    env = {"PATH": str(empty), "HOME": "/root", "TMPDIR": str(noexec), **env_for(clean_neo4j)}

    def run(*args: str) -> Result:
        r = run_hardened(binary, setup, env, *args, "--log-format", "json")
        for secret in (clean_neo4j.password,):
            assert secret not in r.stdout + r.stderr
        return r

    r = run("apply")
    assert r.code == 0, r.stdout + r.stderr
    assert r.end["outcome"] == "success"
    assert names(clean_neo4j) == ALL
    r = run("status", "--expect", "applied")
    assert r.code == 0, r.stdout + r.stderr
    assert r.states() == {name: "present" for name in ALL}
    r = run("rollback", "--yes")
    assert r.code == 0, r.stdout + r.stderr
    assert r.end["done"] == NEWEST_FIRST
    assert names(clean_neo4j) == set()
    cache = home / ".cache"
    assert cache.stat().st_mode & 0o777 == 0o700
    # the first run filled the unpack cache there, the next reused it; nothing else is left
    assert [path.name for path in cache.iterdir()] == ["neo4j-schema-rollback"]
    [copy] = (cache / "neo4j-schema-rollback").iterdir()
    assert (copy / ".complete").is_file()
    # with the cache off: per start, into a private folder of $HOME/.cache, removed after
    env["NEO4J_SCHEMA_ROLLBACK_NO_CACHE"] = "1"
    r = run("status", "--expect", "absent")
    assert r.code == 0, r.stdout + r.stderr
    assert [path.name for path in cache.iterdir()] == ["neo4j-schema-rollback"]


def test_every_candidate_noexec_is_one_line_and_exit_73(binary: Path, tmp_path: Path) -> None:
    """TMPDIR, /tmp, XDG_RUNTIME_DIR and $HOME/.cache all noexec, the binary's directory
    read-only: one line naming each candidate and what to set, exit 73, before anything is
    unpacked (even with --wait); with TMPDIR unset the first candidate is /tmp."""
    noexec = tmp_path / "noexec"
    xdg = tmp_path / "xdg"  # under /tmp, which is noexec here
    for folder in (noexec, xdg):
        folder.mkdir(mode=0o700)
    setup = hardened(noexec, home="mode=0700,noexec")
    env = {"PATH": "/usr/bin:/bin", "HOME": "/root", "XDG_RUNTIME_DIR": str(xdg)}
    rest = (f"XDG_RUNTIME_DIR {xdg}: mounted noexec, the binary's directory {binary.parent}: "
            "not writable, HOME/.cache /root/.cache: mounted noexec")
    r = run_hardened(binary, setup, {**env, "TMPDIR": str(noexec)}, "apply", "--wait", "120")
    assert (r.code, r.stdout, r.stderr) == (
        UNPACK_EXIT, "", unpack_error(binary, f"TMPDIR {noexec}: mounted noexec, {rest}"))
    assert list(noexec.iterdir()) == []  # the machine's folder under the tmpfs: untouched
    r = run_hardened(binary, setup, env, "--version")
    assert (r.code, r.stdout, r.stderr) == (
        UNPACK_EXIT, "", unpack_error(binary, f"/tmp (TMPDIR unset): mounted noexec, {rest}"))


def test_foreign_owned_candidates_are_refused_for_a_second_user(binary: Path,
                                                               tmp_path: Path) -> None:
    """Run as a second real user (UID 4242): a TMPDIR of root's that anyone may write to (not
    sticky), an XDG_RUNTIME_DIR of its own that others may write to, the binary's directory
    and a $HOME/.cache of root's are all passed over: one line, exit 73. A sticky, world-
    writable TMPDIR (as /tmp is) or a private one of its own is used."""
    # under the root's own /root (a tmpfs of mode 0755 here): the user can reach them
    shared, xdg, private, sticky = (f"/root/{name}" for name in
                                    ("shared", "xdg", "private", "sticky"))
    tmpfs_at = 'mkdir "$root{where}" && $MOUNT -t tmpfs -o size=128m,{options} tmpfs "$root{where}"'
    setup = hardened(tmp_path / "noexec", home="mode=0755", extra="\n".join([
        tmpfs_at.format(options="mode=0777", where=shared),
        tmpfs_at.format(options=f"mode=0777,uid={SECOND_UID}", where=xdg),
        tmpfs_at.format(options=f"mode=0700,uid={SECOND_UID},gid={SECOND_UID}", where=private),
        tmpfs_at.format(options="mode=1777", where=sticky),
        'mkdir -m 0777 "$root/root/.cache"']))
    (tmp_path / "noexec").mkdir()
    env = {"PATH": "/usr/bin:/bin", "HOME": "/root", "XDG_RUNTIME_DIR": xdg}
    r = run_hardened(binary, setup, {**env, "TMPDIR": shared}, "--version", uid=SECOND_UID)
    foreign = "owned by another user and not sticky"
    assert (r.code, r.stdout, r.stderr) == (UNPACK_EXIT, "", unpack_error(binary, ", ".join([
        f"TMPDIR {shared}: {foreign}",
        f"XDG_RUNTIME_DIR {xdg}: writable by others and not sticky",
        f"the binary's directory {binary.parent}: {foreign}",
        f"HOME/.cache /root/.cache: {foreign}"])))
    for usable in (sticky, private):
        r = run_hardened(binary, setup, {**env, "TMPDIR": usable}, "--version", uid=SECOND_UID)
        assert r.code == 0, r.stderr
        assert r.stdout.splitlines()[0] == f"neo4j-schema-rollback {version()}"


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
    every bundled library) needs: at most 2.28, RHEL 8's (the binary is run in Debian 11's 2.31
    root); its --max gate refuses a lower floor."""
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
