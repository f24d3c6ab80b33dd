"""Shared pytest configuration.

``pythonpath = ["tests"]`` (pyproject.toml) makes the test-bed package importable as ``testbed``;
the markers ``neo4j_4_4``, ``neo4j_5`` and ``neo4j_calver`` are declared in pyproject.toml, and the
real-server fixtures live in ``tests/integration/conftest.py``.
"""

from __future__ import annotations

import testbed


def pytest_report_header() -> list[str]:
    lines = ", ".join(f"{name}={line.version}" for name, line in testbed.LINES.items())
    return [f"neo4j test bed: {lines}"]
