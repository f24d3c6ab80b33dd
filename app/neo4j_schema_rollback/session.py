"""The run session: one run of a command from run.start to run.end, its counts, and the one
place where a failure becomes its exit code, its `error` event and its line on stderr.

Commands get the session as their first argument and raise domain errors; the session owns the
log, the settings and the database the command talks to (the live server unless a test gives
another).
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Concatenate, ParamSpec, Protocol

from . import PROG, __version__, events
from .catalog import Catalog
from .dialect import Server
from .errors import (
    OUTCOMES,
    ExitCode,
    ToolError,
    UsageError,
    class_of,
    describe,
    exit_code_of,
    is_bug,
)
from .plan import Assessment
from .runner import DryRunSink, Progress
from .settings import ConnectionOptions, ConnectionSettings, duration, resolve, termination_log
from .signals import StopFlag, ctrl_c_interrupts, stop_on_signals
from .table import SchemaObject, Table
from .tables import choose

if TYPE_CHECKING:  # types only: a Protocol class costs every start, `statements` included
    from .preflight import Finding
    from .progress_line import ProgressLine
    from .reports import Reports
    from .runner import Sink

    class Database(Protocol):
        """What a command may ask of the database it runs against (the live one: Connection)."""

        waited: dict[str, Any]
        """After open(): how long it waited for the server (empty when it did not)."""

        def open(self) -> Server:
            """Connect and identify the server."""
            ...

        def read_catalog(self) -> Catalog:
            """The live constraints and indexes."""
            ...

        def sink(self) -> Sink:
            """Where the steps of a run that changes the database go."""
            ...

        def await_online(self, names: Sequence[str], timeout: float) -> list[dict[str, Any]]:
            """Wait until the named indexes are ONLINE; return the FAILED ones' rows."""
            ...

        def duplicates(self, obj: SchemaObject, *, indexed: bool, stopped: str
                       ) -> Finding | None:
            """The values the data hold more than once for a uniqueness constraint, counted
            within --timeout (`indexed`: an index on its properties helps; a timeout's message
            ends with `stopped`, what the command leaves undone); None when there are none."""
            ...

        def close(self) -> None:
            """Let go of the connection; called once, however the run ends."""
            ...


P = ParamSpec("P")
OFFLINE = ("statements", "check-table")  # commands without an event log
COUNTED = ("applied", "skipped", "planned", "refused", "failed")


@dataclass
class Console:
    """The process's streams and environment, injected so tests can replace them."""

    stdout: IO[str]
    stderr: IO[str]
    env: Mapping[str, str]
    interactive: bool
    prompt_secret: Callable[[str], str]
    confirm: Callable[[str], bool]

    @classmethod
    def system(cls) -> Console:
        """The real terminal: sys streams, os.environ, prompts on stderr."""
        return cls(stdout=sys.stdout, stderr=sys.stderr, env=dict(os.environ),
                   interactive=sys.stdin.isatty(), prompt_secret=_prompt_secret,
                   confirm=_confirm)


def _confirm(question: str) -> bool:
    sys.stderr.write(f"{question} Type 'yes' to continue: ")
    sys.stderr.flush()
    with ctrl_c_interrupts():
        return sys.stdin.readline().strip().lower() in ("y", "yes")


def _prompt_secret(question: str) -> str:
    import getpass  # only a prompt needs it

    try:
        with ctrl_c_interrupts():
            return getpass.getpass(question)
    except EOFError:
        raise UsageError("no password entered") from None


@dataclass(frozen=True)
class Common:
    """Options every connected command takes."""

    connection: ConnectionOptions = field(default_factory=ConnectionOptions)
    log_format: events.LogFormat = "auto"
    debug: bool = False
    reports: tuple[str, ...] = ()
    """--report values: junit=PATH, github, termination[=PATH], none."""
    table: str | None = None
    """--table: an embedded table's name or a table file's path (None: not given)."""


Connect = Callable[["Run", ConnectionSettings], "Database"]


def live(run: Run, settings: ConnectionSettings) -> Database:
    """The real server named by the settings."""
    from .startup import importing

    with importing():
        from .connection import Connection  # the driver is needed from here on

    return Connection(run, settings)


class Run:
    """One run of a command; a context manager that always ends with run.end (when logged)."""

    def __init__(self, command: str, console: Console, *, common: Common | None,
                 stop: StopFlag | None = None, connect: Connect = live,
                 table: Table | str | None = None) -> None:
        """`common` None: an offline command, which has no event log. `table`: the table, or
        the --table text (None: common's, else NEO4J_SCHEMA_TABLE, else the default)."""
        self.command = command
        self.console = console
        self._table = table if table is not None else (common.table if common else None)
        self.stop = stop if stop is not None else StopFlag()
        self.run_id = str(uuid.uuid4())
        self.tool_version = __version__
        self.counts: Counter[str] = Counter()
        self.progress: Progress | None = None
        self.exit_code = ExitCode.OK
        self._common = common
        self._connect = connect
        self._settings: ConnectionSettings | None = None
        self._db: Database | None = None
        self._server: Server | None = None
        self._started = time.monotonic()
        self._log: events.EventLog | None = None
        self.format: str | None = None
        # The progress line: made on the first thing it shows, when watched (see _line).
        self.line: ProgressLine | None = None
        self._watched = False
        self.reports: Reports | None = None
        self._report_error: UsageError | None = None
        if common is not None:
            self.format = events.choose_format(common.log_format, console.stdout)
            self._log = events.EventLog(console.stdout, format=self.format, run_id=self.run_id,
                                        tool_version=self.tool_version)
            self._watched = self.format == "console" and watched(console)
            if reports_asked(common.reports, console.env):
                self._open_reports(common.reports)

    def _open_reports(self, flags: tuple[str, ...]) -> None:
        from .reports import Reports, automatic, targets  # only a run that writes a report

        try:
            chosen = targets(flags, self.console.env)
        except UsageError as exc:
            # Reported as the run's failure once it has begun (start()); the automatic
            # reports still tell of it.
            self._report_error = exc
            chosen = [] if "none" in flags else automatic(self.console.env, set())
        if chosen:
            self.reports = Reports(chosen, stderr=self.console.stderr, env=self.console.env,
                                   identity={"tool_version": self.tool_version,
                                             "run_id": self.run_id, "command": self.command})

    # -- what commands call ---------------------------------------------------------------------

    @property
    def table(self) -> Table:
        """The run's table, read (and a table file validated) on first use."""
        if not isinstance(self._table, Table):
            source = "check-table" if self.command == "check-table" else "--table"
            self._table = choose(self._table, self.console.env, source)
        return self._table

    def duration(self, flag: str | None, flag_name: str, var: str, default: float) -> float:
        """A duration option of the command, from its flag or the environment."""
        return duration(flag, flag_name, self.console.env, var, default)

    def start(self, *, to: int, dry_run: bool) -> None:
        """Resolve the connection settings and log run.start."""
        assert self._common is not None
        if self._report_error is not None:
            raise self._report_error
        self._settings = settings = resolve(
            self._common.connection, self.console.env, interactive=self.console.interactive,
            prompt=self.console.prompt_secret)
        for warning in settings.warnings:
            self.emit(events.WARNING, level="warning", message=warning)
        self.emit(events.RUN_START, command=self.command, table=self.table.name,
                  table_versions=[1, self.table.newest], to=to, target=settings.redacted_uri,
                  database=settings.database, dry_run=dry_run)

    @property
    def target(self) -> str:
        """The URI (without credentials) and database, for messages."""
        assert self._settings is not None
        database = self._settings.database or "the home database"
        return f"{self._settings.redacted_uri} ({database})"

    def connect(self) -> Database:
        """Open the database and log the server it is."""
        assert self._settings is not None
        self.progress = Progress()
        self._db = self._connect(self, self._settings)
        server = self._db.open()
        self.emit(events.SERVER, agent=server.agent, version=str(server.version),
                  edition=server.edition, dialect=server.dialect.name, **self._db.waited)
        self._server = server
        return self._db

    @property
    def server(self) -> Server:
        """What the database said about itself on connect."""
        assert self._server is not None, "connect() first"
        return self._server

    def sink(self, dry_run: bool) -> Sink:
        """The dry-run sink, or the database's own."""
        assert self._db is not None
        return DryRunSink(self) if dry_run else self._db.sink()

    def conclude(self, code: ExitCode) -> None:
        """The command's result; a signal during its last reads still ends it as interrupted."""
        self.stop.check()
        self.exit_code = code

    # -- what the sinks and the connection call -------------------------------------------------

    def emit(self, event: str, *, level: str = "info", **fields: Any) -> None:
        if self.reports is not None:
            self.reports.consume(event, level, fields)
        if self._log is not None:
            if self.line is not None:
                # Shown again by its next update, not here: what it said may be over.
                self.line.erase()
            self._log.emit(event, level=level, **fields)

    def waiting(self, elapsed: float, limit: float, reason: str) -> None:
        """--wait has waited `elapsed` of `limit` seconds for the server, failing with `reason`:
        show it on the progress line. Called on every tick of the wait."""
        line = self._line()
        if line is not None:
            assert self._settings is not None
            line.show_wait(self._settings.redacted_uri, elapsed, limit, reason)

    def populating(self, indexes: Sequence[tuple[str, float | None]]) -> None:
        """The indexes not yet ONLINE and their population percent: show them on the line."""
        line = self._line()
        if line is not None:
            line.show_indexes(indexes)

    def _line(self) -> ProgressLine | None:
        if not self._watched or self.stop.signal_name is not None:
            if self.line is not None:
                self.line.erase()  # a stop request: nothing more to watch
            return None
        if self.line is None:
            from .progress_line import ProgressLine  # only a run that has something to show

            self.line = ProgressLine(self.console.stderr,
                                     colour=not self.console.env.get("NO_COLOR"))
        return self.line

    def statement(self, action: str, obj: SchemaObject | None, cypher: str, outcome: str, *,
                  started: float | None = None, **fields: Any) -> None:
        """Log one statement and count its outcome for run.end."""
        self.counts[outcome] += 1
        duration_ms = (round((time.monotonic() - started) * 1000, 1) if started is not None
                       else None)
        level = {"failed": "error", "refused": "warning"}.get(outcome, "info")
        self.emit(events.STATEMENT, level=level, action=action,
                  object=obj.name if obj else None, kind=obj.kind.value if obj else None,
                  cypher=cypher, outcome=outcome, duration_ms=duration_ms,
                  **{k: v for k, v in fields.items() if v not in (None, {}, [])})

    def object(self, found: Assessment, *, good: bool, duplicates: Finding | None = None) -> None:
        """Log one table object's state, and the duplicates that would stop its creation."""
        level = "info" if good and duplicates is None else "warning"
        self.emit(events.OBJECT, level=level, object=found.obj.name,
                  kind=found.obj.kind.value, version=found.obj.version,
                  state=found.state.value, detail=found.detail(),
                  live=found.live.describe() if found.live else None,
                  equivalents=[obj.name for obj in found.equivalents] or None,
                  duplicates=duplicates.fields() if duplicates else None)

    # -- the end --------------------------------------------------------------------------------

    def __enter__(self) -> Run:
        return self

    def __exit__(self, kind: type[BaseException] | None, failure: BaseException | None,
                 traceback: TracebackType | None) -> bool:
        if self.line is not None:
            self.line.close()  # before the error and run.end lines, and a Ctrl-C's end
        if failure is not None:
            if not isinstance(failure, Exception | KeyboardInterrupt):
                return False  # SystemExit and the like are not ours to report
            self.exit_code = exit_code_of(failure)
            self._report(failure)
        if self._db is not None:
            self._db.close()
        self._end()
        return True

    def _report(self, failure: BaseException) -> None:
        message = describe(failure)
        internal = is_bug(failure)
        if internal and self._common is not None and self._common.debug:
            import traceback

            traceback.print_exception(failure, file=self.console.stderr)
        said: dict[str, Any] = {}
        if isinstance(failure, ToolError):
            said = {"code": failure.code, "gql_status": failure.gql_status,
                    "gql_status_description": failure.gql_status_description,
                    "driver_message": failure.driver_message}
        self.emit(events.ERROR, level="error", message=message, error_class=class_of(failure),
                  **said, exit_code=int(self.exit_code))
        if self._log is None or self.format == "json" or internal:
            # stdout is for machines (or for the Cypher); say it once for the human too
            self.console.stderr.write(f"{PROG}: error: {message}\n")
            self.console.stderr.flush()

    def _end(self) -> None:
        code = self.exit_code
        progress: dict[str, Any] = {}
        if self.progress is not None:
            progress = {"done": self.progress.done, "not_done": self.progress.pending}
        level = "info" if code == ExitCode.OK else "error"
        end = {"outcome": OUTCOMES[code], "exit_code": int(code),
               "counts": {name: self.counts.get(name, 0) for name in COUNTED}, **progress,
               "duration_ms": round((time.monotonic() - self._started) * 1000, 1)}
        if self.reports is not None:
            reports, self.reports = self.reports, None  # they have had every event: write them
            reports.consume(events.RUN_END, level, end)
            for problem in reports.write():
                self.emit(events.WARNING, level="warning", message=problem)
        self.emit(events.RUN_END, level=level, **end)


def reports_asked(flags: Sequence[str], env: Mapping[str, str]) -> bool:
    """Whether a report may be wanted: checked without importing the reports, so a run that
    writes none does not pay for them."""
    specs = set(flags or [spec.strip() for spec in env.get("NEO4J_REPORT", "").split(",")])
    specs.discard("")
    if specs == {"none"}:
        return False  # nothing asked for, and the automatic ones turned off
    return bool(specs or env.get("GITHUB_ACTIONS") == "true"
                or os.access(termination_log(env), os.W_OK))


def watched(console: Console) -> bool:
    """A person watches the run: stdout and stderr are terminals, and not dumb ones (TERM=dumb
    cannot erase a line)."""
    return (events.is_terminal(console.stdout) and events.is_terminal(console.stderr)
            and console.env.get("TERM") != "dumb")


def connected(command: str, common: Common,
              body: Callable[Concatenate[Run, P], ExitCode], /,
              *args: P.args, **kwargs: P.kwargs) -> int:
    """Run a connected command on the real terminal and server; return its exit code."""
    with stop_on_signals() as stop, Run(command, Console.system(), common=common,
                                        stop=stop) as run:
        run.conclude(body(run, *args, **kwargs))
    return run.exit_code


def offline(command: str, body: Callable[Concatenate[IO[str], Table, P], None], /,
            table: str | None, *args: P.args, **kwargs: P.kwargs) -> int:
    """Run a command that needs no database and has no log on `table` (the --table text),
    writing to stdout."""
    console = Console.system()
    with Run(command, console, common=None, table=table) as run:
        body(console.stdout, run.table, *args, **kwargs)
    return run.exit_code


def refuse(command: str, log_format: events.LogFormat, failure: BaseException) -> int:
    """Report a failure found before the command ran (its command line), as its run would."""
    common = Common(log_format=log_format) if command not in OFFLINE else None
    with Run(command, Console.system(), common=common) as run:
        raise failure
    return run.exit_code
