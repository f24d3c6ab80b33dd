"""Start, stop and inspect the real Neo4j servers of the test bed."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
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
from .errors import TestbedError
from .lines import LINES, Line, get_line
from .paths import line_dir

if TYPE_CHECKING:
    import neo4j

USERNAME = "neo4j"
HOST = "127.0.0.1"
READY_MARKER = "TESTBED READY"
FAILED_MARKER = "TESTBED FAILED"
DEFAULT_TIMEOUT = 120.0
STOP_GRACE = 30.0
HEAP = os.environ.get("NEO4J_TESTBED_HEAP", "768m")

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
    started: bool = field(default=False, compare=False)
    """True if this very ``start`` call launched the process (False: it was already running)."""

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
    line: str
    version: str
    running: bool
    port: int
    pid: int | None
    uri: str | None
    note: str = ""

    def describe(self) -> str:
        state = "running" if self.running else "stopped"
        text = (f"{self.line:<7} {state:<8} version={self.version:<10} port={self.port:<5} "
                f"pid={self.pid if self.pid else '-'}")
        if self.running and self.uri:
            text += f" uri={self.uri}"
        if self.note:
            text += f" ({self.note})"
        return text


# --------------------------------------------------------------------------- files and processes


def _state_path(line: str) -> Path:
    return line_dir(line) / "state.json"


def _home(line: str) -> Path:
    """The DBMS home of the embedded server (``data/`` and ``logs/`` below it); wiped on start."""
    return line_dir(line) / "data"


def _pid_marker(line: str) -> str:
    return f"-Dneo4j.testbed.home={_home(line)}"


def _read_state(line: str) -> Server | None:
    path = _state_path(line)
    try:
        return Server.from_json(json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError, KeyError):
        return None


def _write_state(server: Server) -> None:
    path = _state_path(server.line)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(server.to_json(), fh, indent=2)
        fh.write("\n")
    tmp.replace(path)


@contextlib.contextmanager
def _locked(line: str) -> Iterator[None]:
    d = line_dir(line)
    d.mkdir(parents=True, exist_ok=True)
    with (d / ".lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


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


def _is_ours(pid: int, line: str) -> bool:
    return _alive(pid) and _pid_marker(line) in _cmdline(pid)


def _find_pids(line: str) -> set[int]:
    """Every live process of this line's server (also ones whose state file got lost)."""
    marker = _pid_marker(line)
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            pid = int(entry.name)
            if marker in _cmdline(pid) and _alive(pid):
                found.add(pid)
    return found


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


def running(line_name: str) -> Server | None:
    """The server of a line if its process is alive (no login is tried)."""
    get_line(line_name)
    state = _read_state(line_name)
    if state is not None and _is_ours(state.pid, line_name):
        return state
    return None


def start(
    line_name: str,
    port: int | None = None,
    *,
    tls: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
) -> Server:
    """Start the line's server (or reuse the one already running) and return once a real Bolt
    login with the generated password works. It runs until ``stop``."""
    line = get_line(line_name)
    with _locked(line.name):
        return _start_or_reuse(line, port, tls, timeout, auto_stop=False)


def acquire(
    line_name: str,
    port: int | None = None,
    *,
    tls: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
) -> Server:
    """``start`` plus a lease held by this process (pytest sessions): a server started here is
    stopped by the last ``release``, so concurrent sessions sharing it do not pull it away from
    each other, and none is left behind."""
    line = get_line(line_name)
    with _locked(line.name):
        server = _start_or_reuse(line, port, tls, timeout, auto_stop=True)
        leases = _leases_dir(line.name)
        leases.mkdir(parents=True, exist_ok=True)
        (leases / str(os.getpid())).write_text(f"{server.pid}\n")
        return server


def release(line_name: str) -> bool:
    """Drop this process's lease; stop the server if it was started by ``acquire`` and no
    other live process holds a lease. True if it was stopped."""
    get_line(line_name)
    with _locked(line_name):
        leases = _leases_dir(line_name)
        (leases / str(os.getpid())).unlink(missing_ok=True)
        others = []
        if leases.is_dir():
            for entry in leases.iterdir():
                if entry.name.isdigit() and Path(f"/proc/{entry.name}").exists():
                    others.append(entry)
                else:
                    entry.unlink(missing_ok=True)
        state = _read_state(line_name)
        if others or state is None or not state.auto_stop:
            return False
        return _stop_locked(line_name)


def _leases_dir(line: str) -> Path:
    return line_dir(line) / "leases"


def _start_or_reuse(
    line: Line, port: int | None, tls: bool, timeout: float, *, auto_stop: bool
) -> Server:
    current = _read_state(line.name)
    if current is not None and _is_ours(current.pid, line.name):
        if (port is None or port == current.port) and tls == current.tls:
            err = _login_error(current)
            if err is None:
                _progress(f"Neo4j {current.version} (line {line.name}) is already running "
                          f"on {current.uri} (pid {current.pid})")
                return current
            _progress(f"line {line.name} is running but a login fails ({err}); restarting it")
        else:
            raise TestbedError(
                f"line {line.name} is already running on port {current.port} "
                f"(tls={'on' if current.tls else 'off'}); stop it first: "
                f"scripts/neo4j-testbed stop --line {line.name}"
            )
    _stop_locked(line.name)
    return _start_locked(line, port if port is not None else line.default_port, tls, timeout,
                         auto_stop)


def _start_locked(line: Line, port: int, tls: bool, timeout: float, auto_stop: bool) -> Server:
    classpath = artifacts.neo4j_classpath(line)
    java = artifacts.resolve_java(line)
    launcher = artifacts.launcher_dir()
    if not _port_free(port):
        raise TestbedError(f"port {port} on {HOST} is already in use; choose another with --port")

    base = line_dir(line.name)
    home = _home(line.name)
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    ca_cert: Path | None = None
    bolt_tls_dir: Path | None = None
    if tls:
        from .tls import make_certificates

        ca_cert, bolt_tls_dir = make_certificates(base / "tls")
    conf = base / "neo4j.conf"
    conf.write_text("".join(f"{k}={v}\n" for k, v in _settings(line, port, bolt_tls_dir).items()))
    argfile = base / "jvm.args"
    argfile.write_text("".join(f"{_argfile_quote(a)}\n" for a in _jvm_args(classpath, launcher)))

    password = secrets.token_urlsafe(18)  # 24 URL-safe characters
    log_path = base / "server.log"
    cmd = [java, _pid_marker(line.name), f"@{argfile}", artifacts.LAUNCHER_CLASS,
           str(home), str(conf)]
    env = dict(os.environ, NEO4J_TESTBED_PASSWORD=password)
    scheme = "bolt+s" if tls else "bolt"
    java_text = (line.java.describe() if artifacts.java_override(line) is None
                 else f"Java {artifacts.java_major_version(java)} ({java})")
    _progress(f"starting Neo4j {line.version} (line {line.name}) on {HOST}:{port} with "
              f"{java_text}{' and Bolt TLS' if tls else ''}; log: {log_path}")
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
        ca_cert=ca_cert, started_at=time.time(), auto_stop=auto_stop, started=True,
    )
    _write_state(server)

    def fail(message: str) -> TestbedError:
        _stop_locked(line.name)
        return TestbedError(message, log_path=log_path, log_tail=_log_tail(log_path))

    try:
        _wait_until_ready(server, proc, line, t0, timeout, fail)
    except KeyboardInterrupt:
        _stop_locked(line.name)
        raise

    elapsed = round(time.monotonic() - t0, 1)
    server = dataclasses.replace(server, startup_seconds=elapsed)
    _write_state(server)
    _progress(f"Neo4j {line.version} (line {line.name}) is ready on {server.uri} "
              f"in {elapsed} s (pid {proc.pid})")
    return server


def _wait_until_ready(
    server: Server,
    proc: subprocess.Popen[bytes],
    line: Line,
    t0: float,
    timeout: float,
    fail: Callable[[str], TestbedError],
) -> None:
    last_error: Exception | None = None
    deadline = t0 + timeout
    while True:
        if proc.poll() is not None:
            raise fail(f"Neo4j {line.version} (line {line.name}) exited during start-up "
                       f"with code {proc.returncode}")
        text = server.log_path.read_text(errors="replace")
        if FAILED_MARKER in text:
            raise fail(f"Neo4j {line.version} (line {line.name}) failed to start")
        if READY_MARKER in text:
            last_error = _login_error(server)
            if last_error is None:
                break
        if time.monotonic() > deadline:
            why = f"; last login error: {last_error}" if last_error else ""
            raise fail(f"Neo4j {line.version} (line {line.name}) was not ready within "
                       f"{timeout:.0f} s{why}")
        time.sleep(0.25)


def stop(line_name: str, *, grace: float = STOP_GRACE) -> bool:
    """Stop the line's server and wait until its process is gone. True if one was running."""
    get_line(line_name)
    with _locked(line_name):
        return _stop_locked(line_name, grace=grace)


def _stop_locked(line_name: str, *, grace: float = STOP_GRACE) -> bool:
    pids = _find_pids(line_name)
    state = _read_state(line_name)
    if state is not None and _is_ours(state.pid, line_name):
        pids.add(state.pid)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = {p for p in pids if _alive(p)}
    if left:
        _progress(f"line {line_name}: no clean shutdown within {grace:.0f} s; sending SIGKILL "
                  f"to {sorted(left)}")
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in left) and time.monotonic() < deadline:
            time.sleep(0.1)
        still = [p for p in left if _alive(p)]
        if still:
            raise TestbedError(f"line {line_name}: process {still} did not die after SIGKILL")
    for pid in pids:
        child = _CHILDREN.pop(pid, None)
        if child is not None:
            child.wait()
    _state_path(line_name).unlink(missing_ok=True)
    shutil.rmtree(_leases_dir(line_name), ignore_errors=True)
    return bool(pids)


def status() -> list[LineStatus]:
    result = []
    for name, line in LINES.items():
        state = _read_state(name)
        pids = _find_pids(name)
        if state is not None and state.pid in pids:
            extra = pids - {state.pid}
            note = f"stray pids {sorted(extra)}" if extra else ""
            result.append(LineStatus(name, state.version, True, state.port, state.pid,
                                     state.uri, note))
        elif pids:
            result.append(LineStatus(name, line.version, True, line.default_port, min(pids),
                                     None, "state file missing; stop it"))
        else:
            note = "stale state file" if state is not None else ""
            result.append(LineStatus(name, line.version, False, line.default_port, None,
                                     None, note))
    return result
