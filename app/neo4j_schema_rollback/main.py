"""Process entry point: answers --version before any heavy import, then hands over to the CLI."""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing itself costs the --version fast path ~10 ms in the binary
    from typing import NoReturn

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
        from .build_info import version_text

        sys.stdout.write(version_text() + "\n")
        return 0
    from .startup import importing

    with importing():
        from .cli import dispatch

    return dispatch(argv)


def main() -> NoReturn:
    code = _flushed(run(sys.argv[1:]))
    if getattr(sys, "frozen", False):
        # The binary: everything is said and flushed, and the driver is closed (a statement
        # thread abandoned after --timeout or a second signal may still wait on its socket; it
        # has nothing left to say). Skip the interpreter's teardown, which frees every module's
        # objects one by one and cost 70-80 ms of every run.
        os._exit(code)
    sys.exit(code)


def _flushed(code: int) -> int:
    """Flush stdout and stderr; a reader that went away turns success into exit 1."""
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = code or 1
    try:
        if sys.stderr is not None:  # None when started with stderr closed (2>&-)
            sys.stderr.flush()
    except (OSError, ValueError):
        pass  # nobody is left to tell
    return code
