"""The frozen binary runs without Python: in a minimal Debian root, with a noexec TMPDIR (fails
loudly), and with the glibc it was built against at most the machine's.

Needs root (chroot, mount) and debootstrap: ``scripts/make-rootfs`` builds the Python-free root
once into ``.testbed/rootfs/bookworm`` (about a minute) and later runs reuse it. Nothing here is
ever skipped: a machine that cannot do it makes the tests fail or error.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from db import cypher, env_for, names
from tool import Result, check, ensure_binary

ROOT = Path(__file__).resolve().parents[2]
ROOTFS = ROOT / ".testbed" / "rootfs" / "bookworm"
ALL = {"compute_pk", "kafka_topic", "compute_tags", "queue_interval", "compute_buffering_since"}
NEWEST_FIRST = ["compute_buffering_since", "queue_interval", "compute_tags", "kafka_topic",
                "compute_pk"]


def _version() -> str:
    text = (ROOT / "app" / "neo4j_schema_rollback" / "__init__.py").read_text()
    match = re.search(r'^__version__ = "(.*)"$', text, re.MULTILINE)
    assert match, "no __version__ in app/neo4j_schema_rollback/__init__.py"
    return match.group(1)


@pytest.fixture(scope="session")
def binary() -> Path:
    """dist/neo4j-schema-rollback, (re)built when older than any of its sources."""
    return ensure_binary()


@pytest.fixture(scope="session")
def rootfs() -> Path:
    """A minimal Debian bookworm root without Python (built once, then cached)."""
    proc = subprocess.run([str(ROOT / "scripts" / "make-rootfs"), str(ROOTFS)], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"scripts/make-rootfs failed:\n{proc.stdout}{proc.stderr}"
    assert (ROOTFS / ".complete").exists()
    return ROOTFS


@pytest.fixture(scope="session")
def chroot_binary(binary: Path, rootfs: Path) -> Iterator[str]:
    """The binary copied into the root (a directory of this session's own); its path inside."""
    for stale in (rootfs / "opt").glob("nsr-*"):  # left by a session that was killed
        with contextlib.suppress(ValueError):
            pid = int(stale.name.removeprefix("nsr-"))
            if not Path(f"/proc/{pid}").exists():
                shutil.rmtree(stale, ignore_errors=True)
    inside = f"/opt/nsr-{os.getpid()}"
    target = rootfs / inside.lstrip("/")
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(binary, target / binary.name)
    try:
        yield f"{inside}/{binary.name}"
    finally:
        shutil.rmtree(target, ignore_errors=True)


def in_chroot(rootfs: Path, command: list[str], env: dict[str, str],
              timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run `command` inside the root with exactly `env` (plus a PATH of the root's own dirs):
    ``chroot ROOT /usr/bin/env -i K=V ... command``. No /proc, /sys or extra /dev is mounted:
    the binary needs none (debootstrap's /dev has null, zero, random, urandom, tty...).
    The chroot shares the network namespace, so 127.0.0.1 reaches the test-bed server."""
    assignments = [f"{k}={v}" for k, v in {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                                           "HOME": "/root", **env}.items()]
    return subprocess.run(["chroot", str(rootfs), "/usr/bin/env", "-i", *assignments, *command],
                          env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}, capture_output=True,
                          text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL)


def test_rootfs_has_no_python(rootfs: Path) -> None:
    """The root is a real Debian (dpkg, a shell) with no Python interpreter or libpython."""
    assert (rootfs / "var" / "lib" / "dpkg" / "status").exists()
    assert "bookworm" in (rootfs / "etc" / "os-release").read_text()
    pythons = [str(p.relative_to(rootfs)) for p in rootfs.rglob("*")
               if re.match(r"(lib)?python", p.name) and not p.is_dir()]
    assert pythons == [], f"the root has a python: {pythons}"
    packages = (rootfs / "var" / "lib" / "dpkg" / "status").read_text()
    assert not re.search(r"^Package: (lib)?python", packages, re.MULTILINE)
    proc = in_chroot(rootfs, ["/bin/sh", "-c", "command -v python3 python; exit 0"], {})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "", f"python on the root's PATH: {proc.stdout}"


def test_version_in_a_root_without_python(rootfs: Path, chroot_binary: str) -> None:
    """--version in the Python-free root: exit 0, first line the tool and its version."""
    proc = in_chroot(rootfs, [chroot_binary, "--version"], {})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[0] == f"neo4j-schema-rollback {_version()}", proc.stdout


def test_apply_and_rollback_in_a_root_without_python(rootfs: Path, chroot_binary: str,
                                                     clean_neo4j: Any) -> None:
    """A real apply, then a real `rollback --yes`, from the Python-free root against the
    test-bed server over loopback: exit 0, JSON Lines ending in a successful run.end, and the
    server's schema really gone."""

    def run(*args: str) -> Result:
        proc = in_chroot(rootfs, [chroot_binary, *args], env_for(clean_neo4j))
        return check(Result(proc.returncode, proc.stdout, proc.stderr), args,
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
    assert proc.stdout.splitlines()[0] == f"neo4j-schema-rollback {_version()}"
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


def test_glibc_needed_is_at_most_the_machines(binary: Path) -> None:
    """scripts/check-glibc prints the highest GLIBC symbol version the binary (bootloader and
    every bundled library) needs; this machine's glibc must be at least that."""
    proc = subprocess.run([str(ROOT / "scripts" / "check-glibc"), str(binary)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    needed = proc.stdout.strip()
    assert re.fullmatch(r"2\.\d{1,2}(\.\d+)?", needed), f"not a glibc version: {proc.stdout!r}"
    confstr = os.confstr("CS_GNU_LIBC_VERSION")  # e.g. "glibc 2.36"
    assert confstr and confstr.startswith("glibc "), confstr
    machine = confstr.split()[1]
    ldd = subprocess.run(["ldd", "--version"], capture_output=True, text=True, check=True)
    assert ldd.stdout.splitlines()[0].split()[-1] == machine, ldd.stdout
    assert _glibc_tuple(needed) <= _glibc_tuple(machine), (
        f"the binary needs GLIBC {needed}, this machine has {machine}")
    # and check-glibc's own gate agrees
    gate = subprocess.run([str(ROOT / "scripts" / "check-glibc"), "--max", machine, str(binary)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert gate.returncode == 0, gate.stderr


@pytest.mark.parametrize("args", [
    ["--help"], ["apply", "--help"], ["rollback", "--help"], ["status", "--help"],
    ["statements", "--help"], ["--no-such-flag"], ["statements", "--action", "drop"],
    ["rollback", "--to", "1.5"], ["statements"], ["statements", "--action", "rollback",
                                                  "--server-version", "4.4"],
], ids=" ".join)
def test_the_binary_prints_what_the_module_prints(binary: Path, tmp_path: Path,
                                                  args: list[str]) -> None:
    """The build patches the bundled libraries (cyclopts' help modules among them): help,
    usage errors and statements are exactly those of `python -m neo4j_schema_rollback`."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TMPDIR": str(tmp_path),
           "COLUMNS": "100", "TERM": "dumb"}
    frozen = subprocess.run([str(binary), *args], capture_output=True, text=True, check=False,
                            env=env, stdin=subprocess.DEVNULL)
    module = subprocess.run([sys.executable, "-m", "neo4j_schema_rollback", *args],
                            capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL,
                            env={**env, "PYTHONPATH": str(ROOT / "app")})
    assert (frozen.returncode, frozen.stdout, frozen.stderr) == \
        (module.returncode, module.stdout, module.stderr)
    assert frozen.stdout or frozen.stderr
