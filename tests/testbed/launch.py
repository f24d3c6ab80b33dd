"""Launching a server: its port, its neo4j.conf, its JVM arguments, the process, and the wait
until a real Bolt login works."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from . import artifacts
from .errors import TestbedError
from .lines import LINES, Line, port_offset
from .paths import instance_dir, testbed_dir
from .process import (
    STOP_GRACE,
    alive,
    end_processes,
    instances,
    is_rejection,
    log_tail,
    login_error,
    port_free,
    stop_locked,
)
from .state import (
    HOST,
    USERNAME,
    Server,
    home_dir,
    label_of,
    pid_marker,
    ports_locked,
    progress,
    read_meta,
    read_state,
    write_meta,
    write_state,
)

READY_MARKER = "TESTBED READY"
FAILED_MARKER = "TESTBED FAILED"
DEFAULT_TIMEOUT = 120.0
DEFAULT_HEAP = "768m"
"""The JVM's -Xmx unless NEO4J_TESTBED_HEAP says otherwise."""
REJECTED_GRACE = 5.0
"""A restarted server that rejects the kept password this long fails at once."""
NAMED_PORT_BASE = 17700
NAMED_PORT_SPAN = 1000
"""Instances other than a line's default one get a port in [BASE, BASE + SPAN), both moved by
``$NEO4J_TESTBED_PORT_OFFSET``."""


def _ports_of_others(name: str) -> set[int]:
    """Ports the lines' default instances and the other instances here use or reserve."""
    ports = {line.default_port for line in LINES.values()}
    for other in instances():
        if other == name:
            continue
        state, meta = read_state(other), read_meta(other)
        if state is not None:
            ports.add(state.port)
        if meta is not None:
            ports.add(meta[1])
    return ports


def pick_port(name: str) -> int:
    """A free port for a named instance (call with ``ports_locked``): its previous one if still
    free, else the first free one from a place that depends on the test-bed dir and the name."""
    taken = _ports_of_others(name)
    meta = read_meta(name)
    base = NAMED_PORT_BASE + port_offset()
    seed = int.from_bytes(hashlib.sha256(f"{testbed_dir()}\0{name}".encode()).digest()[:4], "big")
    candidates = [base + (seed + i) % NAMED_PORT_SPAN for i in range(NAMED_PORT_SPAN)]
    if meta is not None and base <= meta[1] < base + NAMED_PORT_SPAN:
        candidates.insert(0, meta[1])
    for port in candidates:
        if port not in taken and port_free(port):
            return port
    raise TestbedError(f"no free port in {base}-{base + NAMED_PORT_SPAN - 1} "
                       f"on {HOST} for instance {name}; choose one with --port")


def neo4j_settings(line: Line, port: int, bolt_tls_dir: Path | None) -> dict[str, str]:
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


def jvm_args(classpath: list[str], launcher: Path) -> list[str]:
    return [
        "-Xms256m",
        f"-Xmx{os.environ.get('NEO4J_TESTBED_HEAP', DEFAULT_HEAP)}",
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


def launch(
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
    home = home_dir(name)
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

    with ports_locked():
        if port is None:
            port = pick_port(name)
        elif not port_free(port):
            if previous is not None:
                raise TestbedError(f"port {port} on {HOST} of instance {name} is taken by another "
                                   "process; it cannot restart there")
            raise TestbedError(f"port {port} on {HOST} is already in use; choose another with "
                               "--port")
        # reserves the port (before the JVM binds it) against starts of other instances here
        write_meta(name, line.name, port)

    if previous is None:
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        if tls:
            from .tls import make_certificates

            ca_cert, bolt_tls_dir = make_certificates(base / "tls")
    conf = base / "neo4j.conf"
    settings = neo4j_settings(line, port, bolt_tls_dir)
    conf.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
    argfile = base / "jvm.args"
    argfile.write_text("".join(f"{_argfile_quote(a)}\n" for a in jvm_args(classpath, launcher)))

    log_path = base / "server.log"
    if previous is not None and log_path.exists():
        log_path.replace(base / "server.previous.log")  # the crashed run's log
    cmd = [java, pid_marker(name), f"@{argfile}", artifacts.LAUNCHER_CLASS,
           str(home), str(conf)]
    env = dict(os.environ, NEO4J_TESTBED_PASSWORD=password)
    env.pop("NEO4J_TESTBED_RESTART", None)
    if previous is not None:
        env["NEO4J_TESTBED_RESTART"] = "1"
    scheme = "bolt+s" if tls else "bolt"
    java_text = (line.java.describe() if artifacts.java_override(line) is None
                 else f"Java {artifacts.java_major_version(java)} ({java})")
    label = label_of(line, name)
    verb = "restarting" if previous is not None else "starting"
    progress(f"{verb} {label} on {HOST}:{port} with {java_text}"
             f"{' and Bolt TLS' if tls else ''}{' on its kept data' if previous else ''}; "
             f"log: {log_path}")
    t0 = time.monotonic()
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            cwd=base, env=env, start_new_session=True, close_fds=True,
        )
    # Reaped by a thread of its own, so that no zombie is left and no registry is kept.
    threading.Thread(target=proc.wait, name=f"reap-{name}", daemon=True).start()
    server = Server(
        line=line.name, version=line.version, port=port, uri=f"{scheme}://{HOST}:{port}",
        username=USERNAME, password=password, pid=proc.pid, log_path=log_path,
        debug_log_path=home / "logs" / "debug.log", data_dir=home, java=java, tls=tls,
        ca_cert=ca_cert, started_at=time.time(), auto_stop=auto_stop, name=name,
        restarts=restarts, started=True,
    )
    write_state(server)

    def cleanup() -> None:
        if previous is None:
            stop_locked(name)
        else:  # keep data and state: the restart can be tried again
            end_processes(name, grace=STOP_GRACE)

    def fail(message: str) -> TestbedError:
        cleanup()
        return TestbedError(message, log_path=log_path, log_tail=log_tail(log_path))

    try:
        _wait_until_ready(server, proc, label, t0, timeout, fail, restart=previous is not None)
    except KeyboardInterrupt:
        cleanup()
        raise

    elapsed = round(time.monotonic() - t0, 1)
    server = dataclasses.replace(server, startup_seconds=elapsed)
    write_state(server)
    progress(f"{label} is ready on {server.uri} in {elapsed} s (pid {proc.pid})")
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
        if not alive(proc.pid):  # exited: the reaping thread has (or soon has) its code
            raise fail(f"{label} exited during start-up with code {proc.wait(timeout=10)}")
        text = server.log_path.read_text(errors="replace")
        if FAILED_MARKER in text:
            raise fail(f"{label} failed to start")
        if READY_MARKER in text:
            last_error = login_error(server)
            if last_error is None:
                break
            if restart and is_rejection(last_error):
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
