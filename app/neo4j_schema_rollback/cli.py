"""Command-line wiring (cyclopts): flags -> one call of a command function. No logic."""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

import cyclopts
from cyclopts import CycloptsError, Group, Parameter, Token

from . import PROG, commands, session
from .build_info import version_text
from .errors import UsageError
from .events import LogFormat
from .help_format import Formatter
from .settings import ConnectionOptions

app = cyclopts.App(
    name=PROG,
    help="Apply and safely roll back the QMTL DAG Manager's Neo4j schema.\n\n"
    "Without a command, runs rollback.",
    version=version_text,
    version_flags=["--version", "-V"],
    help_formatter=Formatter(),
    result_action="return_value",  # each command returns its exit code
)
CONNECTION = Group("Connection", sort_key=1)
OUTPUT = Group("Output", sort_key=2)
TABLE_HELP = "An embedded table or a table file [env: NEO4J_SCHEMA_TABLE; default qmtl-dagmanager]."


@Parameter(name="*")  # flattened: its fields are top-level flags of each connected command
@dataclass(frozen=True)
class CommonFlags:
    """The connection and output flags of apply, rollback and status."""

    # Defaults stay None: settings.resolve() applies the environment, then the defaults.
    uri: Annotated[str | None, Parameter(group=CONNECTION, help=(
        "Bolt URI [env: NEO4J_URI; default neo4j://localhost:7687]."))] = None
    username: Annotated[str | None, Parameter(name=["--username", "-u"], group=CONNECTION, help=(
        "User [env: NEO4J_USERNAME or NEO4J_USER; default neo4j]."))] = None
    password: Annotated[str | None, Parameter(group=CONNECTION, help=(
        "Password; visible in the process list [env: NEO4J_PASSWORD]."))] = None
    password_file: Annotated[str | None, Parameter(group=CONNECTION, help=(
        "File holding the password [env: NEO4J_PASSWORD_FILE]."))] = None
    database: Annotated[str | None, Parameter(name=["--database", "-d"], group=CONNECTION, help=(
        "Database [env: NEO4J_DATABASE; default: the user's home database]."))] = None
    trusted_ca: Annotated[str | None, Parameter(group=CONNECTION, help=(
        "PEM file of CA certificates to trust [env: NEO4J_TRUSTED_CA]."))] = None
    wait: Annotated[str | None, Parameter(group=CONNECTION, help=(
        "Seconds to keep retrying an unreachable server [env: NEO4J_WAIT; default 0]."))] = None
    timeout: Annotated[str | None, Parameter(group=CONNECTION, help=(
        "Seconds allowed to connect and for each statement [env: NEO4J_TIMEOUT; default 30]."
    ))] = None
    log_format: Annotated[Literal["auto", "json", "console"], Parameter(group=OUTPUT, help=(
        "auto: JSON Lines unless stdout is a terminal."))] = "auto"
    debug: Annotated[bool, Parameter(group=OUTPUT, negative="", help=(
        "Print a traceback on an internal error."))] = False
    report: Annotated[tuple[str, ...], Parameter(group=OUTPUT, negative="", show_default=False,
                                                 help=(
        "Also write a report: junit=PATH, github, termination[=PATH], or none (no automatic "
        "ones); repeatable [env: NEO4J_REPORT, comma-separated]."))] = ()
    table: Annotated[str | None, Parameter(name="--table", help=TABLE_HELP)] = None

    def common(self) -> session.Common:
        options = ConnectionOptions(uri=self.uri, username=self.username, password=self.password,
                                    password_file=self.password_file, database=self.database,
                                    trusted_ca=self.trusted_ca, wait=self.wait,
                                    timeout=self.timeout)
        return session.Common(options, log_format=self.log_format, debug=self.debug,
                              reports=self.report, table=self.table)


NO_FLAGS = CommonFlags()  # frozen, so one shared default instance is safe
DryRun = Annotated[bool, Parameter(negative="", help=(
    "Read the catalog and log every statement as planned; change nothing."))]


def _whole_number(_: object, tokens: Sequence[Token]) -> int:
    # cyclopts' own int conversion rounds "1.5" to 2 and "-0.5" to 0 (drop everything).
    text = tokens[0].value
    if not re.fullmatch(r"\s*[+-]?[0-9]+\s*", text):
        raise ValueError(f"{text!r} is not a whole number")
    return int(text)


@app.command
def apply(
    *,
    to: Annotated[int | None, Parameter(converter=_whole_number, help=(
        "Create objects of version <= N [default: newest]."))] = None,
    dry_run: DryRun = False,
    index_timeout: Annotated[str | None, Parameter(help=(
        "Seconds to wait for ONLINE indexes [env: NEO4J_INDEX_TIMEOUT; default 300]."
    ))] = None,
    flags: CommonFlags = NO_FLAGS,
) -> int:
    """Create the table's objects, await their indexes, verify each one.

    Creates with IF NOT EXISTS, waits until every index is ONLINE, then re-reads the catalog to
    prove each object exists with the expected definition."""
    return session.connected("apply", flags.common(), commands.apply, to=to, dry_run=dry_run,
                             index_timeout=index_timeout)


@app.default
def rollback(
    *,
    to: Annotated[int, Parameter(converter=_whole_number, help=(
        "Keep objects of version <= N; 0 drops all."))] = 0,
    yes: Annotated[bool, Parameter(name=["--yes", "-y"], negative="", help=(
        "Do not ask for confirmation; required when not on a terminal."))] = False,
    dry_run: DryRun = False,
    flags: CommonFlags = NO_FLAGS,
) -> int:
    """Drop the table's objects, newest version first (the default command).

    Each object is dropped only where its live definition matches the table."""
    return session.connected("rollback", flags.common(), commands.rollback, to=to, yes=yes,
                             dry_run=dry_run)


app.command(rollback, name="rollback")


@app.command
def status(
    *,
    to: Annotated[int | None, Parameter(converter=_whole_number, help=(
        "With --expect applied: the version that should be applied [default: newest]."))] = None,
    expect: Annotated[Literal["applied", "absent"] | None, Parameter(help=(
        "Exit 4 unless the database is in this state."))] = None,
    flags: CommonFlags = NO_FLAGS,
) -> int:
    """Report each table object as present, absent, mismatch or equivalent."""
    return session.connected("status", flags.common(), commands.status, to=to, expect=expect)


@app.command
def statements(
    *,
    action: Annotated[Literal["apply", "rollback"], Parameter(help=(
        "Which statements to print."))] = "apply",
    server_version: Annotated[str, Parameter(help=(
        "Neo4j version to render for, e.g. 4.4, 5.26 or 2026.08."))] = "5.26",
    to: Annotated[int | None, Parameter(converter=_whole_number, help=(
        "apply: objects of version <= N [default: newest]; rollback: drop objects above N "
        "[default: 0]."))] = None,
    table: Annotated[str | None, Parameter(name="--table", help=TABLE_HELP)] = None,
) -> int:
    """Print the exact Cypher without connecting, one statement per line.

    Exits 2 when the table holds a kind the server version lacks."""
    return session.offline("statements", commands.statements, table, action=action,
                           server_version=server_version, to=to)


@app.command(name="check-table")
def check_table(path: Annotated[str, Parameter(help="The table file (or an embedded table).")],
                /) -> int:
    """Validate a table file and print its statements for each server line, offline.

    Exits 0 when the file is valid, 2 with one line naming the file, object and field when not."""
    return session.offline("check-table", commands.check_table, path)


COMMANDS = ("apply", "rollback", "status", "statements", "check-table")
LOG_FORMATS = ("auto", "json", "console")


def _meant(argv: Sequence[str]) -> tuple[str, LogFormat]:
    """The command and log format a command line that failed to parse asked for."""
    command = argv[0] if argv and argv[0] in COMMANDS else "rollback"
    chosen = "auto"
    for index, token in enumerate(argv):
        if token == "--":
            break
        if token == "--log-format" and index + 1 < len(argv):
            chosen = argv[index + 1]
        elif token.startswith("--log-format="):
            chosen = token.partition("=")[2]
    return command, chosen if chosen in LOG_FORMATS else "auto"  # type: ignore[return-value]


def dispatch(argv: list[str]) -> int:
    """Parse `argv` and run the command; its run session reports every failure."""
    try:
        result = app(argv, exit_on_error=False, print_error=False)
    except CycloptsError as exc:
        failure: BaseException = UsageError(" ".join(str(exc).split()) + " (see --help)")
        return session.refuse(*_meant(argv), failure)
    except KeyboardInterrupt as exc:
        return session.refuse(*_meant(argv), exc)
    return result if isinstance(result, int) else 0
