"""Process entry point: answers --version before any heavy import, then hands over to the CLI."""

from __future__ import annotations

import os
import sys

PROG = "neo4j-schema-rollback"


def version_text() -> str:
    from . import __version__, build_info

    return build_info.describe(__version__)


def run(argv: list[str]) -> int:
    """Run one invocation and return its exit code."""
    try:
        return _run(argv)
    except BrokenPipeError:
        # The reader went away (`| head`): nothing more can be said; keep Python's exit quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


def _run(argv: list[str]) -> int:
    if argv in (["--version"], ["-V"]):
        # The fast path of every version probe: no cyclopts, no driver, no structlog.
        sys.stdout.write(version_text() + "\n")
        return 0
    from .cli import dispatch

    return dispatch(argv)


def main() -> None:
    code = run(sys.argv[1:])
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = code or 1
    sys.stderr.flush()
    # Everything is said and flushed, the driver is closed and no thread holds work: skip the
    # interpreter's teardown, which frees every module's objects one by one (the driver's
    # lookup tables among them) and cost 70-80 ms of every run of the binary.
    os._exit(code)
