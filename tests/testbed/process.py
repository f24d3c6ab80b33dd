"""The processes of the test bed's servers: found by their command line in /proc, ended with
SIGTERM then SIGKILL, and probed with a real Bolt login."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from . import leases
from .errors import TestbedError
from .lines import LINE_NAMES, LINES
from .paths import testbed_dir
from .state import (
    HOST,
    NAME_RE,
    RESERVED_NAMES,
    Server,
    home_dir,
    marker_prefix,
    pid_marker,
    progress,
    read_state,
    state_path,
)

STOP_GRACE = 30.0


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return raw.decode(errors="replace").split("\0")


def alive(pid: int) -> bool:
    """The process runs: it is no zombie (exited, not yet reaped), and no thread of it is still
    exiting (the JVM's main thread turns zombie before its other threads let go of its files
    and sockets; its parent's wait returns only after the last of them)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        threads = len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return False
    # the state field follows the parenthesised command name
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X") or threads > 1


def is_ours(pid: int, name: str) -> bool:
    return alive(pid) and pid_marker(name) in cmdline(pid)


def processes() -> Iterator[tuple[int, list[str]]]:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            pid = int(entry.name)
            yield pid, cmdline(pid)


def find_pids(name: str) -> set[int]:
    """Every live process of this instance's server (also ones whose state file got lost)."""
    marker = pid_marker(name)
    return {pid for pid, cmd in processes() if marker in cmd and alive(pid)}


def instances() -> list[str]:
    """The names of every instance in the test-bed dir (with a directory of its own or a live
    server process): the lines' default instances first, then the others sorted."""
    names: set[str] = set()
    root = testbed_dir()
    if root.is_dir():
        for d in root.iterdir():
            if (d.is_dir() and NAME_RE.fullmatch(d.name) and d.name not in RESERVED_NAMES
                    and any((d / f).exists() for f in ("state.json", "instance.json",
                                                       "neo4j.conf"))):
                names.add(d.name)
    prefix, suffix = marker_prefix(), f"{os.sep}data"
    for _, cmd in processes():
        for arg in cmd:
            if arg.startswith(prefix) and arg.endswith(suffix):
                candidate = arg[len(prefix):-len(suffix)]
                if NAME_RE.fullmatch(candidate) and candidate not in RESERVED_NAMES:
                    names.add(candidate)
    return sorted(names, key=lambda n: (0, LINE_NAMES.index(n), "") if n in LINES else (1, 0, n))


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def login_error(server: Server, timeout: float = 5.0) -> Exception | None:
    """None if a real Bolt login with the password works, else the error."""
    import neo4j

    try:
        with server.driver(connection_timeout=timeout, connection_acquisition_timeout=timeout,
                           max_transaction_retry_time=0) as drv:
            if not drv.verify_authentication():
                return PermissionError("the server rejected the password")
            records, _, _ = drv.execute_query("RETURN 1 AS one", routing_=neo4j.RoutingControl.READ)
            if records[0]["one"] != 1:
                return RuntimeError("RETURN 1 did not return 1")
    except Exception as exc:  # the driver raises many kinds; any of them means "not ready"
        return exc
    return None


def is_rejection(err: Exception) -> bool:
    """The server refused the credentials (wrong password, or too many wrong ones)."""
    if isinstance(err, PermissionError):
        return True
    code = getattr(err, "code", None)
    return isinstance(code, str) and code.startswith("Neo.ClientError.Security.")


def end_processes(name: str, *, grace: float) -> bool:
    """SIGTERM the instance's processes, SIGKILL what is left after ``grace`` seconds (at once
    if ``grace`` is 0), wait until they are gone. True if there were any."""
    pids = find_pids(name)
    state = read_state(name)
    if state is not None and is_ours(state.pid, name):
        pids.add(state.pid)
    left = set(pids)
    if grace > 0:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while any(alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = {p for p in pids if alive(p)}
        if left:
            progress(f"instance {name}: no clean shutdown within {grace:.0f} s; sending "
                     f"SIGKILL to {sorted(left)}")
    if left:
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while any(alive(p) for p in left) and time.monotonic() < deadline:
            time.sleep(0.05)
        still = [p for p in left if alive(p)]
        if still:
            raise TestbedError(f"instance {name}: process {still} did not die after SIGKILL")
    return bool(pids)


def stop_locked(name: str, *, grace: float = STOP_GRACE) -> bool:
    found = end_processes(name, grace=grace)
    state_path(name).unlink(missing_ok=True)
    leases.clear(name)
    # without a state the store is of no use (the next start wipes it): free its ~0.5 GB of
    # pre-allocated transaction logs now; the DBMS logs (data/logs) stay for a look
    shutil.rmtree(home_dir(name) / "data", ignore_errors=True)
    return found
