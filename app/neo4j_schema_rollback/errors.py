"""One root error for failures the user should see, each carrying its documented exit code."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The documented exit codes; decided here and mapped in exactly one place (cli.run)."""

    OK = 0
    STATEMENT_FAILED = 1
    USAGE = 2
    CONNECTION = 3
    REFUSED = 4
    INTERRUPTED = 130
    TERMINATED = 143


class ToolError(Exception):
    """A failure with a one-line message for the user and the exit code it maps to."""

    exit_code: ExitCode = ExitCode.STATEMENT_FAILED

    def __init__(self, message: str, *, hint: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.code = code

    def one_line(self) -> str:
        return f"{self.message} — {self.hint}" if self.hint else self.message


class UsageError(ToolError):
    """Bad flags, environment or files: nothing was sent."""

    exit_code = ExitCode.USAGE


class ConnectionFailed(ToolError):
    """Cannot connect, authenticate or find the database, or the server is too old."""

    exit_code = ExitCode.CONNECTION


class StatementFailed(ToolError):
    """The server rejected a statement, or an index failed to come online."""

    exit_code = ExitCode.STATEMENT_FAILED


class Interrupted(ToolError):
    """SIGINT or SIGTERM arrived; the run stopped between statements."""

    def __init__(self, signal_name: str) -> None:
        super().__init__(f"interrupted by {signal_name}")
        self.exit_code = (
            ExitCode.TERMINATED if signal_name == "SIGTERM" else ExitCode.INTERRUPTED
        )


class ServerTooOld(ToolError):
    """The server (or --server-version) is older than 4.4."""

    exit_code = ExitCode.CONNECTION
