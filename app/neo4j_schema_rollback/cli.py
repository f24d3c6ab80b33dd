"""Command-line wiring (cyclopts). No logic: flags -> a command function -> an exit code."""

import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

import cyclopts
from cyclopts import CycloptsError, Group, Parameter, Token

from . import commands
from .errors import ExitCode, ToolError, UsageError
from .main import PROG, version_text
from .settings import ConnectionOptions
from .signals import ctrl_c_interrupts, stop_on_signals
from .table import QMTL_DAGMANAGER as TABLE

app = cyclopts.App(
    name=PROG,
    help="Apply and safely roll back the QMTL DAG Manager's Neo4j schema.\n\n"
    "Without a command, runs rollback.",
    version=version_text,
    version_flags=["--version", "-V"],
    help_formatter="plain",
    result_action="return_value",  # dispatch() maps results to exit codes, in one place
)
CONNECTION = Group("Connection", sort_key=1)
OUTPUT = Group("Output", sort_key=2)


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

    def common(self) -> commands.Common:
        options = ConnectionOptions(uri=self.uri, username=self.username, password=self.password,
                                    password_file=self.password_file, database=self.database,
                                    trusted_ca=self.trusted_ca, wait=self.wait,
                                    timeout=self.timeout)
        return commands.Common(options, log_format=self.log_format, debug=self.debug)


NO_FLAGS = CommonFlags()  # frozen, so one shared default instance is safe
DryRun = Annotated[bool, Parameter(negative="", help=(
    "Read the catalog and log every statement as planned; change nothing."))]


def _whole_number(_: object, tokens: Sequence[Token]) -> int:
    # cyclopts' own int conversion rounds "1.5" to 2 and "-0.5" to 0 (drop everything).
    text = tokens[0].value
    if not re.fullmatch(r"\s*[+-]?[0-9]+\s*", text):
        raise ValueError(f"{text!r} is not a whole number")
    return int(text)


def _seconds(_: object, tokens: Sequence[Token]) -> float:
    # float() also reads "inf" and "nan", which would wait forever or not at all.
    text = tokens[0].value
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number of seconds") from None
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{text!r} must be a finite number of seconds >= 0")
    return value


def _console() -> commands.Console:
    def confirm(question: str) -> bool:
        sys.stderr.write(f"{question} Type 'yes' to continue: ")
        sys.stderr.flush()
        with ctrl_c_interrupts():
            return sys.stdin.readline().strip().lower() in ("y", "yes")

    def prompt_secret(question: str) -> str:
        import getpass  # only a prompt needs it

        try:
            with ctrl_c_interrupts():
                return getpass.getpass(question)
        except EOFError:
            raise UsageError("no password entered") from None

    return commands.Console(stdout=sys.stdout, stderr=sys.stderr, env=dict(os.environ),
                            interactive=sys.stdin.isatty(), prompt_secret=prompt_secret,
                            confirm=confirm)


def _run(command: str, common: commands.Common,
         body: Callable[[commands.Console], commands.Body], **fields: object) -> int:
    console = _console()
    with stop_on_signals() as stop:
        return commands.connected(command, common, console, stop, body(console),
                                  **fields)  # type: ignore[arg-type]


@app.command
def apply(
    *,
    to: Annotated[int | None, Parameter(converter=_whole_number, help=(
        "Create objects of version <= N [default: newest]."))] = None,
    dry_run: DryRun = False,
    index_timeout: Annotated[float, Parameter(converter=_seconds, help=(
        "Seconds to wait for the indexes to come ONLINE."))] = 300.0,
    flags: CommonFlags = NO_FLAGS,
) -> int:
    """Create the table's objects, await their indexes, verify each one.

    Creates with IF NOT EXISTS, waits until every index is ONLINE, then re-reads the catalog to
    prove each object exists with the expected definition."""
    common = flags.common()
    target = commands.check_to(TABLE, to, TABLE.newest)
    return _run("apply", common,
                lambda _: commands.apply_body(TABLE, target, dry_run, index_timeout),
                dry_run=dry_run, to=target)


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
    common = flags.common()
    keep = commands.check_to(TABLE, to, 0)

    def precheck() -> None:
        if not (yes or dry_run or sys.stdin.isatty()):
            raise UsageError("rollback drops schema objects: pass --yes to confirm when not "
                             "on a terminal, or --dry-run to preview")

    return _run("rollback", common,
                lambda console: commands.rollback_body(TABLE, keep, dry_run, yes, console),
                dry_run=dry_run, to=keep, precheck=precheck)


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
    common = flags.common()
    target = commands.check_to(TABLE, to, TABLE.newest)
    return _run("status", common, lambda _: commands.status_body(TABLE, target, expect),
                dry_run=False, to=target)


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
) -> int:
    """Print the exact Cypher without connecting, one statement per line."""
    commands.statements(action, server_version, to, sys.stdout)
    return 0


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"{PROG}: error: {message}\n")
    return code


def dispatch(argv: list[str]) -> int:
    """Parse `argv`, run the command, and map every failure to its documented exit code."""
    try:
        result = app(argv, exit_on_error=False, print_error=False)
    except CycloptsError as exc:
        return _fail(" ".join(str(exc).split()) + " (see --help)", ExitCode.USAGE)
    except ToolError as exc:
        return _fail(exc.one_line(), exc.exit_code)
    except KeyboardInterrupt:
        return _fail("interrupted", ExitCode.INTERRUPTED)
    return result if isinstance(result, int) else 0
