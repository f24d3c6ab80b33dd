"""Start, stop, kill, restart and inspect the real Neo4j servers of the test bed.

Every server is an *instance* with a name: by default the name of its line (``4.4``, ``5``,
``calver``); other names (e.g. ``5-tls``, ``5-fault``) let several servers of one line run at
once. An instance keeps everything in ``<testbed dir>/<name>/``: ``state.json`` (port, password,
pid...), ``instance.json`` (its line and port, kept after a stop), ``neo4j.conf``, the server log
and the DBMS home ``data/``. A line's default instance listens on the line's default port; any
other instance gets a free port of its own (the same one again on its next start if still free).

``start`` wipes the data; ``kill`` (SIGKILL, a crash) keeps data and state so that ``restart``
brings the same store back on the same port with the same password.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import artifacts
from .errors import InstanceBusy, TestbedError
from .lines import LINE_NAMES, LINES, Line, get_line
from .paths import instance_dir, testbed_dir

if TYPE_CHECKING:
    import neo4j

USERNAME = "neo4j"
HOST = "127.0.0.1"
READY_MARKER = "TESTBED READY"
FAILED_MARKER = "TESTBED FAILED"
DEFAULT_TIMEOUT = 120.0
STOP_GRACE = 30.0
REJECTED_GRACE = 5.0
"""A restarted server that rejects the kept password this long fails at once."""
HEAP = os.environ.get("NEO4J_TESTBED_HEAP", "768m")
NAMED_PORT_BASE = 17700
NAMED_PORT_SPAN = 1000
"""Instances other than a line's default one get a port in [BASE, BASE + SPAN)."""
RESERVED_NAMES = frozenset({"cache", "launcher", "jdk", "m2", "maven", "rootfs"})
"""Directory names under the test-bed dir that are not instances."""
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

# Popen objects of servers started by this process, so that they can be reaped (no zombies).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def _progress(msg: str) -> None:
    print(f"neo4j-testbed: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- the handle


@dataclass(frozen=True)
class Server:
    """A running test-bed server (what ``start`` returns and ``state.json`` holds)."""

    line: str
    version: str
    port: int
    uri: str
    username: str
    password: str
    pid: int
    log_path: Path
    debug_log_path: Path
    data_dir: Path
    java: str
    tls: bool = False
    ca_cert: Path | None = None
    started_at: float = 0.0
    startup_seconds: float | None = None
    auto_stop: bool = False
    """Started by ``acquire`` (pytest): the last ``release`` stops it. ``start`` (the CLI)
    leaves it running until ``stop``."""
    name: str = ""
    """The instance name (its directory under the test-bed dir); defaults to ``line``."""
    killed_at: float | None = None
    """Set by ``kill`` (wall-clock time); None for a running server."""
    restarts: int = 0
    """How many times ``restart`` brought this instance back on its kept data."""
    started: bool = field(default=False, compare=False)
    """True if this very ``start`` call launched the process (False: it was already running)."""

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.line)

    @classmethod
    def external(cls, *, line: str, uri: str, username: str, password: str,
                 version: str) -> Server:
        """A server the test bed did not start (a CI service container): never stopped here."""
        port = int(uri.rsplit(":", 1)[1]) if uri.rsplit(":", 1)[1].isdigit() else 7687
        return cls(line=line, version=version, port=port, uri=uri, username=username,
                   password=password, pid=0, log_path=Path("/dev/null"),
                   debug_log_path=Path("/dev/null"), data_dir=Path("/dev/null"),
                   java="external", name=f"{line}-external")

    @property
    def auth(self) -> tuple[str, str]:
        return (self.username, self.password)

    def driver(self, **config: Any) -> neo4j.Driver:
        """A driver for this server (trusting the test-bed CA when TLS is on)."""
        import neo4j

        if self.tls:
            config.setdefault("encrypted", True)
            config.setdefault("trusted_certificates", neo4j.TrustCustomCAs(str(self.ca_cert)))
            uri = f"bolt://{HOST}:{self.port}"
        else:
            uri = self.uri
        return neo4j.GraphDatabase.driver(uri, auth=self.auth, **config)

    def env(self) -> dict[str, str]:
        env = {
            "NEO4J_URI": self.uri,
            "NEO4J_USERNAME": self.username,
            "NEO4J_PASSWORD": self.password,
        }
        if self.tls and self.ca_cert is not None:
            env["NEO4J_CA_CERT"] = str(self.ca_cert)
        return env

    def export_lines(self) -> list[str]:
        return [f"export {k}={shlex.quote(v)}" for k, v in self.env().items()]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("started")
        for k, v in data.items():
            if isinstance(v, Path):
                data[k] = str(v)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Server:
        kw = dict(data)
        for k in ("log_path", "debug_log_path", "data_dir"):
            kw[k] = Path(kw[k])
        kw["ca_cert"] = Path(kw["ca_cert"]) if kw.get("ca_cert") else None
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in kw.items() if k in known})


@dataclass(frozen=True)
class LineStatus:
    """One instance in ``status()`` (the default instance of a line is named like the line)."""

    line: str
    version: str
    running: bool
    port: int
    pid: int | None
    uri: str | None
    note: str = ""
    name: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.line)

    def describe(self, width: int = 7) -> str:
        """One line of ``status``; ``width``: of the name column."""
        state = "running" if self.running else "stopped"
        text = (f"{self.name:<{width}} {state:<8} version={self.version:<10} port={self.port:<5} "
                f"pid={self.pid if self.pid else '-'}")
        if self.name != self.line:
            text += f" line={self.line}"
        if self.running and self.uri:
            text += f" uri={self.uri}"
        if self.note:
            text += f" ({self.note})"
        return text


# --------------------------------------------------------------------------- names


def check_name(name: str) -> str:
    """An instance name: letters, digits, ``.``, ``_``, ``-`` (at most 64; not a cache dir)."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name) or name in RESERVED_NAMES:
        raise TestbedError(
            f"invalid instance name {name!r}: use letters, digits, '.', '_' and '-' "
            f"(at most 64 characters, starting with a letter or digit; not "
            f"{', '.join(sorted(RESERVED_NAMES))})"
        )
    return name


def _resolve(line_name: str, name: str | None) -> tuple[Line, str]:
    """The line and the instance name of a start (default name: the line's)."""
    line = get_line(line_name)
    if name is None:
        return line, line.name
    check_name(name)
    if name in LINES and name != line.name:
        raise TestbedError(f"the name {name} belongs to the default instance of line {name}; "
                           f"choose another name for an instance of line {line.name}")
    return line, name


def _stop_hint(name: str) -> str:
    flag = f"--line {name}" if name in LINES else f"--name {name}"
    return f"scripts/neo4j-testbed stop {flag}"


# --------------------------------------------------------------------------- files and processes


def _state_path(name: str) -> Path:
    return instance_dir(name) / "state.json"


def _meta_path(name: str) -> Path:
    return instance_dir(name) / "instance.json"


def _home(name: str) -> Path:
    """The DBMS home of the embedded server (``data/`` and ``logs/`` below it); wiped on start,
    kept by ``kill`` and ``restart``."""
    return instance_dir(name) / "data"


def _marker_prefix() -> str:
    return f"-Dneo4j.testbed.home={testbed_dir()}{os.sep}"


def _pid_marker(name: str) -> str:
    return f"-Dneo4j.testbed.home={_home(name)}"


def _read_state(name: str) -> Server | None:
    path = _state_path(name)
    try:
        return Server.from_json(json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError, KeyError):
        return None


def _write_state(server: Server) -> None:
    _write_json(_state_path(server.name), server.to_json(), private=True)


def _write_json(path: Path, data: dict[str, Any], *, private: bool = False) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
        fh.write("\n")
    tmp.replace(path)


def _read_meta(name: str) -> tuple[str, int] | None:
    """(line, port) of an instance, kept after a stop (its port reservation)."""
    try:
        data = json.loads(_meta_path(name).read_text())
        return str(data["line"]), int(data["port"])
    except (OSError, ValueError, TypeError, KeyError):
        return None


def _write_meta(name: str, line: str, port: int) -> None:
    _write_json(_meta_path(name), {"name": name, "line": line, "port": port})


@contextlib.contextmanager
def _flocked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _locked(name: str) -> contextlib.AbstractContextManager[None]:
    """The lock of one instance (start, stop, kill, restart, leases)."""
    return _flocked(instance_dir(name) / ".lock")


def _ports_locked() -> contextlib.AbstractContextManager[None]:
    """The lock of port choices in this test-bed dir (taken inside an instance lock)."""
    return _flocked(testbed_dir() / ".ports.lock")


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return raw.decode(errors="replace").split("\0")


def _alive(pid: int) -> bool:
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # the state field follows the parenthesised command name
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def _is_ours(pid: int, name: str) -> bool:
    return _alive(pid) and _pid_marker(name) in _cmdline(pid)


def _processes() -> Iterator[tuple[int, list[str]]]:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            pid = int(entry.name)
            yield pid, _cmdline(pid)


def _find_pids(name: str) -> set[int]:
    """Every live process of this instance's server (also ones whose state file got lost)."""
    marker = _pid_marker(name)
    return {pid for pid, cmd in _processes() if marker in cmd and _alive(pid)}


def instances() -> list[str]:
    """The names of every instance in the test-bed dir (with a directory of its own or a live
    server process): the lines' default instances first, then the others sorted."""
    names: set[str] = set()
    root = testbed_dir()
    if root.is_dir():
        for d in root.iterdir():
            if (d.is_dir() and _NAME_RE.fullmatch(d.name) and d.name not in RESERVED_NAMES
                    and any((d / f).exists() for f in ("state.json", "instance.json",
                                                       "neo4j.conf"))):
                names.add(d.name)
    prefix, suffix = _marker_prefix(), f"{os.sep}data"
    for _, cmd in _processes():
        for arg in cmd:
            if arg.startswith(prefix) and arg.endswith(suffix):
                candidate = arg[len(prefix):-len(suffix)]
                if _NAME_RE.fullmatch(candidate) and candidate not in RESERVED_NAMES:
                    names.add(candidate)
    return sorted(names, key=lambda n: (0, LINE_NAMES.index(n), "") if n in LINES else (1, 0, n))


def _log_tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def _ports_of_others(name: str) -> set[int]:
    """Ports the lines' default instances and the other instances here use or reserve."""
    ports = {line.default_port for line in LINES.values()}
    for other in instances():
        if other == name:
            continue
        state, meta = _read_state(other), _read_meta(other)
        if state is not None:
            ports.add(state.port)
        if meta is not None:
            ports.add(meta[1])
    return ports


def _pick_port(name: str) -> int:
    """A free port for a named instance (call with ``_ports_locked``): its previous one if still
    free, else the first free one from a place that depends on the test-bed dir and the name."""
    taken = _ports_of_others(name)
    meta = _read_meta(name)
    seed = int.from_bytes(hashlib.sha256(f"{testbed_dir()}\0{name}".encode()).digest()[:4], "big")
    candidates = [NAMED_PORT_BASE + (seed + i) % NAMED_PORT_SPAN for i in range(NAMED_PORT_SPAN)]
    if meta is not None and NAMED_PORT_BASE <= meta[1] < NAMED_PORT_BASE + NAMED_PORT_SPAN:
        candidates.insert(0, meta[1])
    for port in candidates:
        if port not in taken and _port_free(port):
            return port
    raise TestbedError(f"no free port in {NAMED_PORT_BASE}-{NAMED_PORT_BASE + NAMED_PORT_SPAN - 1} "
                       f"on {HOST} for instance {name}; choose one with --port")


def _login_error(server: Server, timeout: float = 5.0) -> Exception | None:
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


def _is_rejection(err: Exception) -> bool:
    """The server refused the credentials (wrong password, or too many wrong ones)."""
    if isinstance(err, PermissionError):
        return True
    code = getattr(err, "code", None)
    return isinstance(code, str) and code.startswith("Neo.ClientError.Security.")


# --------------------------------------------------------------------------- configuration


def _settings(line: Line, port: int, bolt_tls_dir: Path | None) -> dict[str, str]:
    addr = f"{HOST}:{port}"
    if line.dialect == "4.4":
        s = {
            "dbms.default_listen_address": HOST,
            "dbms.default_advertised_address": HOST,
            "dbms.connector.bolt.enabled": "true",
            "dbms.connector.bolt.listen_address": addr,
            "dbms.connector.bolt.advertised_address": addr,
            "dbms.connector.http.enabled": "false",
            "dbms.connector.https.enabled": "false",
            "dbms.security.auth_enabled": "true",
            "dbms.memory.pagecache.size": "64m",
        }
        tls_level = "dbms.connector.bolt.tls_level"
    else:
        s = {
            "server.default_listen_address": HOST,
            "server.default_advertised_address": HOST,
            "server.bolt.enabled": "true",
            "server.bolt.listen_address": addr,
            "server.bolt.advertised_address": addr,
            "server.http.enabled": "false",
            "server.https.enabled": "false",
            "dbms.security.auth_enabled": "true",
            "server.memory.pagecache.size": "64m",
            "dbms.usage_report.enabled": "false",
        }
        tls_level = "server.bolt.tls_level"
    s.update(line.extra_settings)
    if bolt_tls_dir is not None:
        s.update({
            "dbms.ssl.policy.bolt.enabled": "true",
            "dbms.ssl.policy.bolt.base_directory": str(bolt_tls_dir),
            "dbms.ssl.policy.bolt.private_key": "private.key",
            "dbms.ssl.policy.bolt.public_certificate": "public.crt",
            "dbms.ssl.policy.bolt.client_auth": "NONE",
            tls_level: "REQUIRED",
        })
    return s


def _argfile_quote(arg: str) -> str:
    """Quote one argument for a java @argfile."""
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _jvm_args(classpath: list[str], launcher: Path) -> list[str]:
    return [
        "-Xms256m",
        f"-Xmx{HEAP}",
        # C1 only: halves the start-up (10-20 s instead of 20-30 s on 2 busy cores); the
        # workloads are tiny. NEO4J_TESTBED_JVM_OPTS (appended, so it wins) can undo it.
        "-XX:TieredStopAtLevel=1",
        "-XX:+ExitOnOutOfMemoryError",
        "-XX:-OmitStackTraceInFastThrow",
        "-Djdk.nio.maxCachedBufferSize=1024",
        "-Dio.netty.tryReflectionSetAccessible=true",
        "-Dfile.encoding=UTF-8",
        "--add-opens=java.base/java.nio=ALL-UNNAMED",
        "--add-opens=java.base/java.io=ALL-UNNAMED",
        "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
        *os.environ.get("NEO4J_TESTBED_JVM_OPTS", "").split(),
        "-cp",
        os.pathsep.join([str(launcher), *classpath]),
    ]


# --------------------------------------------------------------------------- public API


def fetch(line_name: str) -> None:
    """Download everything the line needs (Maven jars, Java runtime) and compile the launcher."""
    artifacts.fetch(get_line(line_name))


def running(name: str) -> Server | None:
    """The server of an instance (default: a line's) if its process is alive (no login is
    tried)."""
    check_name(name)
    state = _read_state(name)
    if state is not None and _is_ours(state.pid, name):
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
    line, name = _resolve(line_name, name)
    with _locked(name):
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
    line, name = _resolve(line_name, name)
    with _locked(name):
        leases = _leases_dir(name)
        if exclusive:
            me = str(os.getpid())
            holders = sorted(int(p.name) for p in _live_leases(leases) if p.name != me)
            if holders:
                raise InstanceBusy(f"instance {name} is leased by other processes {holders}")
        server = _start_or_reuse(line, name, port, tls, timeout, auto_stop=True)
        leases.mkdir(parents=True, exist_ok=True)
        (leases / str(os.getpid())).write_text(f"{server.pid}\n")
        return server


def _live_leases(leases: Path) -> list[Path]:
    """The lease files of live processes (those of dead ones are removed)."""
    live = []
    if leases.is_dir():
        for entry in leases.iterdir():
            if entry.name.isdigit() and Path(f"/proc/{entry.name}").exists():
                live.append(entry)
            else:
                entry.unlink(missing_ok=True)
    return live


def release(name: str) -> bool:
    """Drop this process's lease on an instance (default: a line's); stop it if it was started
    by ``acquire`` and no other live process holds a lease. True if it was stopped."""
    check_name(name)
    if not instance_dir(name).is_dir():
        return False
    with _locked(name):
        leases = _leases_dir(name)
        (leases / str(os.getpid())).unlink(missing_ok=True)
        others = _live_leases(leases)
        state = _read_state(name)
        if others or state is None or not state.auto_stop:
            return False
        return _stop_locked(name)


def remove(name: str) -> bool:
    """Stop an instance and delete its directory (data, logs, port reservation); for
    throw-away instances. True if there was one."""
    check_name(name)
    base = instance_dir(name)
    if not base.is_dir() and not _find_pids(name):
        return False
    with _locked(name):
        _stop_locked(name)
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


def _leases_dir(name: str) -> Path:
    return instance_dir(name) / "leases"


def _label(line: Line, name: str) -> str:
    if name == line.name:
        return f"Neo4j {line.version} (line {line.name})"
    return f"Neo4j {line.version} (instance {name} of line {line.name})"


def _start_or_reuse(
    line: Line, name: str, port: int | None, tls: bool, timeout: float, *, auto_stop: bool
) -> Server:
    current = _read_state(name)
    if current is not None and _is_ours(current.pid, name):
        if (current.line == line.name and (port is None or port == current.port)
                and tls == current.tls):
            err = _login_error(current)
            if err is None:
                _progress(f"{_label(line, name)} is already running "
                          f"on {current.uri} (pid {current.pid})")
                return current
            _progress(f"{_label(line, name)} is running but a login fails ({err}); "
                      "restarting it")
        else:
            what = "line" if name in LINES else f"instance (line {current.line})"
            raise TestbedError(
                f"{what} {name} is already running on port {current.port} "
                f"(tls={'on' if current.tls else 'off'}); stop it first: {_stop_hint(name)}"
            )
    _stop_locked(name)
    if port is None and name == line.name:
        port = line.default_port
    return _launch(line, name, port, tls, timeout, auto_stop=auto_stop)


def _launch(
    line: Line,
    name: str,
    port: int | None,
    tls: bool,
    timeout: float,
    *,
    auto_stop: bool,
    previous: Server | None = None,
) -> Server:
    """Run the server of an instance (call with its lock held). Fresh (``previous`` is None):
    wipe the data, make a password (and certificates). Restart: reuse ``previous``'s data,
    password, port and certificates."""
    classpath = artifacts.neo4j_classpath(line)
    java = artifacts.resolve_java(line)
    launcher = artifacts.launcher_dir()

    base = instance_dir(name)
    base.mkdir(parents=True, exist_ok=True)
    home = _home(name)
    ca_cert: Path | None = None
    bolt_tls_dir: Path | None = None
    if previous is not None:
        if not home.is_dir():
            raise TestbedError(f"instance {name} has no data directory {home} to restart on; "
                               "start it instead")
        password = previous.password
        restarts = previous.restarts + 1
        if tls:
            ca_cert, bolt_tls_dir = previous.ca_cert, base / "tls" / "bolt"
            if ca_cert is None or not ca_cert.is_file() or not bolt_tls_dir.is_dir():
                raise TestbedError(f"instance {name} lost its TLS certificates in {base / 'tls'}; "
                                   "start it instead")
    else:
        # Distinctive on purpose: unicode, quotes, spaces, $ and % around a random core, so every
        # scenario also proves the tool quotes, transports and hides an awkward password.
        password = f"Pw ü'\"$%{secrets.token_urlsafe(12)} ¤"
        restarts = 0

    with _ports_locked():
        if port is None:
            port = _pick_port(name)
        elif not _port_free(port):
            if previous is not None:
                raise TestbedError(f"port {port} on {HOST} of instance {name} is taken by another "
                                   "process; it cannot restart there")
            raise TestbedError(f"port {port} on {HOST} is already in use; choose another with "
                               "--port")
        # reserves the port (before the JVM binds it) against starts of other instances here
        _write_meta(name, line.name, port)

    if previous is None:
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        if tls:
            from .tls import make_certificates

            ca_cert, bolt_tls_dir = make_certificates(base / "tls")
    conf = base / "neo4j.conf"
    conf.write_text("".join(f"{k}={v}\n" for k, v in _settings(line, port, bolt_tls_dir).items()))
    argfile = base / "jvm.args"
    argfile.write_text("".join(f"{_argfile_quote(a)}\n" for a in _jvm_args(classpath, launcher)))

    log_path = base / "server.log"
    if previous is not None and log_path.exists():
        log_path.replace(base / "server.previous.log")  # the crashed run's log
    cmd = [java, _pid_marker(name), f"@{argfile}", artifacts.LAUNCHER_CLASS,
           str(home), str(conf)]
    env = dict(os.environ, NEO4J_TESTBED_PASSWORD=password)
    env.pop("NEO4J_TESTBED_RESTART", None)
    if previous is not None:
        env["NEO4J_TESTBED_RESTART"] = "1"
    scheme = "bolt+s" if tls else "bolt"
    java_text = (line.java.describe() if artifacts.java_override(line) is None
                 else f"Java {artifacts.java_major_version(java)} ({java})")
    label = _label(line, name)
    verb = "restarting" if previous is not None else "starting"
    _progress(f"{verb} {label} on {HOST}:{port} with {java_text}"
              f"{' and Bolt TLS' if tls else ''}{' on its kept data' if previous else ''}; "
              f"log: {log_path}")
    t0 = time.monotonic()
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            cwd=base, env=env, start_new_session=True, close_fds=True,
        )
    _CHILDREN[proc.pid] = proc
    server = Server(
        line=line.name, version=line.version, port=port, uri=f"{scheme}://{HOST}:{port}",
        username=USERNAME, password=password, pid=proc.pid, log_path=log_path,
        debug_log_path=home / "logs" / "debug.log", data_dir=home, java=java, tls=tls,
        ca_cert=ca_cert, started_at=time.time(), auto_stop=auto_stop, name=name,
        restarts=restarts, started=True,
    )
    _write_state(server)

    def cleanup() -> None:
        if previous is None:
            _stop_locked(name)
        else:  # keep data and state: the restart can be tried again
            _end_processes(name, grace=STOP_GRACE)

    def fail(message: str) -> TestbedError:
        cleanup()
        return TestbedError(message, log_path=log_path, log_tail=_log_tail(log_path))

    try:
        _wait_until_ready(server, proc, label, t0, timeout, fail, restart=previous is not None)
    except KeyboardInterrupt:
        cleanup()
        raise

    elapsed = round(time.monotonic() - t0, 1)
    server = dataclasses.replace(server, startup_seconds=elapsed)
    _write_state(server)
    _progress(f"{label} is ready on {server.uri} in {elapsed} s (pid {proc.pid})")
    return server


def _wait_until_ready(
    server: Server,
    proc: subprocess.Popen[bytes],
    label: str,
    t0: float,
    timeout: float,
    fail: Callable[[str], TestbedError],
    *,
    restart: bool = False,
) -> None:
    last_error: Exception | None = None
    deadline = t0 + timeout
    rejected_since: float | None = None
    while True:
        if proc.poll() is not None:
            raise fail(f"{label} exited during start-up with code {proc.returncode}")
        text = server.log_path.read_text(errors="replace")
        if FAILED_MARKER in text:
            raise fail(f"{label} failed to start")
        if READY_MARKER in text:
            last_error = _login_error(server)
            if last_error is None:
                break
            if restart and _is_rejection(last_error):
                # the kept store does not know the password: its first start never finished
                rejected_since = rejected_since or time.monotonic()
                if time.monotonic() - rejected_since > REJECTED_GRACE:
                    raise fail(f"{label} rejects the instance's password on its kept data (did "
                               "its first start finish?); start it instead")
            else:
                rejected_since = None
        if time.monotonic() > deadline:
            why = f"; last login error: {last_error}" if last_error else ""
            raise fail(f"{label} was not ready within {timeout:.0f} s{why}")
        time.sleep(0.25)


def stop(name: str, *, grace: float = STOP_GRACE) -> bool:
    """Stop an instance (default: a line's) and wait until its process is gone; its state and
    store are dropped (``restart`` needs ``kill``; the DBMS logs stay). True if one was
    running."""
    check_name(name)
    if not instance_dir(name).is_dir() and not _find_pids(name):
        return False
    with _locked(name):
        return _stop_locked(name, grace=grace)


def stop_all(*, grace: float = STOP_GRACE) -> list[str]:
    """``stop`` every instance of the test-bed dir; the names of those that were running."""
    return [name for name in instances() if stop(name, grace=grace)]


def kill(name: str) -> bool:
    """SIGKILL an instance's server (a crash) and wait until the process is gone. Its data and
    state (port, password) are kept for ``restart``. True if a process was killed."""
    check_name(name)
    if not instance_dir(name).is_dir() and not _find_pids(name):
        return False
    with _locked(name):
        state = _read_state(name)
        found = _end_processes(name, grace=0.0)
        if found and state is not None:
            _write_state(dataclasses.replace(state, killed_at=time.time()))
        if found:
            _progress(f"killed instance {name} (SIGKILL); its data are kept")
        return found


def restart(name: str, *, timeout: float = DEFAULT_TIMEOUT) -> Server:
    """Start an instance again on its kept data, port and password (after ``kill``, a crash,
    or while running: then it is stopped cleanly first) and return once a Bolt login works."""
    check_name(name)
    if _read_state(name) is None:
        raise TestbedError(
            f"instance {name} has nothing to restart (never started, or stopped with `stop`, "
            "which forgets it); start it instead"
        )
    with _locked(name):
        state = _read_state(name)
        if state is None:
            raise TestbedError(f"instance {name} was stopped meanwhile; start it instead")
        line = get_line(state.line)
        if _end_processes(name, grace=STOP_GRACE):
            _progress(f"stopped instance {name} to restart it")
        return _launch(line, name, state.port, state.tls, timeout, auto_stop=state.auto_stop,
                       previous=state)


def _end_processes(name: str, *, grace: float) -> bool:
    """SIGTERM the instance's processes, SIGKILL what is left after ``grace`` seconds (at once
    if ``grace`` is 0), wait until they are gone and reap them. True if there were any."""
    pids = _find_pids(name)
    state = _read_state(name)
    if state is not None and _is_ours(state.pid, name):
        pids.add(state.pid)
    left = set(pids)
    if grace > 0:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = {p for p in pids if _alive(p)}
        if left:
            _progress(f"instance {name}: no clean shutdown within {grace:.0f} s; sending "
                      f"SIGKILL to {sorted(left)}")
    if left:
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in left) and time.monotonic() < deadline:
            time.sleep(0.05)
        still = [p for p in left if _alive(p)]
        if still:
            raise TestbedError(f"instance {name}: process {still} did not die after SIGKILL")
    for pid in pids:
        child = _CHILDREN.pop(pid, None)
        if child is not None:
            child.wait()
    return bool(pids)


def _stop_locked(name: str, *, grace: float = STOP_GRACE) -> bool:
    found = _end_processes(name, grace=grace)
    _state_path(name).unlink(missing_ok=True)
    shutil.rmtree(_leases_dir(name), ignore_errors=True)
    # without a state the store is of no use (the next start wipes it): free its ~0.5 GB of
    # pre-allocated transaction logs now; the DBMS logs (data/logs) stay for a look
    shutil.rmtree(_home(name) / "data", ignore_errors=True)
    return found


def status() -> list[LineStatus]:
    """One entry per instance: the lines' default ones (always) and every other one here."""
    result = []
    for name in dict.fromkeys([*LINE_NAMES, *instances()]):
        state = _read_state(name)
        meta = _read_meta(name)
        pids = _find_pids(name)
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
                                     f"state file missing; stop it: {_stop_hint(name)}", name))
        else:
            note = ""
            if state is not None:
                how = "killed" if state.killed_at else "crashed or killed"
                note = (f"{how}; data kept: scripts/neo4j-testbed restart --name {name}")
            result.append(LineStatus(line_name, version, False, port, None, None, note, name))
    return result


# --------------------------------------------------------------------------- fault tests


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
        state = _read_state(self.name)
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
        if current is not None and _login_error(current) is None:
            return current
        return restart(self.name, timeout=timeout)
