"""One root error for failures the user should see, each carrying its documented exit code;
anything else is a bug. The one place that maps a failure to its exit code, outcome and error
class, and a server's status code to its error class."""

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


# The stable `error_class` of every `error` event and failed `statement` event
# (docs/exit-codes.md lists them; plain strings: an enum would cost every start).
AUTH = "auth"  # the server refused the login
FORBIDDEN = "forbidden"  # logged in, but the user may not do this
UNREACHABLE = "unreachable"  # refused, name not resolved, no route, not a Bolt server
TLS = "tls"  # TLS handshake or certificate failure
TIMEOUT = "timeout"  # no answer in time: handshake, statement, index population
DATABASE_NOT_FOUND = "database_not_found"
DATABASE_UNAVAILABLE = "database_unavailable"  # exists, but not serving (starting, stopped)
ROUTING = "routing"  # neo4j:// found no routing table, or the member is not the leader
UNSUPPORTED_SERVER = "unsupported_server"  # older than 4.4, or not Neo4j
CONNECTION_LOST = "connection_lost"  # broke during a statement: its outcome is unknown
DEFINITION_CONFLICT = "definition_conflict"  # a same-named or equivalent object differs
DATA_CONFLICT = "data_conflict"  # the data break the constraint (duplicates)
INDEX_FAILED = "index_failed"  # an index went FAILED while populating
SERVER_ERROR = "server_error"  # any other refusal by the server
USAGE = "usage"
INTERRUPTED = "interrupted"
BUG = "bug"
ERROR_CLASSES = (AUTH, FORBIDDEN, UNREACHABLE, TLS, TIMEOUT, DATABASE_NOT_FOUND,
                 DATABASE_UNAVAILABLE, ROUTING, UNSUPPORTED_SERVER, CONNECTION_LOST,
                 DEFINITION_CONFLICT, DATA_CONFLICT, INDEX_FAILED, SERVER_ERROR, USAGE,
                 INTERRUPTED, BUG)

# Server status codes (the legacy Neo.* code) whose class is not server_error.
_SERVER_CODES = {
    "Neo.ClientError.Security.Unauthorized": AUTH,
    "Neo.ClientError.Security.AuthenticationRateLimit": AUTH,
    "Neo.ClientError.Security.CredentialsExpired": AUTH,
    "Neo.ClientError.Security.TokenExpired": AUTH,
    "Neo.ClientError.Security.Forbidden": FORBIDDEN,
    "Neo.ClientError.Security.AuthorizationExpired": FORBIDDEN,
    "Neo.ClientError.Database.DatabaseNotFound": DATABASE_NOT_FOUND,
    "Neo.TransientError.General.DatabaseUnavailable": DATABASE_UNAVAILABLE,
    "Neo.ClientError.Cluster.NotALeader": ROUTING,
    "Neo.ClientError.Cluster.Routing": ROUTING,
    "Neo.ClientError.Transaction.TransactionTimedOut": TIMEOUT,
    "Neo.ClientError.Transaction.TransactionTimedOutClientConfiguration": TIMEOUT,
    "Neo.ClientError.Schema.EquivalentSchemaRuleAlreadyExists": DEFINITION_CONFLICT,
    "Neo.ClientError.Schema.IndexAlreadyExists": DEFINITION_CONFLICT,
    "Neo.ClientError.Schema.ConstraintAlreadyExists": DEFINITION_CONFLICT,
    "Neo.ClientError.Schema.IndexWithNameAlreadyExists": DEFINITION_CONFLICT,
    "Neo.ClientError.Schema.ConstraintWithNameAlreadyExists": DEFINITION_CONFLICT,
    "Neo.ClientError.Schema.ConstraintValidationFailed": DATA_CONFLICT,
    "Neo.ClientError.Schema.ConstraintCreationFailed": DATA_CONFLICT,
    "Neo.DatabaseError.Schema.ConstraintCreationFailed": DATA_CONFLICT,
}


def server_error_class(code: str | None) -> str:
    """The error class of a failure the server reported with this Neo.* status code."""
    return _SERVER_CODES.get(code or "", SERVER_ERROR)


class ToolError(Exception):
    """A failure with a one-line message for the user, the exit code it maps to, its error
    class and, when the server or driver said why, their codes and own text."""

    exit_code: ExitCode = ExitCode.STATEMENT_FAILED
    error_class: str = SERVER_ERROR

    def __init__(self, message: str, *, hint: str | None = None, code: str | None = None,
                 error_class: str | None = None, gql_status: str | None = None,
                 gql_status_description: str | None = None,
                 driver_message: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.code = code
        if error_class is not None:
            self.error_class = error_class
        self.gql_status = gql_status
        self.gql_status_description = gql_status_description
        self.driver_message = driver_message

    def one_line(self) -> str:
        return f"{self.message} — {self.hint}" if self.hint else self.message


class UsageError(ToolError):
    """Bad flags, environment or files: nothing was sent."""

    exit_code = ExitCode.USAGE
    error_class = USAGE


class ConnectionFailed(ToolError):
    """Cannot connect, authenticate or find the database, or the server is too old."""

    exit_code = ExitCode.CONNECTION
    error_class = UNREACHABLE


class StatementFailed(ToolError):
    """The server rejected a statement, or an index failed to come online."""

    exit_code = ExitCode.STATEMENT_FAILED


class DataConflict(ToolError):
    """The data break a uniqueness constraint the run was to create: it was not sent."""

    exit_code = ExitCode.DATA_CONFLICT
    error_class = DATA_CONFLICT


class Interrupted(ToolError):
    """SIGINT or SIGTERM arrived; the run stopped between statements."""

    error_class = INTERRUPTED

    def __init__(self, signal_name: str) -> None:
        super().__init__(f"interrupted by {signal_name}")
        self.exit_code = (
            ExitCode.TERMINATED if signal_name == "SIGTERM" else ExitCode.INTERRUPTED
        )


class ServerTooOld(ToolError):
    """The server (or --server-version) is older than 4.4."""

    exit_code = ExitCode.CONNECTION
    error_class = UNSUPPORTED_SERVER


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


def class_of(failure: BaseException) -> str:
    """The stable error class of a failure: its own for a ToolError, `bug` for a bug."""
    if isinstance(failure, ToolError):
        return failure.error_class
    if isinstance(failure, KeyboardInterrupt):
        return INTERRUPTED
    return BUG


def describe(failure: BaseException) -> str:
    """The one-line message for a failure."""
    if isinstance(failure, ToolError):
        return failure.one_line()
    if isinstance(failure, KeyboardInterrupt):
        return "interrupted by SIGINT"
    text = " ".join(str(failure).split())
    return f"internal error: {type(failure).__name__}: {text} — rerun with --debug and report it"
