"""apply / rollback / status / statements: settings -> catalog -> plan -> executor.

Each command is a plain function returning its exit code; the CLI only maps flags onto them.
The driver is imported only once a command really connects.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, Literal

from . import __version__, events
from .catalog import Catalog
from .dialect import ServerVersion, UnsupportedServer, dialect_for, render_create, render_drop
from .errors import ExitCode, ServerTooOld, StatementFailed, ToolError, UsageError
from .plan import Decision, State, assess, plan_apply, plan_rollback
from .settings import ConnectionOptions, resolve
from .signals import StopFlag
from .table import QMTL_DAGMANAGER, SchemaObject, Table

if TYPE_CHECKING:
    from .executor import Executor, Progress, Server

Action = Literal["apply", "rollback"]
LogFormat = events.LogFormat
Body = Callable[["Run", "Executor", "Server"], ExitCode]
Expect = Literal["applied", "absent"]
OUTCOMES = ("applied", "skipped", "planned", "refused", "failed")


def check_to(table: Table, to: int | None, default: int) -> int:
    """Validate a --to version against the table."""
    if to is None:
        return default
    if not 0 <= to <= table.newest:
        raise UsageError(f"--to {to} is out of range: table {table.name} has versions "
                         f"0..{table.newest}")
    return to


# -- offline ------------------------------------------------------------------------------------

def statements(action: Action, server_version: str, to: int | None, out: IO[str],
               table: Table = QMTL_DAGMANAGER) -> None:
    """Write the exact Cypher of `action` for a server version, one statement per line."""
    try:
        version = ServerVersion.parse(server_version)
    except ValueError as exc:
        raise UsageError(f"--server-version: {exc}", hint="use e.g. 4.4, 5.26 or 2026.08") from None
    try:
        dialect = dialect_for(version)
    except UnsupportedServer as exc:
        raise ServerTooOld(str(exc)) from None
    if action == "apply":
        lines = [render_create(obj, dialect) for obj in table.up_to(check_to(table, to,
                                                                             table.newest))]
    else:
        lines = [render_drop(obj, dialect) for obj in table.above(check_to(table, to, 0))]
    out.write("".join(f"{line};\n" for line in lines))


# -- connected ----------------------------------------------------------------------------------

@dataclass
class Console:
    """The process's streams and environment, injected so tests can replace them."""

    stdout: IO[str]
    stderr: IO[str]
    env: Mapping[str, str]
    interactive: bool
    prompt_secret: Callable[[str], str]
    confirm: Callable[[str], bool]


@dataclass
class Run:
    """One connected run: its log, its tallies and its exit."""

    command: str
    log: events.EventLog
    run_id: str
    tally: Counter[str]
    started: float = field(default_factory=time.monotonic)
    progress: Progress | None = None


def count_outcomes(tally: Counter[str]) -> Callable[[str, dict[str, Any]], None]:
    """An event observer that counts statement outcomes, so run.end reports what was logged."""

    def observe(event: str, fields: dict[str, Any]) -> None:
        if event == events.STATEMENT:
            tally[str(fields.get("outcome"))] += 1

    return observe


@dataclass(frozen=True)
class Common:
    """Options every connected command takes."""

    connection: ConnectionOptions
    log_format: events.LogFormat = "auto"
    debug: bool = False


def connected(command: str, common: Common, console: Console, stop: StopFlag,
              body: Callable[[Run, Executor, Server], ExitCode], *,
              dry_run: bool | None = None, to: int | None = None,
              precheck: Callable[[], None] | None = None,
              table: Table = QMTL_DAGMANAGER) -> ExitCode:
    """Run `body` against a live server with a full log: run.start ... run.end, always."""
    run_id = str(uuid.uuid4())
    fmt = events.choose_format(common.log_format, console.stdout)
    tally: Counter[str] = Counter()
    log = events.EventLog(console.stdout, format=fmt, run_id=run_id, tool_version=__version__,
                          observer=count_outcomes(tally))
    run = Run(command=command, log=log, run_id=run_id, tally=tally)
    executor: Executor | None = None
    code = ExitCode.OK
    try:
        settings = resolve(common.connection, console.env, interactive=console.interactive,
                           prompt=console.prompt_secret)
        for warning in settings.warnings:
            log.emit(events.WARNING, level="warning", message=warning)
        start_fields: dict[str, Any] = {"to": to} if to is not None else {}
        log.emit(events.RUN_START, command=command, table=table.name,
                 table_versions=[1, table.newest], **start_fields,
                 target=settings.redacted_uri, database=settings.database,
                 dry_run=dry_run)
        if precheck is not None:
            precheck()
        from .executor import Executor, Progress  # the driver is needed from here on

        run.progress = Progress()
        executor = Executor(settings, log, stop, run_id=run_id, tool_version=__version__)
        server = executor.connect()
        log.emit(events.SERVER, agent=server.agent, version=str(server.version),
                 edition=server.edition, dialect=server.dialect.name)
        code = body(run, executor, server)
        stop.check()  # a signal during the last reads still ends the run as interrupted
    except ToolError as exc:
        code = exc.exit_code
        _report(log, console, fmt, exc.one_line(), code, exc.code)
    except KeyboardInterrupt:
        code = ExitCode.INTERRUPTED
        _report(log, console, fmt, "interrupted by SIGINT", code, None)
    except Exception as exc:  # a bug: say so in one line, with the traceback only on request
        code = ExitCode.STATEMENT_FAILED
        if common.debug:
            import traceback

            traceback.print_exc(file=console.stderr)
        _report(log, console, fmt, f"internal error: {type(exc).__name__}: {exc} "
                f"— rerun with --debug and report it", code, None)
    finally:
        if executor is not None:
            executor.close()
    outcome = {ExitCode.OK: "success", ExitCode.REFUSED: "refused",
               ExitCode.STATEMENT_FAILED: "failed", ExitCode.USAGE: "usage_error",
               ExitCode.CONNECTION: "connection_error", ExitCode.INTERRUPTED: "interrupted",
               ExitCode.TERMINATED: "interrupted"}[code]
    progress_fields: dict[str, Any] = {}
    if run.progress is not None:
        progress_fields = {"done": run.progress.done, "not_done": run.progress.pending}
    log.emit(events.RUN_END, level="info" if code == ExitCode.OK else "error",
             outcome=outcome, exit_code=int(code),
             counts={name: run.tally.get(name, 0) for name in OUTCOMES},
             **progress_fields,
             duration_ms=round((time.monotonic() - run.started) * 1000, 1))
    return code


def _report(log: events.EventLog, console: Console, fmt: str, message: str, code: ExitCode,
            error_code: str | None) -> None:
    log.emit(events.ERROR, level="error", message=message, code=error_code,
             exit_code=int(code))
    if fmt == "json":  # stdout is for machines; say it once for the human too
        console.stderr.write(f"neo4j-schema-rollback: error: {message}\n")
        console.stderr.flush()


def apply_body(table: Table, to: int, dry_run: bool, index_timeout: float,
               ) -> Callable[[Run, Executor, Server], ExitCode]:
    """Create objects of version <= `to`, await their indexes, then prove each one exists."""

    def body(run: Run, executor: Executor, server: Server) -> ExitCode:
        wanted = table.up_to(to)
        catalog = executor.read_catalog()
        steps = plan_apply(wanted, catalog, server.dialect)
        assert run.progress is not None
        executor.execute(steps, dry_run=dry_run, progress=run.progress)
        refused = any(step.decision is Decision.REFUSE for step in steps)
        if dry_run:
            return ExitCode.REFUSED if refused else ExitCode.OK
        failed = executor.await_online(
            [obj.name for obj in wanted], index_timeout,
            lambda row: run.log.emit(events.INDEX_PROGRESS, object=row["name"],
                                     state=row["state"], percent=row["populationPercent"]))
        if failed:
            # The server's failure message carries a Java stack trace; its first line says why.
            detail = "; ".join(
                f"{row['name']}: {(row.get('failureMessage') or 'no message').splitlines()[0]}"
                for row in failed)
            raise _index_failed(detail)
        return _verify(run, executor, wanted, State.PRESENT)

    return body


def _index_failed(detail: str) -> ToolError:
    return StatementFailed(f"index FAILED: {detail}", hint="drop it and apply again once the "
                           "cause is fixed")


def rollback_body(table: Table, to: int, dry_run: bool, yes: bool, console: Console,
                  ) -> Callable[[Run, Executor, Server], ExitCode]:
    """Drop objects of version > `to`, newest first, each only if its definition matches."""

    def body(run: Run, executor: Executor, server: Server) -> ExitCode:
        unwanted = table.above(to)
        catalog = executor.read_catalog()
        steps = plan_rollback(unwanted, catalog, server.dialect)
        to_drop = [step.obj.name for step in steps if step.decision is Decision.SEND]
        if to_drop and not dry_run and not yes:
            question = (f"Drop {len(to_drop)} schema object(s) from {executor.target}: "
                        f"{', '.join(to_drop)}?")
            if not console.confirm(question):
                raise UsageError("rollback not confirmed; nothing was dropped")
        assert run.progress is not None
        executor.execute(steps, dry_run=dry_run, progress=run.progress)
        refused = any(step.decision is Decision.REFUSE for step in steps)
        if dry_run:
            return ExitCode.REFUSED if refused else ExitCode.OK
        # Nothing sent, nothing changed by this run: the catalog just read is the proof, and a
        # no-op rollback (every deploy's init job) saves two more catalog reads.
        code = _verify(run, executor, unwanted, State.ABSENT,
                       catalog=None if to_drop else catalog)
        return ExitCode.REFUSED if refused else code

    return body


def _verify(run: Run, executor: Executor, objects: tuple[SchemaObject, ...],
            expected: State, *, catalog: Catalog | None = None) -> ExitCode:
    """Report each object as the catalog (re-read unless given) holds it; exit 4 unless all
    are as expected."""
    if catalog is None:
        catalog = executor.read_catalog()
    ok = True
    for obj in objects:
        found = assess(obj, catalog)
        good = (found.state is State.PRESENT if expected is State.PRESENT
                else found.state in (State.ABSENT, State.EQUIVALENT))
        ok = ok and good
        _emit_object(run.log, found, level="info" if good else "warning")
    return ExitCode.OK if ok else ExitCode.REFUSED


def _emit_object(log: events.EventLog, found: Any, *, level: str = "info") -> None:
    log.emit(events.OBJECT, level=level, object=found.obj.name, kind=found.obj.kind.value,
             version=found.obj.version, state=found.state.value, detail=found.detail(),
             live=found.live.describe() if found.live else None,
             equivalents=[obj.name for obj in found.equivalents] or None)


def status_body(table: Table, to: int, expect: Expect | None,
                ) -> Callable[[Run, Executor, Server], ExitCode]:
    """Report every table object's state; with --expect, exit 4 unless the database matches."""

    def body(run: Run, executor: Executor, server: Server) -> ExitCode:
        catalog = executor.read_catalog()
        ok = True
        for obj in table.objects:
            found = assess(obj, catalog)
            if expect == "absent":
                good = found.state is State.ABSENT
            elif expect == "applied":
                good = found.state is (State.PRESENT if obj.version <= to else State.ABSENT)
            else:
                good = True
            ok = ok and good
            _emit_object(run.log, found, level="info" if good else "warning")
        return ExitCode.OK if ok else ExitCode.REFUSED

    return body
