"""Where the test bed keeps its files (all under ``<repo>/.testbed``, which git ignores)."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
LAUNCHER_SOURCE = Path(__file__).resolve().parent / "java" / "TestbedServer.java"


def testbed_dir() -> Path:
    """``$NEO4J_TESTBED_DIR`` or ``<repo>/.testbed``."""
    env = os.environ.get("NEO4J_TESTBED_DIR")
    return Path(env).resolve() if env else REPO_ROOT / ".testbed"


def cache_dir() -> Path:
    """Downloads and compiled launcher: ``$NEO4J_TESTBED_CACHE`` or ``<testbed dir>/cache``."""
    env = os.environ.get("NEO4J_TESTBED_CACHE")
    return Path(env).resolve() if env else testbed_dir() / "cache"


def instance_dir(name: str) -> Path:
    """Everything of one server instance (state, configuration, data, logs)."""
    return testbed_dir() / name


def line_dir(line: str) -> Path:
    """The directory of a line's default instance (named like the line)."""
    return instance_dir(line)
