"""Start, stop, kill, restart and inspect the real Neo4j servers of the test bed: the public
operations, each under its instance's lock. The jobs behind them live in ``state`` (handles,
files, locks), ``leases``, ``process`` (/proc, signals, login probes) and ``launch``.

Every server is an *instance* with a name: by default the name of its line (``4.4``, ``5``,
``calver``); other names (e.g. ``5-tls``, ``5-fault``) let several servers of one line run at
once. A line's default instance listens on the line's default port; any other instance gets a
free port of its own (the same one again on its next start if still free).

``start`` wipes the data; ``kill`` (SIGKILL, a crash) keeps data and state so that ``restart``
brings the same store back on the same port with the same password.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import artifacts, leases
from .errors import InstanceBusy, TestbedError
from .launch import DEFAULT_TIMEOUT, launch
from .lines import LINE_NAMES, LINES, Line, get_line
from .paths import instance_dir
from .process import (
    STOP_GRACE,
    end_processes,
    find_pids,
    instances,
    is_ours,
    login_error,
    stop_locked,
)
from .state import (
    LineStatus,
    Server,
    check_name,
    label_of,
    locked,
    progress,
    read_meta,
    read_state,
    resolve,
    stop_hint,
    write_state,
)

if TYPE_CHECKING:
    import neo4j


def fetch(line_name: str) -> None:
    """Download everything the line needs (Maven jars, Java runtime) and compile the launcher."""
    artifacts.fetch(get_line(line_name))


def running(name: str) -> Server | None:
    """The server of an instance (default: a line's) if its process is alive (no login is
    tried)."""
    check_name(name)
    state = read_state(name)
    if state is not None and is_ours(state.pid, name):
        return state
    return None


def start(
    line_name: str,
    port: int | None = None,
    *,
    tls: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    name: str | None = None,
) -> Server:
    """Start an instance of the line on fresh (wiped) data, or reuse it if it is already running
    with the same port (None: any) and TLS, and return once a real Bolt login with the generated
    password works. It runs until ``stop``.

    ``name`` (default: the line's name) tells instances of one line apart; an instance that is
    not the line's default one gets a free port of its own unless ``port`` is given."""
    line, name = resolve(line_name, name)
    with locked(name):
        return _start_or_reuse(line, name, port, tls, timeout, auto_stop=False)


def acquire(
    line_name: str,
    port: int | None = None,
    *,
    tls: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    name: str | None = None,
    exclusive: bool = False,
) -> Server:
    """``start`` plus a lease held by this process (pytest sessions): a server started here is
    stopped by the last ``release``, so concurrent sessions sharing it do not pull it away from
    each other, and none is left behind.

    ``exclusive``: raise ``InstanceBusy`` (touching nothing) if another live process holds a
    lease on the instance, e.g. for an instance that tests kill and restart."""
    line, name = resolve(line_name, name)
    with locked(name):
        if exclusive and (holders := leases.others(name)):
            raise InstanceBusy(f"instance {name} is leased by other processes {holders}")
        server = _start_or_reuse(line, name, port, tls, timeout, auto_stop=True)
        leases.take(name, server.pid)
        return server


def release(name: str) -> bool:
    """Drop this process's lease on an instance (default: a line's); stop it if it was started
    by ``acquire`` and no other live process holds a lease. True if it was stopped."""
    check_name(name)
    if not instance_dir(name).is_dir():
        return False
    with locked(name):
        others = leases.drop(name)
        state = read_state(name)
        if others or state is None or not state.auto_stop:
            return False
        return stop_locked(name)


def remove(name: str) -> bool:
    """Stop an instance and delete its directory (data, logs, port reservation); for
    throw-away instances. True if there was one."""
    check_name(name)
    base = instance_dir(name)
    if not base.is_dir() and not find_pids(name):
        return False
    with locked(name):
        stop_locked(name)
        for entry in base.iterdir():
            if entry.name != ".lock":
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        (base / ".lock").unlink()
        base.rmdir()
    return True


def _start_or_reuse(
    line: Line, name: str, port: int | None, tls: bool, timeout: float, *, auto_stop: bool
) -> Server:
    current = read_state(name)
    if current is not None and is_ours(current.pid, name):
        if (current.line == line.name and (port is None or port == current.port)
                and tls == current.tls):
            err = login_error(current)
            if err is None:
                progress(f"{label_of(line, name)} is already running "
                         f"on {current.uri} (pid {current.pid})")
                return current
            progress(f"{label_of(line, name)} is running but a login fails ({err}); "
                     "restarting it")
        else:
            what = "line" if name in LINES else f"instance (line {current.line})"
            raise TestbedError(
                f"{what} {name} is already running on port {current.port} "
                f"(tls={'on' if current.tls else 'off'}); stop it first: {stop_hint(name)}"
            )
    stop_locked(name)
    if port is None and name == line.name:
        port = line.default_port
    return launch(line, name, port, tls, timeout, auto_stop=auto_stop)


def stop(name: str, *, grace: float = STOP_GRACE) -> bool:
    """Stop an instance (default: a line's) and wait until its process is gone; its state and
    store are dropped (``restart`` needs ``kill``; the DBMS logs stay). True if one was
    running."""
    check_name(name)
    if not instance_dir(name).is_dir() and not find_pids(name):
        return False
    with locked(name):
        return stop_locked(name, grace=grace)


def stop_all(*, grace: float = STOP_GRACE) -> list[str]:
    """``stop`` every instance of the test-bed dir; the names of those that were running."""
    return [name for name in instances() if stop(name, grace=grace)]


def kill(name: str) -> bool:
    """SIGKILL an instance's server (a crash) and wait until the process is gone. Its data and
    state (port, password) are kept for ``restart``. True if a process was killed."""
    check_name(name)
    if not instance_dir(name).is_dir() and not find_pids(name):
        return False
    with locked(name):
        state = read_state(name)
        found = end_processes(name, grace=0.0)
        if found and state is not None:
            write_state(dataclasses.replace(state, killed_at=time.time()))
        if found:
            progress(f"killed instance {name} (SIGKILL); its data are kept")
        return found


def restart(name: str, *, timeout: float = DEFAULT_TIMEOUT) -> Server:
    """Start an instance again on its kept data, port and password (after ``kill``, a crash,
    or while running: then it is stopped cleanly first) and return once a Bolt login works."""
    check_name(name)
    if read_state(name) is None:
        raise TestbedError(
            f"instance {name} has nothing to restart (never started, or stopped with `stop`, "
            "which forgets it); start it instead"
        )
    with locked(name):
        state = read_state(name)
        if state is None:
            raise TestbedError(f"instance {name} was stopped meanwhile; start it instead")
        line = get_line(state.line)
        if end_processes(name, grace=STOP_GRACE):
            progress(f"stopped instance {name} to restart it")
        return launch(line, name, state.port, state.tls, timeout, auto_stop=state.auto_stop,
                       previous=state)


def status() -> list[LineStatus]:
    """One entry per instance: the lines' default ones (always) and every other one here."""
    result = []
    for name in dict.fromkeys([*LINE_NAMES, *instances()]):
        state = read_state(name)
        meta = read_meta(name)
        pids = find_pids(name)
        line_name = state.line if state else meta[0] if meta else name if name in LINES else "?"
        line = LINES.get(line_name)
        version = state.version if state else line.version if line else "?"
        port = (state.port if state else meta[1] if meta
                else line.default_port if line and name == line.name else 0)
        if state is not None and state.pid in pids:
            extra = pids - {state.pid}
            note = f"stray pids {sorted(extra)}" if extra else ""
            result.append(LineStatus(line_name, version, True, port, state.pid, state.uri,
                                     note, name))
        elif pids:
            result.append(LineStatus(line_name, version, True, port, min(pids), None,
                                     f"state file missing; stop it: {stop_hint(name)}", name))
        else:
            note = ""
            if state is not None:
                how = "killed" if state.killed_at else "crashed or killed"
                note = (f"{how}; data kept: scripts/neo4j-testbed restart --name {name}")
            result.append(LineStatus(line_name, version, False, port, None, None, note, name))
    return result


class Instance:
    """A named instance whose server tests may kill and restart (``fault_server``): the
    connection details always come from its current state (the pid changes on restart; port,
    password and data do not)."""

    def __init__(self, name: str) -> None:
        self.name = check_name(name)

    def __repr__(self) -> str:
        return f"Instance({self.name!r})"

    @property
    def server(self) -> Server:
        state = read_state(self.name)
        if state is None:
            raise TestbedError(f"instance {self.name} has no state (it was stopped)")
        return state

    @property
    def line(self) -> str:
        return self.server.line

    @property
    def version(self) -> str:
        return self.server.version

    @property
    def uri(self) -> str:
        return self.server.uri

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def password(self) -> str:
        return self.server.password

    @property
    def auth(self) -> tuple[str, str]:
        return self.server.auth

    @property
    def pid(self) -> int:
        return self.server.pid

    @property
    def data_dir(self) -> Path:
        return self.server.data_dir

    def driver(self, **config: Any) -> neo4j.Driver:
        return self.server.driver(**config)

    def env(self) -> dict[str, str]:
        return self.server.env()

    def running(self) -> Server | None:
        return running(self.name)

    def kill(self) -> bool:
        """SIGKILL the server (a crash); data, port and password are kept."""
        return kill(self.name)

    def restart(self, *, timeout: float = DEFAULT_TIMEOUT) -> Server:
        """Start it again on its kept data (stopping it cleanly first if it runs)."""
        return restart(self.name, timeout=timeout)

    def ensure_running(self, *, timeout: float = DEFAULT_TIMEOUT) -> Server:
        """The running server; restarted on its kept data if it is down or a login fails."""
        current = running(self.name)
        if current is not None and login_error(current) is None:
            return current
        return restart(self.name, timeout=timeout)
