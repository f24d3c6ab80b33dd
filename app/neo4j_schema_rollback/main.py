"""Process entry point: answers --version before any heavy import, then hands over to the CLI."""

from __future__ import annotations

import sys

PROG = "neo4j-schema-rollback"


def version_text() -> str:
    from . import __version__, build_info

    return build_info.describe(__version__)


def run(argv: list[str]) -> int:
    """Run one invocation and return its exit code."""
    if argv in (["--version"], ["-V"]):
        # The fast path of every version probe: no cyclopts, no driver, no structlog.
        sys.stdout.write(version_text() + "\n")
        return 0
    from .cli import dispatch

    return dispatch(argv)


def main() -> None:
    sys.exit(run(sys.argv[1:]))
