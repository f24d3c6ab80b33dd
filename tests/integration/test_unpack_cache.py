"""The portable binary's per-user unpack cache (build/spec/bootloader_cache.py), on this
machine's real filesystems, with a second real user where ownership matters: filled once,
complete or not at all, reused only when it is the user's own and its marker names the
binary's archive; per-start unpack, without a word, wherever no cache can be trusted.

Each test gives the binary exactly the environment it names (HOME, TMPDIR, XDG_CACHE_HOME, the
cache variables), and checks the directories it is given afterwards: what was left, who owns
it, and that the runs' output is what the binary prints with no cache at all.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from tool import ensure_binary, system_tool

from patched import spec_module

archive_key = spec_module("archive_key")
bootloader_cache = spec_module("bootloader_cache")

SECOND_UID = 4242  # a real second user: no passwd entry needed, setpriv sets the IDs
CACHE = bootloader_cache.CACHE_NAME
TIMEOUT = 120


@pytest.fixture(scope="module")
def binary() -> Path:
    return ensure_binary()


@pytest.fixture(scope="module")
def digest(binary: Path) -> str:
    """The SHA-256 of the binary's archive, as archive_key.py stamped it."""
    data = binary.read_bytes()
    assert archive_key.stamped_digest(data) == archive_key.archive_digest(data)
    return archive_key.archive_digest(data)


@pytest.fixture
def place() -> Iterator[Path]:
    """A scratch folder that a second user can reach too (pytest's own is root's, 0700)."""
    path = Path(tempfile.mkdtemp(prefix="unpack-cache-"))
    path.chmod(0o755)
    yield path
    subprocess.run(["umount", "-R", str(path / "small")], capture_output=True, check=False)
    shutil.rmtree(path, ignore_errors=True)


def folder(path: Path, mode: int = 0o700, uid: int = 0) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, uid, uid)
    path.chmod(mode)
    return path


def run(binary: Path, env: dict[str, str], *args: str, uid: int | None = None,
        limit_file_size: int | None = None) -> subprocess.CompletedProcess[str]:
    """The binary with exactly `env` (and PATH), as root or as `uid`."""
    prefix = [] if uid is None else [system_tool("setpriv"), f"--reuid={uid}", f"--regid={uid}",
                                     "--clear-groups"]

    def limit() -> None:
        if limit_file_size is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_file_size, limit_file_size))

    return subprocess.run([*prefix, str(binary), *(args or ("--version",))],
                          env={"PATH": "/usr/bin:/bin", **env}, capture_output=True, text=True,
                          timeout=TIMEOUT, check=False, stdin=subprocess.DEVNULL,
                          preexec_fn=limit)


def entries(path: Path) -> list[str]:
    return sorted(entry.name for entry in path.iterdir())


def test_a_first_run_fills_the_cache_and_the_next_reuse_it(binary: Path, digest: str,
                                                           place: Path) -> None:
    """$HOME/.cache/neo4j-schema-rollback/<archive digest>, every folder 0700, the marker
    naming the digest; nothing in TMPDIR. A warm run changes no file; the output is the same
    as with no cache at all, which unpacks into TMPDIR and removes it again."""
    home, tmp = folder(place / "home"), folder(place / "tmp")
    env = {"HOME": str(home), "TMPDIR": str(tmp)}
    first = run(binary, env, "statements")
    assert (first.returncode, first.stderr) == (0, "")
    root = home / ".cache" / CACHE
    assert entries(root) == [digest]
    for path in (home / ".cache", root, root / digest):
        assert path.stat().st_mode & 0o777 == 0o700
    assert (root / digest / ".complete").read_text() == (
        f"{CACHE} unpack cache\narchive sha256 {digest}\n")
    assert "libpython3.11.so.1.0" in entries(root / digest)
    assert entries(tmp) == []
    files = {path: (path.stat().st_ino, path.stat().st_mtime_ns)
             for path in (root / digest).rglob("*") if path.is_file()}
    warm = run(binary, env, "statements")
    assert (warm.returncode, warm.stdout, warm.stderr) == (0, first.stdout, "")
    assert files == {path: (path.stat().st_ino, path.stat().st_mtime_ns)
                     for path in (root / digest).rglob("*") if path.is_file()}
    off = run(binary, {**env, bootloader_cache.NO_CACHE_VARIABLE: "1"}, "statements")
    assert (off.returncode, off.stdout, off.stderr) == (0, first.stdout, "")
    assert entries(tmp) == [] and entries(root) == [digest]


def test_where_the_cache_lives(binary: Path, digest: str, place: Path) -> None:
    """XDG_CACHE_HOME when absolute (a relative one is ignored, as the XDG spec says), and
    NEO4J_SCHEMA_ROLLBACK_CACHE_DIR before both, made when missing."""
    home, tmp, xdg = folder(place / "home"), folder(place / "tmp"), folder(place / "xdg")
    assert run(binary, {"HOME": str(home), "TMPDIR": str(tmp),
                        "XDG_CACHE_HOME": str(xdg)}).returncode == 0
    assert entries(xdg / CACHE) == [digest] and entries(home) == []
    assert run(binary, {"HOME": str(home), "TMPDIR": str(tmp),
                        "XDG_CACHE_HOME": "relative/cache"}).returncode == 0
    assert entries(home / ".cache" / CACHE) == [digest]
    moved = place / "moved"
    assert run(binary, {"HOME": str(home), "TMPDIR": str(tmp), "XDG_CACHE_HOME": str(xdg),
                        bootloader_cache.CACHE_DIR_VARIABLE: str(moved)}).returncode == 0
    assert entries(moved) == [digest]
    assert moved.stat().st_mode & 0o777 == 0o700


def test_a_warm_start_is_one_process_and_signals_reach_the_tool(binary: Path, place: Path) -> None:
    """With the cache warm the bootloader becomes the tool (exec): the process started is the
    Python process, with no child, and SIGTERM ends it with the tool's own exit 143."""
    home, tmp = folder(place / "home"), folder(place / "tmp")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "TMPDIR": str(tmp),
           "NEO4J_URI": "bolt://127.0.0.1:1", "NEO4J_PASSWORD": "unused"}
    assert run(binary, env).returncode == 0  # fills it
    proc = subprocess.Popen([str(binary), "status", "--wait", "60", "--log-format", "json"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # the tool's first event is written once Python runs the tool: no polling needed
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("{"), first + proc.stderr.read() if proc.stderr else ""
        maps = Path(f"/proc/{proc.pid}/maps").read_text()
        assert "libpython3.11.so.1.0" in maps
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text()
        assert children.split() == []
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=TIMEOUT) == 143
    finally:
        proc.kill()
        proc.wait()


def test_first_runs_at_once_share_one_complete_copy(binary: Path, digest: str,
                                                    place: Path) -> None:
    """Six first runs started together: each succeeds with the same output, and the cache ends
    with one complete copy and no staging or replaced folder."""
    home, tmp = folder(place / "home"), folder(place / "tmp")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "TMPDIR": str(tmp)}
    procs = [subprocess.Popen([str(binary), "statements"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(6)]
    results = [(*proc.communicate(timeout=TIMEOUT), proc.returncode) for proc in procs]
    assert {result[2] for result in results} == {0}
    assert len({result[0] for result in results}) == 1
    assert {result[1] for result in results} == {""}
    root = home / ".cache" / CACHE
    assert entries(root) == [digest]
    assert (root / digest / ".complete").exists()


def test_a_run_killed_while_unpacking_leaves_nothing_used(binary: Path, digest: str,
                                                          place: Path) -> None:
    """A first run killed mid-unpack (by the kernel: a file-size limit below libcrypto's size,
    SIGXFSZ) leaves its staging folder and lock, never a cache copy; the next run fills the
    cache and removes the dead run's folder (its lock is free)."""
    home, tmp = folder(place / "home"), folder(place / "tmp")
    env = {"HOME": str(home), "TMPDIR": str(tmp)}
    killed = run(binary, env, limit_file_size=2 * 1024 * 1024)
    assert killed.returncode == -signal.SIGXFSZ, killed.stderr
    root = home / ".cache" / CACHE
    [staging, lock] = entries(root)
    assert staging.startswith(".unpack-") and lock == staging + ".lock"
    again = run(binary, env)
    assert (again.returncode, again.stderr) == (0, "")
    assert entries(root) == [digest]


def test_a_first_run_killed_with_sigkill_publishes_nothing(binary: Path, digest: str,
                                                           place: Path) -> None:
    """kill -9 of a first run's processes while the tool runs from the staging folder: no
    cache copy appears; the next run fills the cache and removes the dead run's folder."""
    home, tmp = folder(place / "home"), folder(place / "tmp")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "TMPDIR": str(tmp),
           "NEO4J_URI": "bolt://127.0.0.1:1", "NEO4J_PASSWORD": "unused"}
    proc = subprocess.Popen([str(binary), "status", "--wait", "60", "--log-format", "json"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("{")  # the tool runs: unpacking is over
        os.killpg(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=TIMEOUT) == -signal.SIGKILL
    finally:
        proc.kill()
        proc.wait()
    root = home / ".cache" / CACHE
    [staging, lock] = entries(root)
    assert staging.startswith(".unpack-") and lock == staging + ".lock"
    assert run(binary, {"HOME": str(home), "TMPDIR": str(tmp)}).returncode == 0
    assert entries(root) == [digest]


def test_a_copy_under_its_name_that_is_not_its_own_is_replaced(binary: Path, digest: str,
                                                               place: Path) -> None:
    """A folder under the binary's digest whose marker names another archive (another
    binary's files) is replaced by a complete copy; another binary's own folder is kept."""
    home, tmp = folder(place / "home"), folder(place / "tmp")
    root = folder(home / ".cache" / CACHE)
    other = "f" * 64
    for name in (digest, other):
        folder(root / name)
        (root / name / ".complete").write_text(f"{CACHE} unpack cache\narchive sha256 {other}\n")
        (root / name / "libpython3.11.so.1.0").write_bytes(b"not a library")
    r = run(binary, {"HOME": str(home), "TMPDIR": str(tmp)})
    assert (r.returncode, r.stderr) == (0, "")
    assert entries(root) == sorted([digest, other])
    assert (root / digest / ".complete").read_text().endswith(f"sha256 {digest}\n")
    assert (root / digest / "libpython3.11.so.1.0").stat().st_size > 1_000_000
    assert (root / other / "libpython3.11.so.1.0").read_bytes() == b"not a library"


def test_a_cache_not_the_users_own_is_never_used_or_touched(binary: Path, digest: str,
                                                            place: Path) -> None:
    """The digest folder a symlink to another user's folder, the cache folder writable by its
    group, or owned by another user: each time the run unpacks per start (TMPDIR, removed
    again), prints nothing more, and leaves what it found exactly as it was."""
    tmp = folder(place / "tmp")
    theirs = folder(place / "theirs", uid=SECOND_UID)
    (theirs / ".complete").write_text(f"{CACHE} unpack cache\narchive sha256 {digest}\n")
    normal = run(binary, {"HOME": str(folder(place / "normal")), "TMPDIR": str(tmp)})
    cases = {}
    home = folder(place / "symlink")
    folder(home / ".cache" / CACHE)
    (home / ".cache" / CACHE / digest).symlink_to(theirs)
    cases["symlink"] = home
    home = folder(place / "group")
    folder(home / ".cache" / CACHE, mode=0o770)
    cases["group-writable"] = home
    home = folder(place / "foreign")
    folder(home / ".cache" / CACHE, mode=0o755, uid=SECOND_UID)
    cases["foreign"] = home
    for case, home in cases.items():
        before = sorted(str(path) for path in (home / ".cache").rglob("*"))
        r = run(binary, {"HOME": str(home), "TMPDIR": str(tmp)})
        assert (r.returncode, r.stdout, r.stderr) == (0, normal.stdout, ""), case
        assert sorted(str(path) for path in (home / ".cache").rglob("*")) == before, case
        assert entries(tmp) == [], case
    assert entries(theirs) == [".complete"]


def test_a_second_user_gets_a_cache_of_its_own(binary: Path, digest: str, place: Path) -> None:
    """As UID 4242: its own cache (owned by it, 0700) under its HOME; with a HOME it cannot
    write, or none at all, per-start unpack without a word."""
    home = folder(place / "home", uid=SECOND_UID)
    tmp = folder(place / "tmp", uid=SECOND_UID)
    r = run(binary, {"HOME": str(home), "TMPDIR": str(tmp)}, uid=SECOND_UID)
    assert (r.returncode, r.stderr) == (0, "")
    copy = home / ".cache" / CACHE / digest
    assert copy.stat().st_uid == SECOND_UID and copy.stat().st_mode & 0o777 == 0o700
    locked = folder(place / "locked", mode=0o555, uid=SECOND_UID)
    for env in ({"HOME": str(locked), "TMPDIR": str(tmp)}, {"TMPDIR": str(tmp)}):
        r = run(binary, env, uid=SECOND_UID)
        assert (r.returncode, r.stderr) == (0, "")
        assert r.stdout.startswith("neo4j-schema-rollback ")
        assert entries(tmp) == []
    assert entries(locked) == []


def test_a_full_disk_means_per_start_unpack(binary: Path, place: Path) -> None:
    """A cache on a 4 MiB file system (less than the binary unpacks): the run unpacks per start
    into TMPDIR and succeeds without a word; nothing is left on the small file system but the
    empty cache folder."""
    small = folder(place / "small")
    subprocess.run([system_tool("mount"), "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs",
                    str(small)], check=True)
    tmp = folder(place / "tmp")
    r = run(binary, {"HOME": str(place), "TMPDIR": str(tmp), "XDG_CACHE_HOME": str(small)})
    assert (r.returncode, r.stderr) == (0, "")
    assert entries(small) == [CACHE] and entries(small / CACHE) == []
    assert entries(tmp) == []


def test_after_a_fill_only_the_most_recently_used_copies_stay(binary: Path, digest: str,
                                                              place: Path) -> None:
    """Four older copies of other binaries: after this binary fills its own, the two most
    recently used of them stay beside it; what is not a cache copy, or not the user's, stays."""
    home, tmp = folder(place / "home"), folder(place / "tmp")
    root = folder(home / ".cache" / CACHE)
    olds = [f"{n:x}" * 64 for n in range(1, 5)]
    for age, name in zip((400, 300, 200, 100), olds, strict=True):
        folder(root / name)
        os.utime(root / name, (1_700_000_000 - age, 1_700_000_000 - age))
    folder(root / ("e" * 64), uid=SECOND_UID)
    os.utime(root / ("e" * 64), (1_000_000_000, 1_000_000_000))
    folder(root / "notes")
    assert run(binary, {"HOME": str(home), "TMPDIR": str(tmp)}).returncode == 0
    assert entries(root) == sorted([digest, olds[2], olds[3], "e" * 64, "notes"])
