"""A test bed of REAL Neo4j servers (4.4, 5.26 LTS, calendar-versioned), built only from Maven
Central artifacts and run embedded by a tiny Java launcher on 127.0.0.1.

Library API (used by ``scripts/neo4j-testbed`` and by the pytest fixtures)::

    import testbed
    server = testbed.start("5")   # -> Server(line, version, uri, username, password, pid, ...)
    testbed.stop("5")
    testbed.status()              # -> [LineStatus, ...]
    testbed.fetch("calver")       # download jars and Java without starting
    testbed.acquire("5") / testbed.release("5")   # pytest: start-or-reuse with a lease; the
                                  # last release stops a server that acquire started

Versions and Java runtimes are pinned in ``testbed.lines``.
"""

from .errors import TestbedError
from .lines import LINE_NAMES, LINES, Line, get_line
from .server import (
    LineStatus,
    Server,
    acquire,
    fetch,
    release,
    running,
    start,
    status,
    stop,
)

__all__ = [
    "LINES",
    "LINE_NAMES",
    "Line",
    "LineStatus",
    "Server",
    "TestbedError",
    "acquire",
    "fetch",
    "get_line",
    "release",
    "running",
    "start",
    "status",
    "stop",
]
