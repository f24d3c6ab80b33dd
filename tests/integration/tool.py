"""Runs the tool as a user would (a subprocess) and reads its JSON Lines back as data.

The same runner drives the Python module or the frozen binary, so every end-to-end scenario
proves both. Every run checks the two promises that hold for all output: each stdout line is a
valid event (in JSON mode), and no password ever appears anywhere.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "docs" / "events.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


@dataclass
class Result:
    """One finished run: exit code, raw streams and the parsed events."""

    code: int
    stdout: str
    stderr: str
    events: list[dict[str, Any]] = field(default_factory=list)

    def of(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == name]

    @property
    def statements(self) -> list[dict[str, Any]]:
        return self.of("statement")

    def table_statements(self, outcome: str | None = None) -> list[dict[str, Any]]:
        """Statements about table objects (create/drop), optionally of one outcome."""
        return [e for e in self.statements if e["action"] in ("create", "drop")
                and (outcome is None or e["outcome"] == outcome)]

    def outcomes(self) -> dict[str, str]:
        """object name -> outcome of its create/drop statement."""
        return {e["object"]: e["outcome"] for e in self.table_statements()}

    @property
    def end(self) -> dict[str, Any]:
        [end] = self.of("run.end")
        return end

    def states(self) -> dict[str, str]:
        return {e["object"]: e["state"] for e in self.of("object")}


class Tool:
    """A way to start the tool: `python -m neo4j_schema_rollback` or a frozen binary."""

    def __init__(self, name: str, command: list[str], env: dict[str, str] | None = None) -> None:
        self.name = name
        self.command = command
        self.base_env = env if env is not None else {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),
        }

    def run(self, *args: str, env: dict[str, str] | None = None, secrets: tuple[str, ...] = (),
            stdin: str | None = None, timeout: float = 180) -> Result:
        """Run to completion and check the output."""
        proc = subprocess.run([*self.command, *args], env={**self.base_env, **(env or {})},
                              capture_output=True, text=True, timeout=timeout,
                              input=stdin if stdin is not None else "", check=False)
        return check(Result(proc.returncode, proc.stdout, proc.stderr), args, secrets)

    def spawn(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """Start a run whose stdout the test reads line by line (see `finish`)."""
        return subprocess.Popen([*self.command, *args], env={**self.base_env, **(env or {})},
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen[str], seen: list[str], args: tuple[str, ...],
           secrets: tuple[str, ...] = (), timeout: float = 180) -> Result:
    """Wait for a spawned run; `seen` holds stdout lines the test already read."""
    out, err = proc.communicate(timeout=timeout)
    return check(Result(proc.returncode, "".join(seen) + out, err), args, secrets)


def check(result: Result, args: tuple[str, ...], secrets: tuple[str, ...]) -> Result:
    """No secret anywhere, no traceback, and (in JSON mode) every stdout line a valid event."""
    for secret in secrets:
        assert secret not in result.stdout, "a secret leaked to stdout"
        assert secret not in result.stderr, "a secret leaked to stderr"
    assert "Traceback" not in result.stderr, result.stderr
    if "console" not in args and args[:1] != ("statements",):
        for line in result.stdout.splitlines():
            event = json.loads(line)
            errors = sorted(VALIDATOR.iter_errors(event), key=str)
            assert not errors, f"invalid event {line}: {errors[0].message}"
            result.events.append(event)
    return result


def module_tool() -> Tool:
    return Tool("module", [sys.executable, "-m", "neo4j_schema_rollback"])


def version() -> str:
    """The tool's version, from app/neo4j_schema_rollback/__init__.py."""
    text = (ROOT / "app" / "neo4j_schema_rollback" / "__init__.py").read_text()
    match = re.search(r'^__version__ = "(.*)"$', text, re.MULTILINE)
    assert match, "no __version__ in app/neo4j_schema_rollback/__init__.py"
    return match.group(1)


HOST_BINARY = ROOT / "dist" / "neo4j-schema-rollback"


def portable_binary(arch: str = "x86_64") -> Path:
    """The release asset of `arch` (x86_64, arm64) that scripts/build-binary --portable writes."""
    return ROOT / "dist" / f"neo4j-schema-rollback-{version()}-linux-{arch}"


def binary_sources(portable: bool) -> list[Path]:
    """What a binary is built from: app/ (byte code aside), build/spec, the lock file, the build
    script, and for the portable binary build/portable too."""
    files = [path for path in (ROOT / "app").rglob("*")
             if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"]
    spec = [path for path in (ROOT / "build" / "spec").iterdir() if path.is_file()]
    extra = [path for path in (ROOT / "build" / "portable").rglob("*")
             if path.is_file()] if portable else []
    return [*files, *spec, *extra, ROOT / "uv.lock", ROOT / "scripts" / "build-binary"]


def ensure_binary(portable: bool = True, arch: str = "x86_64") -> Path:
    """The binary under test, (re)built by scripts/build-binary when missing or older than any of
    its sources; one build at a time across pytest sessions. The portable binary of `arch` (what
    ships: `--portable --arch ARCH`) by default; the host build only for its own smoke tests."""
    binary = portable_binary(arch) if portable else HOST_BINARY
    command = [str(ROOT / "scripts" / "build-binary")]
    if portable:
        command += ["--portable", "--arch", arch]
    lock = ROOT / ".testbed" / "build-binary.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        newest = max(path.stat().st_mtime for path in binary_sources(portable))
        if not binary.exists() or binary.stat().st_mtime < newest:
            subprocess.run(command, check=True, cwd=ROOT)
            assert binary.exists(), f"scripts/build-binary wrote no {binary}"
            assert binary.stat().st_mtime >= newest, "the rebuilt binary is older than its sources"
    return binary


def make_rootfs(suite: str, arch: str | None = None, include: str | None = None) -> Path:
    """A minimal Debian root without Python (scripts/make-rootfs: built once, then cached)."""
    command = [str(ROOT / "scripts" / "make-rootfs"), "--suite", suite]
    if arch:
        command += ["--arch", arch]
    if include:
        command += ["--include", include]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"scripts/make-rootfs failed:\n{proc.stdout}{proc.stderr}"
    root = Path(proc.stdout.strip().splitlines()[-1])
    assert (root / ".complete").exists(), root
    return root


# Runs "$@" inside the root in a private mount namespace (every mount vanishes with the run):
# the machine's temporary folder (the tests' scratch files, TMPDIR), the repository (read-only:
# the binary, the test bed's CA files), the host's name-resolution files and CA store
# (/etc/ssl/certs, as any host with ca-certificates has) are bound at their own paths,
# and the working directory is kept. Each step execs the next, so the process the test starts
# IS the binary in the end: signals reach it directly.
IN_ROOT = r"""
root=$1; repo=$2; tmp=$3; shift 3
$MOUNT -t proc proc "$root/proc"
$MOUNT --bind "$tmp" "$root$tmp"
$MOUNT -o bind,ro "$repo" "$root$repo"
for f in /etc/hosts /etc/resolv.conf /etc/ssl/certs; do
  [ -e "$f" ] && $MOUNT -o bind,ro "$f" "$root$f"
done
$SETUP
exec $CHROOT "$root" /bin/sh -c 'cd "$0" 2>/dev/null || cd /; exec "$@"' "$PWD" $AS_USER "$@"
"""


def system_tool(name: str) -> str:
    """The path of a system program (chroot, mount...), also where sbin is not on PATH."""
    path = shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    assert path, f"{name} is missing on this machine"
    return path


def root_command(root: Path, binary: Path, setup: str = "", uid: int | None = None) -> list[str]:
    """The command prefix that runs `binary` inside `root` (see IN_ROOT); `setup`: shell lines
    run in the mount namespace before the chroot (`$root` is the root, `$MOUNT` mount); `uid`:
    run as that user and group (the root's setpriv), not as root."""
    tmp = Path(tempfile.gettempdir()).resolve()
    for mount_point in (ROOT, tmp):
        (root / str(mount_point).lstrip("/")).mkdir(parents=True, exist_ok=True)
    for name in ("hosts", "resolv.conf"):
        (root / "etc" / name).touch()
    (root / "etc" / "ssl" / "certs").mkdir(parents=True, exist_ok=True)
    tools = {name: system_tool(name) for name in ("unshare", "mount", "chroot")}
    as_user = "" if uid is None else f"setpriv --reuid={uid} --regid={uid} --clear-groups"
    script = (IN_ROOT.replace("$SETUP", setup).replace("$AS_USER", as_user)
              .replace("$MOUNT", str(tools["mount"])).replace("$CHROOT", str(tools["chroot"])))
    return [str(tools["unshare"]), "--mount", "--propagation", "private", "/bin/sh", "-c", script,
            "in-root", str(root), str(ROOT), str(tmp), str(binary)]


def binary_tool(scratch: Path) -> Tool:
    """The portable binary (see ensure_binary) in a minimal Debian 11 (bullseye) root without
    Python, with an environment of PATH (an empty folder), HOME and TMPDIR only, plus what
    each test passes (the connection variables)."""
    binary = ensure_binary()
    empty_path = scratch / "no-python-bin"
    empty_path.mkdir(exist_ok=True)
    env = {"PATH": str(empty_path), "HOME": str(scratch), "TMPDIR": str(scratch)}
    return Tool("binary", root_command(make_rootfs("bullseye"), binary), env=env)


def in_root(rootfs: Path, binary: Path, *args: str, env: dict[str, str] | None = None,
            secrets: tuple[str, ...] = ()) -> Result:
    """The binary inside the root with exactly `env` (nothing else: no PATH, no HOME); JSON
    output is checked against the event schema, and no output may hold a secret or a
    traceback."""
    proc = subprocess.run([*root_command(rootfs, binary), *args], env=env or {},
                          capture_output=True, text=True, timeout=300, check=False,
                          stdin=subprocess.DEVNULL)
    result = Result(proc.returncode, proc.stdout, proc.stderr)
    if "json" in args:
        return check(result, args, secrets)
    for secret in secrets:
        assert secret not in result.stdout + result.stderr, "a secret leaked"
    assert "Traceback" not in result.stderr, result.stderr
    return result


UNPACK_EXIT = 73  # the bootloader's, when no directory will do (build/spec/bootloader_patches.py)


def unpack_error(binary: Path, tried: str) -> str:
    """The bootloader's one line when no candidate directory will do."""
    return (f"{binary.name}: error: no directory to unpack into ({tried}); set TMPDIR to a "
            "directory that allows executing files and that only you can write to "
            f"(exit {UNPACK_EXIT})\n")


def hardened(noexec: Path, home: str | None = "mode=0700", extra: str = "") -> str:
    """Mount-namespace setup (tool.root_command) of a CIS-hardened host: `noexec` a real noexec
    tmpfs, /tmp itself (the machine's, bound into the root) remounted noexec, /root a tmpfs of
    its own with the options `home` (none when None: no trace in the cached root); then
    `extra`."""
    tmp = Path(tempfile.gettempdir()).resolve()
    home_mount = "" if home is None else f'$MOUNT -t tmpfs -o {home},size=64m tmpfs "$root/root"'
    return f"""
$MOUNT -t tmpfs -o noexec,size=16m tmpfs "$root{noexec}"
$MOUNT -o remount,bind,noexec "$root{tmp}"
{home_mount}
{extra}
"""
