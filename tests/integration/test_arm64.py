"""The linux-arm64 binary, cross-built by scripts/build-binary --portable --arch arm64, run under
qemu-user-static in a minimal Debian 11 arm64 root without Python, against a real server of every
line over loopback (an emulated process reaches the machine's loopback).

Emulation is slow (every start of the one-file binary unpacks and loads its libraries under qemu),
so this is the scenario set that covers apply, status, rollback, --to, a refusal, a usage error
and the schema each line ends up with, not the whole matrix: the x86_64 binary runs that.
Nothing here is skipped: a machine that cannot run arm64 programs makes these tests fail.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from db import cypher, env_for, names, snapshot
from tool import (
    UNPACK_EXIT,
    Result,
    Tool,
    ensure_binary,
    hardened,
    in_root,
    make_rootfs,
    module_tool,
    root_command,
    unpack_error,
    version,
)

ROOT = Path(__file__).resolve().parents[2]
ALL = {"compute_pk", "kafka_topic", "compute_tags", "queue_interval", "compute_buffering_since"}
V1 = {"compute_pk", "kafka_topic"}
NEWEST_FIRST = ["compute_buffering_since", "queue_interval", "compute_tags", "kafka_topic",
                "compute_pk"]


@pytest.fixture(scope="session")
def arm64_binary() -> Path:
    """dist/neo4j-schema-rollback-<version>-linux-arm64, (re)built when older than its sources."""
    subprocess.run([str(ROOT / "scripts" / "enable-qemu"), "arm64"], check=True,
                   capture_output=True)
    return ensure_binary(arch="arm64")


@pytest.fixture(scope="session")
def arm64_root() -> Path:
    """The Debian 11 arm64 root without Python (binutils: the build's PyInstaller strips)."""
    return make_rootfs("bullseye", arch="arm64", include="binutils")


@pytest.fixture(scope="session")
def arm64_tool(arm64_binary: Path, arm64_root: Path) -> Tool:
    """The arm64 binary in the arm64 root, with an environment of only what each test passes."""
    return Tool("arm64", root_command(arm64_root, arm64_binary), env={})


@pytest.fixture
def run(arm64_tool: Tool, clean_neo4j: Any):  # type: ignore[no-untyped-def]
    def go(*args: str) -> Result:
        return arm64_tool.run(*args, "--log-format", "json", env=env_for(clean_neo4j),
                              secrets=(clean_neo4j.password,), timeout=300)

    return go


def test_the_binary_is_arm64_with_64k_aligned_segments(arm64_binary: Path) -> None:
    """An aarch64 ELF executable, needing glibc 2.28 at most, every segment of every ELF file in
    it aligned to 64 KiB (it then also loads on 64 KiB-page kernels, which qemu cannot show)."""
    header = subprocess.run(["readelf", "-h", str(arm64_binary)], capture_output=True, text=True,
                            check=True).stdout
    assert "AArch64" in header, header
    glibc = subprocess.run([str(ROOT / "scripts" / "check-glibc"), "--max", "2.28",
                            str(arm64_binary)], capture_output=True, text=True, check=False)
    assert glibc.returncode == 0, glibc.stderr
    aligned = subprocess.run([str(ROOT / "scripts" / "check-elf-alignment"), str(arm64_binary)],
                             capture_output=True, text=True, check=False)
    assert aligned.returncode == 0, aligned.stderr
    assert "every LOAD segment aligned to >= 0x10000" in aligned.stderr


def test_version_and_statements_in_the_arm64_root(arm64_binary: Path, arm64_root: Path) -> None:
    """--version names the same CPython and OpenSSL as the x86_64 build; `statements` prints
    exactly what the module prints."""
    r = in_root(arm64_root, arm64_binary, "--version")
    assert r.code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == f"neo4j-schema-rollback {version()}"
    x86 = subprocess.run([str(ensure_binary()), "--version"], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert [line for line in lines if line.startswith(("python:", "openssl:"))] == [
        line for line in x86 if line.startswith(("python:", "openssl:"))]
    for action in ("apply", "rollback"):
        args = ("statements", "--action", action, "--server-version", "5.26")
        r = in_root(arm64_root, arm64_binary, *args)
        assert r.code == 0, r.stderr
        assert r.stdout == module_tool().run(*args).stdout != ""


def test_usage_error_in_the_arm64_root(arm64_binary: Path, arm64_root: Path) -> None:
    """A usage error: one line on stderr, exit 2."""
    r = in_root(arm64_root, arm64_binary, "rollback", "--to", "1.5")
    assert r.code == 2
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_apply_status_to_and_rollback(run: Any, clean_neo4j: Any) -> None:
    """apply builds exactly the schema the module builds on this line; status agrees; rollback
    --to 1 keeps version 1; rollback drops the rest newest first."""
    r = run("apply")
    assert r.code == 0, r.stdout + r.stderr
    assert r.end["outcome"] == "success"
    assert names(clean_neo4j) == ALL
    arm64_schema = snapshot(clean_neo4j)
    r = run("status", "--expect", "applied")
    assert r.code == 0
    assert r.states() == {name: "present" for name in ALL}

    r = run("rollback", "--yes", "--to", "1")
    assert r.code == 0
    assert list(r.outcomes()) == NEWEST_FIRST[:3]
    assert names(clean_neo4j) == V1
    r = run("rollback", "--yes")
    assert r.code == 0
    assert r.end["done"] == NEWEST_FIRST[3:]
    assert names(clean_neo4j) == set()

    module = module_tool().run("apply", "--log-format", "json", env=env_for(clean_neo4j),
                               secrets=(clean_neo4j.password,))
    assert module.code == 0
    assert snapshot(clean_neo4j) == arm64_schema


def test_same_name_other_definition_is_refused(run: Any, clean_neo4j: Any) -> None:
    """A same-named index with another definition: apply and rollback both exit 4 and leave it."""
    cypher(clean_neo4j, "CREATE INDEX kafka_topic FOR (q:Queue) ON (q.name)")
    r = run("apply")
    assert r.code == 4
    assert r.outcomes()["kafka_topic"] == "refused"
    r = run("rollback", "--yes")
    assert r.code == 4
    assert r.outcomes()["kafka_topic"] == "refused"
    assert names(clean_neo4j) == {"kafka_topic"}


def test_noexec_tmpdir_and_tmp_fall_back_to_home_cache(arm64_binary: Path, arm64_root: Path,
                                                       clean_neo4j: Any, tmp_path: Path) -> None:
    """TMPDIR on a real noexec tmpfs and /tmp itself noexec (tests/integration/tool.py:
    hardened): the arm64 bootloader's unpack cache in $HOME/.cache serves apply, status and
    rollback; nothing else is left there."""
    noexec = tmp_path / "noexec"
    noexec.mkdir()
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    setup = hardened(noexec, home=None, extra=f'$MOUNT --bind "{home}" "$root/root"')
    tool = Tool("arm64-hardened", root_command(arm64_root, arm64_binary, setup),
                env={"HOME": "/root", "TMPDIR": str(noexec)})

    def run(*args: str) -> Result:
        r = tool.run(*args, "--log-format", "json", env=env_for(clean_neo4j),
                     secrets=(clean_neo4j.password,), timeout=300)
        assert "error while loading shared libraries" not in r.stderr, r.stderr
        return r

    r = run("apply")
    assert r.code == 0, r.stdout + r.stderr
    assert names(clean_neo4j) == ALL
    r = run("status", "--expect", "applied")
    assert r.code == 0, r.stdout + r.stderr
    r = run("rollback", "--yes")
    assert r.code == 0, r.stdout + r.stderr
    assert names(clean_neo4j) == set()
    # the unpack cache served the runs; nothing else is left in $HOME/.cache
    assert [path.name for path in (home / ".cache").iterdir()] == ["neo4j-schema-rollback"]
    [copy] = (home / ".cache" / "neo4j-schema-rollback").iterdir()
    assert (copy / ".complete").is_file()


def test_every_candidate_noexec_is_one_line_and_exit_73(arm64_binary: Path, arm64_root: Path,
                                                        tmp_path: Path) -> None:
    """Every candidate noexec (the binary's directory read-only): the one line, exit 73."""
    noexec = tmp_path / "noexec"
    noexec.mkdir()
    setup = hardened(noexec, home="mode=0700,noexec")
    proc = subprocess.run([*root_command(arm64_root, arm64_binary, setup), "--version"],
                          env={"HOME": "/root", "TMPDIR": str(noexec)}, capture_output=True,
                          text=True, timeout=300, check=False, stdin=subprocess.DEVNULL)
    assert (proc.returncode, proc.stdout, proc.stderr) == (UNPACK_EXIT, "", unpack_error(
        arm64_binary, f"TMPDIR {noexec}: mounted noexec, XDG_RUNTIME_DIR: not set, the "
        f"binary's directory {arm64_binary.parent}: not writable, HOME/.cache /root/.cache: "
        "mounted noexec"))
