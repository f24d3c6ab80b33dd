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
OPENSSL_VERSION: str | None = None  # set by the build: ssl.OPENSSL_VERSION of what it bundles
PYTHON_SOURCE: str | None = None  # set by the portable build: the Debian source of its CPython

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
    """What --version prints, one line per fact: tool, commit, build date, Python, driver, and
    (binary) OpenSSL."""
    from . import PROG, __version__

    python = f"{python_version()} ({sys.platform})"
    if PYTHON_SOURCE:
        python = f"{python_version()} ({sys.platform}; {PYTHON_SOURCE})"
    lines = [
        f"{PROG} {__version__}",
        f"commit: {COMMIT}",
        f"built: {BUILD_DATE}",
        f"python: {python}",
        f"neo4j driver: {_driver_version()}",
    ]
    if OPENSSL_VERSION:  # recorded at build time: --version must not import ssl
        lines.append(f"openssl: {OPENSSL_VERSION}")
    return "\n".join(lines)
