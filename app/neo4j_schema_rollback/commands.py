"""apply / rollback / status / statements: settings -> catalog -> plan -> runner.

Plain typed functions: the connected ones take a run session (session.Run) and return OK or
REFUSED, raising domain errors for everything else; `statements` writes to a stream. The CLI
only maps flags onto them; tests call them directly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Literal

from .catalog import Catalog
from .dialect import LINES, ServerVersion, UnsupportedServer, dialect_for, lacking
from .errors import INDEX_FAILED, DataConflict, ExitCode, ServerTooOld, StatementFailed, UsageError
from .plan import (
    Assessment,
    Decision,
    State,
    Step,
    assess,
    plan_all,
    plan_apply,
    plan_rollback,
    refuse_duplicates,
    to_preflight,
)
from .runner import PrintSink, run_steps
from .session import Run
from .settings import DEFAULT_INDEX_TIMEOUT
from .table import Definition, Kind, SchemaObject, Table

if TYPE_CHECKING:
    from .preflight import Finding
    from .session import Database

Action = Literal["apply", "rollback"]
Expect = Literal["applied", "absent"]


def check_to(table: Table, to: int | None, default: int) -> int:
    """Validate a --to version against the table."""
    if to is None:
        return default
    if not 0 <= to <= table.newest:
        raise UsageError(f"--to {to} is out of range: table {table.name} has versions "
                         f"0..{table.newest}")
    return to


def statements(out: IO[str], table: Table, action: Action = "apply",
               server_version: str = "5.26", to: int | None = None) -> None:
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
        objects = table.up_to(check_to(table, to, table.newest))
    else:
        objects = table.above(check_to(table, to, 0))
    # The edition is not known offline: Enterprise-only kinds are printed.
    refusal = lacking(objects, version, None)
    if refusal is not None:
        raise UsageError(f"table {table.name}: {refusal}")
    run_steps(plan_all("create" if action == "apply" else "drop", objects, dialect),
              PrintSink(out))


def check_table(out: IO[str], table: Table) -> None:
    """Say that the table is valid, then write its statements for each server line, or why a
    line cannot hold it."""
    out.write(f"// table {table.name}: valid; objects: {len(table.objects)}, versions: "
              f"1..{table.newest}\n")
    for version in LINES:
        for action, order in (("apply", "oldest first"), ("rollback", "newest first")):
            refusal = lacking(table.objects, version, None)
            if refusal is not None:
                out.write(f"// Neo4j {version.short}: refused: {refusal}\n")
                break
            out.write(f"// Neo4j {version.short}: {action} ({order})\n")
            statements(out, table, action, str(version))  # type: ignore[arg-type]


def connect(run: Run, objects: Sequence[SchemaObject]) -> Database:
    """Open the database and refuse, before any statement about the table, a table whose
    objects the server cannot hold."""
    db = run.connect()
    refusal = lacking(objects, run.server.version, run.server.edition)
    if refusal is not None:
        raise UsageError(f"table {run.table.name}: {refusal}",
                         hint="nothing was sent; use a server that has it or another table")
    return db


def apply(run: Run, *, to: int | None = None, dry_run: bool = False,
          index_timeout: str | None = None) -> ExitCode:
    """Create objects of version <= `to`, await their indexes, then prove each one exists.
    A uniqueness constraint whose data hold duplicates is refused before anything is sent."""
    table = run.table
    target = check_to(table, to, table.newest)
    timeout = run.duration(index_timeout, "--index-timeout", "NEO4J_INDEX_TIMEOUT",
                           DEFAULT_INDEX_TIMEOUT)
    run.start(to=target, dry_run=dry_run)
    wanted = table.up_to(target)
    db = connect(run, wanted)
    # Every check before the first CREATE: a refusal never follows a half-applied run.
    catalog = db.read_catalog()
    steps = plan_apply(wanted, catalog, run.server.dialect)
    findings = preflight(db, steps, catalog,
                         stopped="nothing was planned" if dry_run else "nothing was created")
    steps = refuse_duplicates(steps, findings)
    run_steps(steps, run.sink(dry_run), stop=run.stop,
              progress=None if dry_run else run.progress)
    if dry_run:
        conflict(findings, "would be refused")
        return _refused_if_any(steps)
    failed = db.await_online([obj.name for obj in wanted], timeout)
    if failed:
        # The server's failure message carries a Java stack trace; its first line says why.
        detail = "; ".join(
            f"{row['name']}: {(row.get('failureMessage') or 'no message').splitlines()[0]}"
            for row in failed)
        raise StatementFailed(f"index FAILED: {detail}", hint="drop it and apply again once the "
                              "cause is fixed", error_class=INDEX_FAILED)
    code = report(run, db.read_catalog(), wanted, lambda found: found.state is State.PRESENT,
                  findings)
    conflict(findings, "not created")
    return code


def rollback(run: Run, *, to: int = 0, yes: bool = False, dry_run: bool = False) -> ExitCode:
    """Drop objects of version > `to`, newest first, each only if its definition matches."""
    table = run.table
    keep = check_to(table, to, 0)
    run.start(to=keep, dry_run=dry_run)
    if not (yes or dry_run or run.console.interactive):
        raise UsageError("rollback drops schema objects: pass --yes to confirm when not "
                         "on a terminal, or --dry-run to preview")
    unwanted = table.above(keep)
    db = connect(run, unwanted)
    catalog = db.read_catalog()
    steps = plan_rollback(unwanted, catalog, run.server.dialect)
    to_drop = [step.obj.name for step in steps if step.decision is Decision.SEND]
    if to_drop and not dry_run and not yes:
        question = (f"Drop {len(to_drop)} schema object(s) from {run.target}: "
                    f"{', '.join(to_drop)}?")
        if not run.console.confirm(question):
            raise UsageError("rollback not confirmed; nothing was dropped")
    run_steps(steps, run.sink(dry_run), stop=run.stop,
              progress=None if dry_run else run.progress)
    refused = _refused_if_any(steps)
    if dry_run:
        return refused
    # Nothing sent, nothing changed by this run: the catalog just read is the proof, and a
    # no-op rollback (every deploy's init job) saves two more catalog reads.
    code = report(run, db.read_catalog() if to_drop else catalog, unwanted,
                  lambda found: found.state in (State.ABSENT, State.EQUIVALENT))
    return refused if refused is ExitCode.REFUSED else code


def status(run: Run, *, to: int | None = None, expect: Expect | None = None) -> ExitCode:
    """Report every table object's state; with `expect`, REFUSED unless the database matches.
    A uniqueness constraint that `apply --to` would create is reported with the duplicates that
    would stop it."""
    table = run.table
    target = check_to(table, to, table.newest)
    run.start(to=target, dry_run=False)
    # As apply --to: objects above the target only need to be absent, which a server that
    # cannot hold their kind always has them.
    db = connect(run, table.up_to(target))

    def good(found: Assessment) -> bool:
        if expect == "absent":
            return found.state is State.ABSENT
        if expect == "applied":
            return found.state is (State.PRESENT if found.obj.version <= target
                                   else State.ABSENT)
        return True

    catalog = db.read_catalog()
    findings = preflight(db, plan_apply(table.up_to(target), catalog, run.server.dialect),
                         catalog, stopped="no object was reported")
    return report(run, catalog, table.objects, good, findings)


def report(run: Run, catalog: Catalog, objects: Sequence[SchemaObject],
           good: Callable[[Assessment], bool],
           findings: Mapping[str, Finding] | None = None) -> ExitCode:
    """Log each object as the catalog holds it (with its duplicates, when it has any); REFUSED
    unless every one is `good`."""
    ok = True
    for obj in objects:
        found = assess(obj, catalog)
        fine = good(found)
        ok = ok and fine
        run.object(found, good=fine, duplicates=(findings or {}).get(obj.name))
    return ExitCode.OK if ok else ExitCode.REFUSED


def preflight(db: Database, steps: Sequence[Step], catalog: Catalog, *,
              stopped: str) -> dict[str, Finding]:
    """The duplicates of each uniqueness constraint the steps would create, by object name
    (`stopped`: what a count beyond --timeout leaves undone, in its message)."""
    return {obj.name: found for obj in to_preflight(steps)
            if (found := db.duplicates(obj, indexed=indexed(catalog, obj),
                                       stopped=stopped)) is not None}


def indexed(catalog: Catalog, obj: SchemaObject) -> bool:
    """An ONLINE range (4.4: BTREE) index on the object's label and properties exists."""
    d = obj.definition
    on = Definition(Kind.RANGE_INDEX, d.labels, d.properties, d.entity)
    return any(index.state == "ONLINE" for index in catalog.equivalents(on, besides=""))


def conflict(findings: Mapping[str, Finding], what: str) -> None:
    """Raise DataConflict naming every refused constraint and its duplicates, if any."""
    if findings:
        detail = "; ".join(f"{name} {what}: {found.describe()}"
                           for name, found in findings.items())
        raise DataConflict(f"duplicate data: {detail}",
                           hint="make those values unique, then apply again")


def _refused_if_any(steps: Sequence[Step]) -> ExitCode:
    refused = any(step.decision is Decision.REFUSE for step in steps)
    return ExitCode.REFUSED if refused else ExitCode.OK
