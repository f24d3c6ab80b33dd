"""One root error for failures the user should see, each carrying its documented exit code;
anything else is a bug. The one place that maps a failure to its exit code and outcome."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The documented exit codes (docs/exit-codes.md)."""

    OK = 0
    STATEMENT_FAILED = 1
    USAGE = 2
    CONNECTION = 3
    REFUSED = 4
    DATA_CONFLICT = 5
    INTERNAL = 70  # sysexits' EX_SOFTWARE: a bug in this tool, never a failed statement
    INTERRUPTED = 130
    TERMINATED = 143


# run.end's `outcome` for each exit code.
OUTCOMES = {
    ExitCode.OK: "success", ExitCode.REFUSED: "refused", ExitCode.STATEMENT_FAILED: "failed",
    ExitCode.DATA_CONFLICT: "data_conflict", ExitCode.USAGE: "usage_error",
    ExitCode.CONNECTION: "connection_error",
    ExitCode.INTERNAL: "internal_error", ExitCode.INTERRUPTED: "interrupted",
    ExitCode.TERMINATED: "interrupted",
}


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


class DataConflict(ToolError):
    """The data break a uniqueness constraint the run was to create: it was not sent."""

    exit_code = ExitCode.DATA_CONFLICT
    error_class = "data_conflict"


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


def is_bug(failure: BaseException) -> bool:
    """Neither a failure the user should see nor an interrupt: a bug of this tool."""
    return not isinstance(failure, ToolError | KeyboardInterrupt)


def exit_code_of(failure: BaseException) -> ExitCode:
    """The documented exit code of a failure: its own for a ToolError, 70 for a bug."""
    if isinstance(failure, ToolError):
        return failure.exit_code
    if isinstance(failure, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    return ExitCode.INTERNAL


def describe(failure: BaseException) -> str:
    """The one-line message for a failure."""
    if isinstance(failure, ToolError):
        return failure.one_line()
    if isinstance(failure, KeyboardInterrupt):
        return "interrupted by SIGINT"
    text = " ".join(str(failure).split())
    return f"internal error: {type(failure).__name__}: {text} — rerun with --debug and report it"
