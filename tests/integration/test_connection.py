"""Connection settings and failures against real servers: every failure explains itself."""

from __future__ import annotations

import itertools
import json
import re
import signal
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from db import env_for
from netutil import Forwarder, free_port, hang_up_listener, silent_listener
from tool import Tool, finish, system_tool

PROG = "neo4j-schema-rollback: error: "
NO_WAIT_HINT = " — is Neo4j running and reachable? --wait retries while it starts"


def only_password(server: Any) -> tuple[str, ...]:
    return (server.password,)


def server_codes(server: Any, error: dict[str, Any]) -> dict[str, Any]:
    """The server's codes an error event carries; GQLSTATUS from 5.26 on (Bolt 5.7), never
    on 4.4."""
    fields = {k: error[k] for k in ("code", "gql_status", "gql_status_description")
              if k in error}
    if server.line == "4.4":
        assert set(fields) == {"code"}, fields
    else:
        assert fields["gql_status"] and fields["gql_status_description"], fields
    return fields


def test_settings_from_flags(tool: Tool, neo4j_server: Any, tmp_path: Path) -> None:
    """--uri, --username and --password-file connect without any environment."""
    pw = tmp_path / "pw"
    pw.write_text(neo4j_server.password + "\n")
    r = tool.run("status", "--uri", neo4j_server.uri, "-u", neo4j_server.username,
                 "--password-file", str(pw), secrets=only_password(neo4j_server))
    assert r.code == 0, r.stderr
    assert r.of("run.start")[0]["target"] == neo4j_server.uri


def test_password_flag_works_with_a_warning(tool: Tool, neo4j_server: Any) -> None:
    """--password connects and logs a warning about the process list."""
    r = tool.run("status", "--uri", neo4j_server.uri, "--password", neo4j_server.password)
    assert r.code == 0
    assert "process list" in r.of("warning")[0]["message"]


def test_neo4j_auth_env(tool: Tool, neo4j_server: Any) -> None:
    """NEO4J_AUTH=user/password, as the Docker image takes it, logs in."""
    r = tool.run("status", env={"NEO4J_URI": neo4j_server.uri,
                                "NEO4J_AUTH": f"neo4j/{neo4j_server.password}"},
                 secrets=only_password(neo4j_server))
    assert r.code == 0


def test_neo4j_password_file_env(tool: Tool, neo4j_server: Any, tmp_path: Path) -> None:
    """NEO4J_PASSWORD_FILE, the container-secret convention, logs in."""
    pw = tmp_path / "secret"
    pw.write_text(neo4j_server.password)
    r = tool.run("status", env={"NEO4J_URI": neo4j_server.uri,
                                "NEO4J_PASSWORD_FILE": str(pw)},
                 secrets=only_password(neo4j_server))
    assert r.code == 0


def test_credentials_in_uri_are_used_and_never_logged(tool: Tool, neo4j_server: Any) -> None:
    """user:password@ inside the URI logs in, and neither appears in any output."""
    host = neo4j_server.uri.split("://")[1]
    encoded = quote(neo4j_server.password, safe="")
    uri = f"bolt://neo4j:{encoded}@{host}"
    r = tool.run("status", "--uri", uri, secrets=(neo4j_server.password, encoded))
    assert r.code == 0
    assert r.of("run.start")[0]["target"] == neo4j_server.uri


def test_neo4j_scheme_against_a_single_server(tool: Tool, neo4j_server: Any) -> None:
    """neo4j:// (routing) works against a single server."""
    uri = neo4j_server.uri.replace("bolt://", "neo4j://")
    r = tool.run("status", env={**env_for(neo4j_server), "NEO4J_URI": uri},
                 secrets=only_password(neo4j_server))
    assert r.code == 0, r.stdout


def test_wrong_password_exits_3_after_one_attempt(tool: Tool, neo4j_server: Any) -> None:
    """A failed login is never retried, even with --wait."""
    started = time.monotonic()
    r = tool.run("status", "--wait", "60", env={**env_for(neo4j_server),
                                                "NEO4J_PASSWORD": "wrong-password-1"},
                 secrets=("wrong-password-1",))
    assert r.code == 3
    assert r.of("wait") == []
    assert time.monotonic() - started < 30
    [error] = r.of("error")
    message = (f"authentication failed for user neo4j at {neo4j_server.uri} "
               "— check NEO4J_PASSWORD (or NEO4J_USERNAME)")
    assert error["message"] == message
    assert r.stderr == PROG + message + "\n"
    assert error["error_class"] == "auth"
    assert server_codes(neo4j_server, error)["code"] in (
        "Neo.ClientError.Security.Unauthorized", "Neo.ClientError.Security.AuthenticationRateLimit")
    assert "Neo.ClientError.Security." in error["driver_message"]
    assert r.end["outcome"] == "connection_error"


def test_unknown_database_exits_3(tool: Tool, neo4j_server: Any) -> None:
    """A database that does not exist is a connection error naming it."""
    r = tool.run("status", "-d", "nosuchdb", env=env_for(neo4j_server),
                 secrets=only_password(neo4j_server))
    assert r.code == 3
    [error] = r.of("error")
    message = (f"database 'nosuchdb' not found at {neo4j_server.uri} "
               "— check NEO4J_DATABASE or --database")
    assert (error["message"], r.stderr) == (message, PROG + message + "\n")
    assert error["error_class"] == "database_not_found"
    assert server_codes(neo4j_server, error)["code"] == "Neo.ClientError.Database.DatabaseNotFound"
    [failed] = r.statements
    assert (failed["outcome"], failed["error_class"]) == ("failed", "database_not_found")
    assert failed["error"]["code"] == "Neo.ClientError.Database.DatabaseNotFound"
    assert (failed["error"]["gql_status"] is None) == (neo4j_server.line == "4.4")


def test_missing_password_when_not_interactive_exits_2(tool: Tool, neo4j_server: Any) -> None:
    """No password and no terminal: exit 2 with a hint, nothing sent."""
    r = tool.run("status", "--uri", neo4j_server.uri)
    assert r.code == 2
    assert r.statements == []
    assert "NEO4J_PASSWORD" in r.of("error")[0]["message"]


def test_conflicting_password_sources_exit_2(tool: Tool, neo4j_server: Any,
                                             tmp_path: Path) -> None:
    """NEO4J_PASSWORD together with NEO4J_PASSWORD_FILE is a usage error."""
    pw = tmp_path / "pw"
    pw.write_text(neo4j_server.password)
    r = tool.run("status", env={**env_for(neo4j_server), "NEO4J_PASSWORD_FILE": str(pw)},
                 secrets=only_password(neo4j_server))
    assert r.code == 2
    assert "given twice" in r.of("error")[0]["message"]


@pytest.mark.parametrize(("uri", "message"), [
    ("http://127.0.0.1:7687", "unknown scheme"),
    ("bolt://", "no host"),
    ("bolt://127.0.0.1:99999", "invalid URI"),
])
def test_bad_uris_exit_2(tool: Tool, uri: str, message: str) -> None:
    """Bad URIs are usage errors with one line of explanation."""
    r = tool.run("status", "--uri", uri, env={"NEO4J_PASSWORD": "pw-not-used"},
                 secrets=("pw-not-used",))
    assert r.code == 2
    assert message in r.of("error")[0]["message"]
    assert r.of("error")[0]["error_class"] == "usage"
    assert r.stderr.count("\n") == 1


@pytest.mark.parametrize("scheme", ["bolt", "neo4j"])
def test_unreachable_port_without_wait_exits_3_at_once(tool: Tool, scheme: str) -> None:
    """A closed port fails in one attempt: one plain line naming the address, the URI and the
    cause, with a hint about --wait (through neo4j:// routing too); the driver's own text is in
    the error event."""
    port = free_port()
    uri = f"{scheme}://127.0.0.1:{port}"
    r = tool.run("status", "--uri", uri, env={"NEO4J_PASSWORD": "pw-not-used"})
    assert r.code == 3
    assert r.of("wait") == []
    [error] = r.of("error")
    message = f"cannot connect to 127.0.0.1:{port} ({uri}): connection refused" + NO_WAIT_HINT
    assert (error["message"], r.stderr) == (message, PROG + message + "\n")
    assert error["error_class"] == "unreachable"
    assert "code" not in error and "gql_status" not in error
    assert "Connection refused" in error["driver_message"]


def test_unreachable_port_with_wait_probes_until_the_deadline(tool: Tool) -> None:
    """With --wait 3 and a closed port: one Bolt attempt and its wait event, TCP probes at most
    every 50 ms until the deadline, one last attempt, exit 3 saying how long and how often."""
    started = time.monotonic()
    r = tool.run("status", "--wait", "3", "--uri", f"bolt://127.0.0.1:{free_port()}",
                 env={"NEO4J_PASSWORD": "pw-not-used"})
    elapsed = time.monotonic() - started
    assert r.code == 3
    [wait] = r.of("wait")
    assert (wait["attempt"], wait["probes"], wait["error"]) == (1, 0, "connection refused")
    assert 3 <= elapsed < 20
    [error] = r.of("error")
    message = error["message"]
    address = re.escape(f"127.0.0.1:{r.of('run.start')[0]['target'].rsplit(':', 1)[1]}")
    match = re.fullmatch(rf"cannot connect to {address} \(bolt://{address}\): connection refused "
                         r"— gave up after (\d+\.\d) s: 2 attempts, (\d+) TCP probes", message)
    assert match, message
    assert r.stderr == PROG + message + "\n"
    assert error["error_class"] == "unreachable"
    assert 3.0 <= float(match[1]) < 4.0
    assert 1 <= int(match[2]) <= 3 / 0.05 + 1


def test_open_port_without_bolt_gets_one_attempt_per_250_ms(tool: Tool) -> None:
    """A port that accepts and hangs up (a server still starting): attempts at least 250 ms
    apart, each after one probe, one wait event each."""
    with hang_up_listener() as (port, bolt, bare):
        r = tool.run("status", "--wait", "2", "--uri", f"bolt://127.0.0.1:{port}",
                     env={"NEO4J_PASSWORD": "pw-not-used"})
        attempts, probes = list(bolt), list(bare)
    assert r.code == 3
    waits = r.of("wait")
    assert [w["attempt"] for w in waits] == list(range(1, len(waits) + 1))
    assert len(attempts) == len(waits) + 1  # and the last attempt, at the deadline
    assert 2 <= len(attempts) <= 2 / 0.25 + 1
    # Arrival times: each attempt's connect comes a few ms after its start.
    assert all(b - a >= 0.2 for a, b in itertools.pairwise(attempts))
    assert [w["probes"] for w in waits] == [0] + [1] * (len(waits) - 1)
    assert len(probes) == len(waits)


def test_first_attempt_goes_without_a_probe(tool: Tool) -> None:
    """A run makes its first Bolt attempt at once: no TCP probe before it, with or without
    --wait (the no-wait run here, against a port that hangs up: one attempt, exit 3)."""
    with hang_up_listener() as (port, bolt, bare):
        r = tool.run("status", "--uri", f"bolt://127.0.0.1:{port}",
                     env={"NEO4J_PASSWORD": "pw-not-used"})
        attempts, probes = list(bolt), list(bare)
    assert r.code == 3
    assert (len(attempts), len(probes), r.of("wait")) == (1, 0, [])


def test_server_that_comes_up_during_wait(tool: Tool, neo4j_server: Any) -> None:
    """The port opens while the tool waits: it connects, and its server event says how long it
    waited, with how many attempts and probes."""
    forwarder = Forwarder(neo4j_server.port)  # opened only once the tool is waiting
    args = ("status", "--wait", "60", "--uri", forwarder.uri)
    proc = tool.spawn(*args, env={"NEO4J_PASSWORD": neo4j_server.password})
    seen: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line)
            if json.loads(line)["event"] == "wait":
                forwarder.open()
                break
        r = finish(proc, seen, args, secrets=only_password(neo4j_server))
    finally:
        forwarder.close()
    assert r.code == 0, r.stdout + r.stderr
    assert len(r.of("wait")) == 1
    [server] = r.of("server")
    assert server["attempts"] == 2 and server["probes"] >= 1
    assert server["waited_ms"] >= 0
    assert len(r.of("object")) == 5


def test_host_name_that_resolves_late(tool: Tool, neo4j_server: Any, tmp_path: Path) -> None:
    """A name that does not resolve yet (a Kubernetes service created late) stays waitable and
    is resolved again on every probe: the run connects once /etc/hosts names it. The tool runs
    in a private mount namespace with a hosts file of the test's own over /etc/hosts."""
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n")
    name = "nsr-late-service"
    late = Tool(tool.name, [system_tool("unshare"), "--mount", "--propagation", "private",
                            "/bin/sh", "-c", '"$0" --bind "$1" /etc/hosts && shift && exec "$@"',
                            system_tool("mount"), str(hosts), *tool.command], env=tool.base_env)
    args = ("status", "--wait", "60", "--uri", f"bolt://{name}:{neo4j_server.port}")
    proc = late.spawn(*args, env={"NEO4J_PASSWORD": neo4j_server.password})
    seen: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        seen.append(line)
        if json.loads(line)["event"] == "wait":
            hosts.write_text(f"127.0.0.1 localhost\n127.0.0.1 {name}\n")  # the same inode
            break
    r = finish(proc, seen, args, secrets=only_password(neo4j_server))
    assert r.code == 0, r.stdout + r.stderr
    [wait] = r.of("wait")
    assert (wait["error"], wait["target"]) == ("the host name does not resolve",
                                               f"bolt://{name}:{neo4j_server.port}")
    assert r.of("server")[0]["attempts"] == 2
    assert len(r.of("object")) == 5


def test_silent_listener_with_timeout_exits_3(tool: Tool) -> None:
    """A server that accepts TCP and never answers ends in exit 3 within about --timeout."""
    with silent_listener() as port:
        started = time.monotonic()
        r = tool.run("status", "--timeout", "2", "--uri", f"bolt://127.0.0.1:{port}",
                     env={"NEO4J_PASSWORD": "pw-not-used"})
        elapsed = time.monotonic() - started
    assert r.code == 3
    assert elapsed < 10
    [error] = r.of("error")
    message = (f"cannot connect to 127.0.0.1:{port} (bolt://127.0.0.1:{port}): no answer to the "
               "Bolt handshake within 2 s (--timeout)" + NO_WAIT_HINT)
    assert (error["message"], r.stderr) == (message, PROG + message + "\n")
    assert error["error_class"] == "timeout"
    assert "handshake" in error["driver_message"]


def test_host_name_that_does_not_resolve_exits_3(tool: Tool) -> None:
    """A name no resolver knows: one plain line, class unreachable."""
    uri = "bolt://nsr-no-such-host.invalid:7687"
    r = tool.run("status", "--uri", uri, env={"NEO4J_PASSWORD": "pw-not-used"})
    assert r.code == 3
    [error] = r.of("error")
    message = (f"cannot connect to nsr-no-such-host.invalid:7687 ({uri}): the host name does not "
               "resolve" + NO_WAIT_HINT)
    assert (error["message"], r.stderr) == (message, PROG + message + "\n")
    assert error["error_class"] == "unreachable"
    assert "nsr-no-such-host.invalid" in error["driver_message"]


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_while_waiting_exits_with_its_code(tool: Tool, signum: int, code: int) -> None:
    """SIGINT/SIGTERM during --wait end the run with 130/143, an error event and run.end."""
    args = ("status", "--wait", "60", "--uri", f"bolt://127.0.0.1:{free_port()}")
    proc = tool.spawn(*args, env={"NEO4J_PASSWORD": "pw-not-used"})
    seen: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        seen.append(line)
        if json.loads(line)["event"] == "wait":
            proc.send_signal(signum)
            break
    r = finish(proc, seen, args)
    assert r.code == code
    assert r.of("error")[0]["message"] == f"interrupted by {signal.Signals(signum).name}"
    assert r.of("error")[0]["error_class"] == "interrupted"
    assert (r.end["outcome"], r.end["exit_code"]) == ("interrupted", code)
