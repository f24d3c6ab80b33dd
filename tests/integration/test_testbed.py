"""The test bed itself: each line really is the pinned Neo4j, cleaning works, the CLI evals."""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
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


def test_password_is_random_and_url_safe(neo4j_server: testbed.Server) -> None:
    assert len(neo4j_server.password) >= 16
    assert all(c.isalnum() or c in "-_" for c in neo4j_server.password)


def test_status_lists_the_running_line(neo4j_server: testbed.Server) -> None:
    [st] = [s for s in testbed.status() if s.line == neo4j_server.line]
    assert st.running and st.pid == neo4j_server.pid and st.port == neo4j_server.port


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.neo4j_5
def test_tls_requires_encryption_and_trusts_the_private_ca(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``start(..., tls=True)``: Bolt refuses plain text and serves a certificate of the
    test-bed CA for 127.0.0.1 (a separate test-bed directory, so the line's shared server is
    left alone)."""
    monkeypatch.setenv("NEO4J_TESTBED_CACHE", str(testbed.paths.cache_dir()))
    monkeypatch.setenv("NEO4J_TESTBED_DIR", str(tmp_path))
    server = testbed.start("5", _free_port(), tls=True)
    try:
        assert server.uri.startswith("bolt+s://127.0.0.1:")
        assert server.ca_cert is not None and server.ca_cert.is_file()
        assert server.env()["NEO4J_CA_CERT"] == str(server.ca_cert)
        with server.driver() as d:
            assert d.verify_authentication()
        plain = f"bolt://127.0.0.1:{server.port}"
        with (
            neo4j.GraphDatabase.driver(plain, auth=server.auth, connection_timeout=5) as d,
            pytest.raises(neo4j.exceptions.ServiceUnavailable),
        ):
            d.verify_connectivity()
    finally:
        testbed.stop("5")
    assert testbed.running("5") is None
