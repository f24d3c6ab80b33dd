"""Version details shown by --version. A frozen build overwrites the constants below."""

from __future__ import annotations

import platform
import sys

COMMIT = "unknown"
BUILD_DATE = "unknown"
DRIVER_VERSION: str | None = None  # set by the build; read from metadata otherwise


def _driver_version() -> str:
    if DRIVER_VERSION is not None:
        return DRIVER_VERSION
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("neo4j")
    except PackageNotFoundError:
        return "unknown"


def describe(tool_version: str) -> str:
    """One line per fact: tool, commit, build date, Python, driver."""
    return "\n".join([
        f"neo4j-schema-rollback {tool_version}",
        f"commit: {COMMIT}",
        f"built: {BUILD_DATE}",
        f"python: {platform.python_version()} ({sys.platform})",
        f"neo4j driver: {_driver_version()}",
    ])
