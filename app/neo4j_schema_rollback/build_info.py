"""Version details shown by --version.

The constants below are the defaults of a source checkout. The binary build
(build/spec/neo4j-schema-rollback.spec) bundles a generated copy of this file with each of them
filled in, so the frozen binary never needs package metadata; keep each on one line of the form
`NAME = value` (or `NAME: type = value`).

Only `sys` is imported: --version is the fastest path of the tool (`platform` alone would pull
in re, enum and collections, ~20 ms in the one-file binary).
"""

from __future__ import annotations

import sys

COMMIT = "unknown"
BUILD_DATE = "unknown"
DRIVER_VERSION: str | None = None  # set by the build; read from metadata otherwise

_RELEASE_LEVELS = {"alpha": "a", "beta": "b", "candidate": "rc"}


def _driver_version() -> str:
    if DRIVER_VERSION is not None:
        return DRIVER_VERSION
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("neo4j")
    except PackageNotFoundError:
        return "unknown"


def python_version() -> str:
    """The interpreter version as platform.python_version() spells it: 3.11.7, 3.14.0rc1."""
    info = sys.version_info
    text = f"{info.major}.{info.minor}.{info.micro}"
    if info.releaselevel != "final":
        text += f"{_RELEASE_LEVELS.get(info.releaselevel, info.releaselevel)}{info.serial}"
    return text


def version_text() -> str:
    """What --version prints: one line per fact: tool, commit, build date, Python, driver."""
    from . import PROG, __version__

    return "\n".join([
        f"{PROG} {__version__}",
        f"commit: {COMMIT}",
        f"built: {BUILD_DATE}",
        f"python: {python_version()} ({sys.platform})",
        f"neo4j driver: {_driver_version()}",
    ])
