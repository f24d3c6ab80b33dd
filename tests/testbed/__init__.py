"""A test bed of REAL Neo4j servers (4.4, 5.26 LTS, calendar-versioned), built only from Maven
Central artifacts and run embedded by a tiny Java launcher on 127.0.0.1.

Library API (used by ``scripts/neo4j-testbed`` and by the pytest fixtures)::

    import testbed
    server = testbed.start("5")   # -> Server(name, line, version, uri, username, password, ...)
    testbed.stop("5")
    testbed.status()              # -> [LineStatus, ...] (one per instance)
    testbed.fetch("calver")       # download jars and Java without starting
    testbed.acquire("5") / testbed.release("5")   # pytest: start-or-reuse with a lease; the
                                  # last release stops a server that acquire started

Named instances (several servers of one line; state under ``.testbed/<name>/``)::

    tls = testbed.start("5", name="5-tls", tls=True)   # its own data dir and free port
    testbed.kill("5-tls")         # SIGKILL (a crash): data, port and password are kept
    testbed.restart("5-tls")      # same data, port, password; returns once a login works
    testbed.stop("5-tls"); testbed.stop_all(); testbed.instances()
    testbed.remove("5-x")         # stop and delete the directory of a throw-away instance
    testbed.acquire("5", name="5-fault", exclusive=True)  # InstanceBusy if another session
                                  # holds a lease on it
    testbed.Instance("5-fault")   # a handle for fault tests: kill/restart/ensure_running

Versions and Java runtimes are pinned in ``testbed.lines``.
"""

from .errors import InstanceBusy, TestbedError
from .lines import LINE_NAMES, LINES, Line, get_line
from .process import instances
from .server import (
    Instance,
    acquire,
    fetch,
    kill,
    release,
    remove,
    restart,
    running,
    start,
    status,
    stop,
    stop_all,
)
from .state import LineStatus, Server, check_name

__all__ = [
    "LINES",
    "LINE_NAMES",
    "Instance",
    "InstanceBusy",
    "Line",
    "LineStatus",
    "Server",
    "TestbedError",
    "acquire",
    "check_name",
    "fetch",
    "get_line",
    "instances",
    "kill",
    "release",
    "remove",
    "restart",
    "running",
    "start",
    "status",
    "stop",
    "stop_all",
]
