"""The test bed itself: each line really is the pinned Neo4j, cleaning works, the CLI evals;
named instances run beside the default ones, kill keeps the data and restart brings it back,
the TLS instances need the private CA, stop --all ends every instance."""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import neo4j
import pytest

import testbed
import testbed.paths
from testbed.db import reset_database

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "neo4j-testbed"


def test_server_is_the_pinned_version(neo4j_server: testbed.Server) -> None:
    line = testbed.LINES[neo4j_server.line]
    with neo4j.GraphDatabase.driver(neo4j_server.uri, auth=neo4j_server.auth) as driver:
        records, _, _ = driver.execute_query(
            "CALL dbms.components() YIELD name, versions, edition"
        )
    kernel = [r for r in records if r["name"] == "Neo4j Kernel"]
    assert len(kernel) == 1
    assert kernel[0]["edition"] == "community"
    version = kernel[0]["versions"][0]
    assert version.startswith(line.version_prefix)
    assert version == line.version == neo4j_server.version


def test_auth_is_enabled(neo4j_server: testbed.Server) -> None:
    with neo4j.GraphDatabase.driver(neo4j_server.uri, auth=neo4j_server.auth) as d:
        assert d.verify_authentication() is True
    with neo4j.GraphDatabase.driver(neo4j_server.uri, auth=("neo4j", "wrong-password")) as d:
        assert d.verify_authentication() is False


def _schema(driver: neo4j.Driver) -> tuple[list[str], list[tuple[str, str]]]:
    constraints, _, _ = driver.execute_query("SHOW CONSTRAINTS YIELD name RETURN name")
    indexes, _, _ = driver.execute_query("SHOW INDEXES YIELD name, type RETURN name, type")
    return [r["name"] for r in constraints], [(r["name"], r["type"]) for r in indexes]


def test_clean_neo4j_leaves_only_lookup_indexes(
    clean_neo4j: testbed.Server, neo4j_driver: neo4j.Driver
) -> None:
    neo4j_driver.execute_query(
        "CREATE CONSTRAINT tb_user_pk IF NOT EXISTS FOR (u:TbUser) REQUIRE u.id IS UNIQUE"
    )
    neo4j_driver.execute_query(
        "CREATE INDEX tb_user_email IF NOT EXISTS FOR (u:TbUser) ON (u.email)"
    )
    neo4j_driver.execute_query("CREATE (:TbUser {id: 1, email: 'a@example.org'})")
    constraints, indexes = _schema(neo4j_driver)
    assert "tb_user_pk" in constraints
    assert {"tb_user_pk", "tb_user_email"} <= {name for name, _ in indexes}

    reset_database(neo4j_driver)  # what clean_neo4j does before each test

    constraints, indexes = _schema(neo4j_driver)
    assert constraints == []
    assert {kind for _, kind in indexes} == {"LOOKUP"}
    assert len(indexes) == 2
    records, _, _ = neo4j_driver.execute_query("MATCH (n) RETURN count(n) AS n")
    assert records[0]["n"] == 0


def test_clean_neo4j_starts_clean(clean_neo4j: testbed.Server, neo4j_driver: neo4j.Driver) -> None:
    constraints, indexes = _schema(neo4j_driver)
    assert constraints == []
    assert {kind for _, kind in indexes} == {"LOOKUP"}


def _cli_start(line: str) -> tuple[list[str], dict[str, str]]:
    res = subprocess.run(
        [str(SCRIPT), "start", "--line", line], capture_output=True, text=True, cwd="/",
        timeout=300, check=False,
    )
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    # what the shell gets from eval "$(scripts/neo4j-testbed start --line L)"
    shell = subprocess.run(
        ["bash", "-c", 'eval "$1"; printf "%s\\0" "$NEO4J_URI" "$NEO4J_USERNAME" '
                       '"$NEO4J_PASSWORD"', "bash", res.stdout],
        capture_output=True, text=True, check=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("NEO4J_")},
    )
    uri, user, password = shell.stdout.split("\0")[:3]
    return lines, {"NEO4J_URI": uri, "NEO4J_USERNAME": user, "NEO4J_PASSWORD": password}


def test_cli_start_prints_export_lines_that_eval(neo4j_server: testbed.Server) -> None:
    lines, env = _cli_start(neo4j_server.line)
    assert lines == [
        f"export NEO4J_URI={neo4j_server.uri}",
        "export NEO4J_USERNAME=neo4j",
        f"export NEO4J_PASSWORD={shlex.quote(neo4j_server.password)}",
    ]
    assert env == {
        "NEO4J_URI": neo4j_server.uri,
        "NEO4J_USERNAME": "neo4j",
        "NEO4J_PASSWORD": neo4j_server.password,
    }
    with neo4j.GraphDatabase.driver(env["NEO4J_URI"],
                                    auth=(env["NEO4J_USERNAME"], env["NEO4J_PASSWORD"])) as d:
        assert d.verify_authentication()
    again, _ = _cli_start(neo4j_server.line)
    assert again == lines
    assert testbed.running(neo4j_server.line) is not None
    assert testbed.running(neo4j_server.line).pid == neo4j_server.pid  # type: ignore[union-attr]


def test_password_is_random_and_awkward(neo4j_server: testbed.Server) -> None:
    """The generated password carries unicode, quotes, a space, $ and % around 16 random
    characters, so every scenario also proves the tool handles such a password."""
    password = neo4j_server.password
    assert len(password) >= 24
    assert {"ü", "'", '"', " ", "$", "%"} <= set(password)


def test_status_lists_the_running_line(neo4j_server: testbed.Server) -> None:
    [st] = [s for s in testbed.status() if s.name == neo4j_server.name]
    assert st.running and st.pid == neo4j_server.pid and st.port == neo4j_server.port


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _gone(pid: int) -> bool:
    """No such process, or only its zombie (dead, not yet reaped by its parent)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X")


def _server_pids(name: str) -> list[int]:
    """Live processes whose command line carries the instance's marker."""
    marker = f"-Dneo4j.testbed.home={testbed.paths.instance_dir(name) / 'data'}"
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            except OSError:
                continue
            if marker in cmd and not _gone(int(entry.name)):
                pids.append(int(entry.name))
    return pids


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, cwd="/",
                          timeout=300, check=False, env=env)


SAME_LINE = [pytest.param(name, name, marks=getattr(pytest.mark, line.marker), id=f"neo4j-{name}")
             for name, line in testbed.LINES.items()]
"""``neo4j_server`` and ``fault_server`` on the same line (the order and ids of their params)."""


@pytest.mark.parametrize(("neo4j_server", "fault_server"), SAME_LINE, indirect=True)
def test_named_instance_runs_beside_the_default_one(
    neo4j_server: testbed.Server, fault_server: testbed.Instance
) -> None:
    named = fault_server.server
    assert neo4j_server.name == neo4j_server.line == named.line
    assert named.name == fault_server.name != neo4j_server.name
    assert named.name.startswith(f"{named.line}-fault")
    assert neo4j_server.port == testbed.LINES[named.line].default_port
    assert named.port != neo4j_server.port
    assert named.pid != neo4j_server.pid
    assert named.data_dir != neo4j_server.data_dir
    assert named.password != neo4j_server.password
    assert testbed.running(neo4j_server.name) is not None
    assert testbed.running(named.name) is not None
    for server in (neo4j_server, named):
        with server.driver() as d:
            assert d.verify_authentication()
            records, _, _ = d.execute_query("CALL dbms.components() YIELD name, versions "
                                            "WHERE name = 'Neo4j Kernel' RETURN versions[0] AS v")
            assert records[0]["v"] == testbed.LINES[server.line].version
    by_name = {st.name: st for st in testbed.status()}
    assert by_name[neo4j_server.name].running and by_name[named.name].running
    assert by_name[named.name].port == named.port and by_name[named.name].line == named.line


def _create_crash_data(driver: neo4j.Driver) -> None:
    driver.execute_query("CREATE INDEX tb_crash_x IF NOT EXISTS FOR (n:TbCrash) ON (n.x)")
    driver.execute_query(
        "CREATE CONSTRAINT tb_crash_pk IF NOT EXISTS FOR (n:TbCrash) REQUIRE n.id IS UNIQUE"
    )
    driver.execute_query("MERGE (n:TbCrash {id: 1}) SET n.x = 'kept'")
    driver.execute_query("CALL db.awaitIndexes(60)")


def test_kill_keeps_data_and_restart_brings_it_back(
    clean_fault_server: testbed.Instance, request: pytest.FixtureRequest
) -> None:
    name = clean_fault_server.name
    before = clean_fault_server.server
    with before.driver() as d:
        _create_crash_data(d)

    assert testbed.kill(name) is True
    assert _gone(before.pid)
    assert _server_pids(name) == []
    assert testbed.running(name) is None
    assert _port_free(before.port)
    kept = clean_fault_server.server  # the state survives the kill
    assert (kept.port, kept.password, kept.data_dir) == (before.port, before.password,
                                                         before.data_dir)
    assert kept.killed_at is not None
    assert (before.data_dir / "data").is_dir()
    [st] = [s for s in testbed.status() if s.name == name]
    assert not st.running and "killed" in st.note and st.port == before.port
    assert testbed.kill(name) is False  # nothing left to kill

    t0 = time.monotonic()
    after = testbed.restart(name)
    seconds = round(time.monotonic() - t0, 1)
    request.node.user_properties.append(("restart_seconds", seconds))
    print(f"restart of {name} took {seconds} s")
    assert after.started and after.pid != before.pid and not _gone(after.pid)
    assert (after.name, after.line, after.uri, after.port, after.password, after.data_dir) == (
        before.name, before.line, before.uri, before.port, before.password, before.data_dir)
    assert after.restarts == before.restarts + 1 and after.killed_at is None
    assert testbed.running(name) == after
    assert _server_pids(name) == [after.pid]

    # the old credentials work, and the data, the index and the constraint are back
    with neo4j.GraphDatabase.driver(before.uri, auth=before.auth) as d:
        assert d.verify_authentication()
        indexes, _, _ = d.execute_query("SHOW INDEXES YIELD name, state RETURN name, state")
        constraints, _, _ = d.execute_query("SHOW CONSTRAINTS YIELD name RETURN name")
        nodes, _, _ = d.execute_query("MATCH (n:TbCrash) RETURN n.id AS id, n.x AS x")
    assert {"tb_crash_x", "tb_crash_pk"} <= {r["name"] for r in indexes}
    assert [r["name"] for r in constraints] == ["tb_crash_pk"]
    assert [(r["id"], r["x"]) for r in nodes] == [(1, "kept")]


def test_clean_fault_server_brings_a_killed_instance_back(
    fault_server: testbed.Instance, request: pytest.FixtureRequest
) -> None:
    """The CLI's ``kill``/``status``, then what ``clean_fault_server`` does before a test."""
    server = fault_server.ensure_running()
    with server.driver() as d:
        _create_crash_data(d)
    res = _cli("kill", "--name", fault_server.name)
    assert res.returncode == 0, res.stderr
    assert _gone(server.pid) and _server_pids(fault_server.name) == []
    res = _cli("status")
    [row] = [r for r in res.stdout.splitlines() if r.split()[0] == fault_server.name]
    assert " stopped " in row and "killed" in row and f"restart --name {fault_server.name}" in row
    res = _cli("kill", "--name", fault_server.name)
    assert res.returncode == 1 and res.stderr.count("\n") == 1 and "not running" in res.stderr

    clean: testbed.Instance = request.getfixturevalue("clean_fault_server")
    current = clean.running()
    assert current is not None and current.pid != server.pid
    assert (current.port, current.password) == (server.port, server.password)
    with clean.driver() as d:
        constraints, indexes = _schema(d)
        nodes, _, _ = d.execute_query("MATCH (n) RETURN count(n) AS n")
    assert constraints == [] and {kind for _, kind in indexes} == {"LOOKUP"}
    assert nodes[0]["n"] == 0


def test_tls_instance_requires_encryption_and_trusts_the_ca(
    neo4j_tls_server: testbed.Server,
) -> None:
    server = neo4j_tls_server
    assert server.name == f"{server.line}-tls" and server.tls
    assert server.uri == f"bolt+s://127.0.0.1:{server.port}"
    assert server.port != testbed.LINES[server.line].default_port
    assert server.ca_cert is not None and server.ca_cert.is_file()
    assert server.env()["NEO4J_CA_CERT"] == str(server.ca_cert)
    with neo4j.GraphDatabase.driver(
        f"bolt://127.0.0.1:{server.port}", auth=server.auth, encrypted=True,
        trusted_certificates=neo4j.TrustCustomCAs(str(server.ca_cert)),
    ) as d:
        assert d.verify_authentication()
        records, _, _ = d.execute_query("CALL dbms.components() YIELD name, versions "
                                        "WHERE name = 'Neo4j Kernel' RETURN versions[0] AS v")
        assert records[0]["v"] == testbed.LINES[server.line].version
    # plain text is refused, and so is a certificate check against the system CAs only
    for uri, config in ((f"bolt://127.0.0.1:{server.port}", {}), (server.uri, {})):
        with (
            neo4j.GraphDatabase.driver(uri, auth=server.auth, connection_timeout=5,
                                       **config) as d,
            pytest.raises(neo4j.exceptions.ServiceUnavailable),
        ):
            d.verify_connectivity()


def _fake_server(name: str) -> subprocess.Popen[bytes]:
    """A stand-in process that carries an instance's marker (no JVM needed)."""
    marker = f"-Dneo4j.testbed.home={testbed.paths.instance_dir(name) / 'data'}"
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", marker])


def test_stop_all_stops_every_instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In a test-bed dir of its own: a default instance, a named one of the same line and one
    whose state file got lost; ``stop --all`` ends them all."""
    monkeypatch.setenv("NEO4J_TESTBED_DIR", str(tmp_path))
    procs = {name: _fake_server(name) for name in ("5", "5-b", "4.4-lost")}
    try:
        for name in ("5", "5-b"):
            (tmp_path / name).mkdir()
            (tmp_path / name / "state.json").write_text(json.dumps({
                "line": "5", "version": testbed.LINES["5"].version, "port": 1,
                "uri": "bolt://127.0.0.1:1", "username": "neo4j", "password": "x" * 24,
                "pid": procs[name].pid, "log_path": str(tmp_path / name / "server.log"),
                "debug_log_path": str(tmp_path / name / "d.log"),
                "data_dir": str(tmp_path / name / "data"), "java": "java", "name": name,
            }))
        env = dict(os.environ, NEO4J_TESTBED_DIR=str(tmp_path))
        res = _cli("status", env=env)
        rows = {r.split()[0]: r for r in res.stdout.splitlines()}
        assert {"4.4", "5", "calver", "5-b", "4.4-lost"} <= set(rows)
        assert " running " in rows["5"] and " running " in rows["5-b"]
        assert " running " in rows["4.4-lost"] and "state file missing" in rows["4.4-lost"]
        assert rows["5"].startswith("5 ") and "line=5" in rows["5-b"]

        res = _cli("stop", "--all", env=env)
        assert res.returncode == 0, res.stderr
        for name, proc in procs.items():
            assert proc.wait(timeout=10) != 0, name
            assert not (tmp_path / name / "state.json").exists()
        assert "stopped instance 5-b" in res.stderr and "stopped line 5" in res.stderr
        res = _cli("status", env=env)
        assert " running " not in res.stdout
        res = _cli("stop", "--name", "5-c", env=env)
        assert res.returncode == 1 and res.stderr == "neo4j-testbed: error: there is no " \
            "instance named 5-c\n"
    finally:
        for proc in procs.values():
            proc.kill()
            proc.wait()


def test_named_instances_get_their_own_stable_ports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Port choice without starting a server: distinct, outside the lines' default ports,
    the same again for the same name, another one when that is taken."""
    from testbed import launch, lines, state

    monkeypatch.setenv("NEO4J_TESTBED_DIR", str(tmp_path))
    defaults = {line.default_port for line in testbed.LINES.values()}
    ports = {}
    for name in ("5-a", "5-b", "calver-a"):
        (tmp_path / name).mkdir()
        ports[name] = launch.pick_port(name)
        state.write_meta(name, name.split("-")[0], ports[name])  # what a start reserves
    assert len(set(ports.values())) == 3 and not set(ports.values()) & defaults
    base = launch.NAMED_PORT_BASE + lines.port_offset()
    assert all(base <= p < base + launch.NAMED_PORT_SPAN for p in ports.values())
    assert launch.pick_port("5-a") == ports["5-a"]
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", ports["5-a"]))
        blocker.listen()
        moved = launch.pick_port("5-a")
    assert moved != ports["5-a"] and moved not in ports.values()
    with pytest.raises(testbed.TestbedError, match="belongs to the default instance"):
        testbed.start("5", name="4.4")
    with pytest.raises(testbed.TestbedError, match="invalid instance name"):
        testbed.start("5", name="../x")


def test_port_offset_moves_every_port_the_test_bed_picks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NEO4J_TESTBED_PORT_OFFSET moves the default and the named ports (two checkouts side by
    side); a value that is not a small whole number is refused in one line."""
    from testbed import launch

    monkeypatch.setenv("NEO4J_TESTBED_DIR", str(tmp_path))
    monkeypatch.setenv("NEO4J_TESTBED_PORT_OFFSET", "2000")
    assert [line.default_port for line in testbed.LINES.values()] == [19687, 19688, 19689]
    (tmp_path / "5-a").mkdir()
    assert 19700 <= launch.pick_port("5-a") < 19700 + launch.NAMED_PORT_SPAN
    for bad in ("-1", "2k", "40001"):
        monkeypatch.setenv("NEO4J_TESTBED_PORT_OFFSET", bad)
        with pytest.raises(testbed.TestbedError, match="NEO4J_TESTBED_PORT_OFFSET must be a whole"):
            _ = testbed.LINES["5"].default_port
