"""Real Neo4j servers for the integration tests, one per line and pytest session.

``neo4j_server`` is parametrised over the lines (marks ``neo4j_4_4``/``neo4j_5``/``neo4j_calver``,
ids ``neo4j-4.4``/``neo4j-5``/``neo4j-calver``). pytest groups the tests by the parameter of a
session-scoped fixture, so each server starts once; a server that was already running (e.g. from
``scripts/neo4j-testbed start``) is reused and left running, one this session started is stopped
when pytest tears the parameter down (unless another pytest session still holds a lease on it:
then the last one out stops it). A server that cannot start makes the tests ERROR: they are
never skipped.

Two more instances per line, with the same parameters, marks and ids, run beside ``neo4j_server``
(each with its own data and port; same lifetime rules):

* ``neo4j_tls_server``: instance ``<line>-tls``, Bolt TLS required (``bolt+s://``, ``ca_cert``);
* ``fault_server``: instance ``<line>-fault`` that tests may kill and restart (a
  ``testbed.Instance``; leased exclusively: while another session uses it, a throw-away
  ``<line>-fault-<pid>`` is started instead); use ``clean_fault_server``, which brings it back up
  if a previous test left it killed and empties it, before each test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import neo4j
import pytest
from tool import Tool, binary_tool, module_tool

import testbed
from testbed.db import reset_database

LINE_PARAMS = [pytest.param(name, marks=getattr(pytest.mark, line.marker), id=f"neo4j-{name}")
               for name, line in testbed.LINES.items()]


@pytest.fixture(scope="session", params=LINE_PARAMS)
def neo4j_server(request: pytest.FixtureRequest) -> Iterator[testbed.Server]:
    """A running server of the line (a ``testbed.Server``: uri, username, password, version...)."""
    line: str = request.param
    external = external_server(line)
    if external is not None:
        yield external
        return
    # raises TestbedError (with the server log's tail): the tests then ERROR, never skip
    server = testbed.acquire(line)
    try:
        yield server
    finally:
        # stops the server only if a pytest session started it and no other session uses it
        testbed.release(line)


@pytest.fixture(scope="session")
def neo4j_driver(neo4j_server: testbed.Server) -> Iterator[neo4j.Driver]:
    """A driver logged in to ``neo4j_server``, shared by the tests of that line."""
    with neo4j_server.driver() as driver:
        driver.verify_connectivity()
        yield driver


@pytest.fixture
def clean_neo4j(neo4j_server: testbed.Server, neo4j_driver: neo4j.Driver) -> testbed.Server:
    """``neo4j_server`` with no constraints, no indexes but the LOOKUP ones, and no nodes."""
    reset_database(neo4j_driver)
    return neo4j_server


@pytest.fixture(scope="session", params=LINE_PARAMS)
def neo4j_tls_server(request: pytest.FixtureRequest) -> Iterator[testbed.Server]:
    """A server of the line that requires Bolt TLS: the instance ``<line>-tls`` (a
    ``testbed.Server``: uri ``bolt+s://127.0.0.1:P``, ``ca_cert`` the test-bed CA that signed its
    certificate; ``server.driver()`` trusts it)."""
    line: str = request.param
    name = f"{line}-tls"
    server = testbed.acquire(line, tls=True, name=name)
    try:
        yield server
    finally:
        testbed.release(name)


@pytest.fixture(scope="session", params=LINE_PARAMS)
def fault_server(request: pytest.FixtureRequest) -> Iterator[testbed.Instance]:
    """The instance ``<line>-fault`` for crash tests, shared by the session (a
    ``testbed.Instance``: ``kill()`` = SIGKILL keeping data, port and password; ``restart()``;
    uri, auth, password, port, pid and ``driver()`` of its current server). Tests should ask for
    ``clean_fault_server``, which makes sure it runs and is empty."""
    line: str = request.param
    name = f"{line}-fault"
    try:
        testbed.acquire(line, name=name, exclusive=True)
        throwaway = False
    except testbed.InstanceBusy:
        # another pytest session kills and restarts <line>-fault: use an instance of our own
        name, throwaway = f"{line}-fault-{os.getpid()}", True
        testbed.acquire(line, name=name, exclusive=True)
    try:
        yield testbed.Instance(name)
    finally:
        if throwaway:
            testbed.remove(name)
        else:
            # stops it (a killed one too: its state is dropped) unless it ran before the session
            testbed.release(name)


@pytest.fixture
def clean_fault_server(fault_server: testbed.Instance) -> testbed.Instance:
    """``fault_server``, running (restarted on its kept data if a previous test killed it) and
    clean: no constraints, no indexes but the LOOKUP ones, no nodes."""
    fault_server.ensure_running()
    with fault_server.driver() as driver:
        reset_database(driver)
    return fault_server


@pytest.fixture(scope="session", params=["module", "binary"])
def tool(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Tool:
    """How the scenarios start the tool: `python -m`, or the frozen binary with no Python on
    PATH and no PYTHON* variables. Every end-to-end scenario runs with both."""
    if request.param == "module":
        return module_tool()
    return binary_tool(tmp_path_factory.mktemp("binary"))


def external_server(line: str) -> testbed.Server | None:
    """The server named by NEO4J_TEST_URI/USERNAME/PASSWORD (a CI service container) when
    NEO4J_TEST_LINE is this line; None otherwise, and the test bed starts one."""
    if not os.environ.get("NEO4J_TEST_URI") or os.environ.get("NEO4J_TEST_LINE") != line:
        return None
    uri = os.environ["NEO4J_TEST_URI"]
    username = os.environ.get("NEO4J_TEST_USERNAME", "neo4j")
    password = os.environ["NEO4J_TEST_PASSWORD"]
    with neo4j.GraphDatabase.driver(uri, auth=(username, password)) as driver:
        records, _, _ = driver.execute_query(
            "CALL dbms.components() YIELD name, versions WHERE name = 'Neo4j Kernel' "
            "RETURN versions[0] AS version")
    return testbed.Server.external(line=line, uri=uri, username=username, password=password,
                                   version=str(records[0]["version"]))
