"""The one owner of the driver: connects (retrying while --wait lasts), identifies the server,
sends statements and turns driver errors into the tool's own.

Every statement it sends is logged once, as a `statement` event with its exact text, outcome,
timing, the server's counters and notifications. The only module that imports the driver.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import neo4j
from neo4j import exceptions as nx

from . import PROG, errors, events
from .catalog import Catalog
from .dialect import Server, ServerVersion, UnsupportedServer, dialect_for
from .driver_errors import Cause, explain, one_line
from .errors import ConnectionFailed, Interrupted, ServerTooOld, StatementFailed, UsageError
from .plan import Step
from .runner import LiveSink
from .settings import ConnectionSettings
from .table import SchemaObject
from .waiting import Pacer, probe

if TYPE_CHECKING:
    from .preflight import Finding
    from .runner import Sink
    from .session import Run

SHOW_CONSTRAINTS = "SHOW CONSTRAINTS YIELD *"
SHOW_INDEXES = "SHOW INDEXES YIELD *"
COMPONENTS = "CALL dbms.components() YIELD name, versions, edition"
INDEX_STATES = (
    "SHOW INDEXES YIELD name, state, populationPercent, failureMessage WHERE name IN $names"
)
# Errors that mean "not reachable or not serving yet": worth another try while --wait lasts.
_RETRYABLE = (nx.ServiceUnavailable, nx.SessionExpired, nx.TransientError, OSError)


class Answer:
    """What one statement returned, and the outcome it was logged with."""

    __slots__ = ("outcome", "records")  # a plain class, like dialect.Server

    def __init__(self, records: list[dict[str, Any]], outcome: str) -> None:
        self.records = records
        self.outcome = outcome


def _auth(settings: ConnectionSettings) -> Any:
    if settings.username is None:
        return None
    return neo4j.basic_auth(settings.username, settings.password or "")


def _error_fields(exc: BaseException, cause: Cause) -> dict[str, Any]:
    """A statement event's `error` (and each of its `retries`): the server's codes, or the
    driver's exception type, and the server's or driver's own text."""
    fields = cause.fields
    return {"code": fields.get("code") or type(exc).__name__,
            "gql_status": fields.get("gql_status"),
            "gql_status_description": fields.get("gql_status_description"),
            "message": cause.text if cause.server else cause.driver_message}


def _statement_cause(exc: BaseException, timeout: float) -> Cause:
    """Why a statement failed: the server's answer, the timeout, or a broken connection."""
    if isinstance(exc, StatementTimeout):
        return Cause(errors.TIMEOUT, str(exc), str(exc))
    cause = explain(exc, timeout=timeout)
    if cause.server or cause.error_class in (errors.TLS, errors.ROUTING):
        return cause
    text = cause.text if cause.error_class == errors.CONNECTION_LOST else (
        f"the connection to the server broke ({cause.text})")
    return Cause(errors.CONNECTION_LOST, f"{text}; its outcome is unknown",
                 cause.driver_message)


def _without_none(fields: dict[str, Any]) -> dict[str, Any]:
    # gql_status stays, null when the server sent none, as it always was
    return {k: v for k, v in fields.items() if v is not None or k == "gql_status"}


def _address(settings: ConnectionSettings) -> str:
    host = settings.target.host
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}:{settings.target.port or BOLT_PORT}"


def _quiet_driver_logging() -> None:
    # The driver warns through `logging`, which would print unstructured text on stderr; every
    # failure it reports reaches us as an exception and is logged as an event instead.
    logger = logging.getLogger("neo4j")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False


def _counters(summary: neo4j.ResultSummary) -> dict[str, int]:
    raw = summary.counters
    names = ("nodes_created", "nodes_deleted", "relationships_created", "relationships_deleted",
             "properties_set", "labels_added", "labels_removed", "indexes_added",
             "indexes_removed", "constraints_added", "constraints_removed", "system_updates")
    return {name: value for name in names if (value := getattr(raw, name, 0))}


def _notifications(summary: neo4j.ResultSummary) -> list[dict[str, Any]]:
    return [
        {"code": status.gql_status, "severity": status.raw_severity,
         "description": status.status_description}
        for status in summary.gql_status_objects
        if status.is_notification
    ]


MAX_ATTEMPTS = 5
BOLT_PORT = 7687
TIMEOUT_GRACE = 2.0
_T = TypeVar("_T")


class StatementTimeout(Exception):
    """The server did not answer a statement in time; its outcome is unknown."""
# What a guarded (IF [NOT] EXISTS) statement can meet when another run changes the same object at
# the same moment, seen on the real servers: 4.4 reports the object it lost the race to as
# EquivalentSchemaRuleAlreadyExists, 2025+ may detect a deadlock on the label lock. Sending the
# same guarded statement again is safe and settles it.
_SCHEMA_RACES = frozenset({
    "Neo.ClientError.Schema.EquivalentSchemaRuleAlreadyExists",
    "Neo.ClientError.Schema.IndexAlreadyExists",
    "Neo.ClientError.Schema.ConstraintAlreadyExists",
    "Neo.ClientError.Schema.IndexWithNameAlreadyExists",
    "Neo.ClientError.Schema.ConstraintWithNameAlreadyExists",
    "Neo.DatabaseError.Schema.IndexDropFailed",
    "Neo.DatabaseError.Schema.ConstraintDropFailed",
})


# A read that outlived --timeout: the server's transaction timeout (4.4; 5 and later name the
# client's configuration), or no answer at all within the grace period (_bounded).
_TIMED_OUT = frozenset({
    "Neo.ClientError.Transaction.TransactionTimedOut",
    "Neo.ClientError.Transaction.TransactionTimedOutClientConfiguration",
    "StatementTimeout",
})


def _retry_schema_race(exc: Exception) -> bool:
    return isinstance(exc, nx.TransientError) or (
        isinstance(exc, nx.Neo4jError) and exc.code in _SCHEMA_RACES)


def _judge(counters: dict[str, int]) -> tuple[str, str | None]:
    # IF [NOT] EXISTS turns a statement into a no-op when someone got there first: the counters,
    # not the absence of an error, tell whether it changed anything.
    if counters:
        return "applied", None
    return "skipped", "sent, but the server changed nothing"


class Connection:
    """Owns the driver and session of one run; a Database for the run session."""

    def __init__(self, run: Run, settings: ConnectionSettings) -> None:
        self._run = run
        self._settings = settings
        self._metadata = {"app": PROG, "run_id": run.run_id}
        self._user_agent = f"{PROG}/{run.tool_version}"
        self._driver: neo4j.Driver | None = None
        self._session: neo4j.Session | None = None
        self.server: Server | None = None
        self.waited: dict[str, Any] = {}
        """How long open() waited, when its first attempt failed."""
        _quiet_driver_logging()

    # -- connecting ---------------------------------------------------------------------------

    def open(self) -> Server:
        """Open the driver, retrying unreachable servers until --wait runs out, then identify
        the server. A failed login is never retried."""
        settings = self._settings
        began = time.monotonic()
        deadline = began + settings.wait
        target = settings.target

        def show(reason: str) -> None:  # the terminal's progress line, if there is one
            self._run.waiting(time.monotonic() - began, settings.wait, reason)

        pacer = Pacer(clock=time.monotonic, sleep=self._sleep,
                      probe=lambda timeout: probe(target.host, target.port or BOLT_PORT,
                                                  min(timeout, settings.timeout)),
                      tick=show)
        attempt = logged_probes = 0
        while True:
            attempt += 1
            self._run.stop.check()
            attempt_began = time.monotonic()
            try:
                self._open()
                self.server = self._identify()
                if attempt > 1:
                    self.waited = {"waited_ms": round((time.monotonic() - began) * 1000),
                                   "attempts": attempt, "probes": pacer.probes}
                return self.server
            except nx.ConfigurationError as exc:
                self.close()
                raise UsageError(f"the driver rejects the settings for {settings.redacted_uri}: "
                                 f"{one_line(str(exc))}") from None
            except StatementTimeout as exc:
                raise ConnectionFailed(f"{settings.redacted_uri} did not answer: {exc}",
                                       hint="check the server's health",
                                       error_class=errors.TIMEOUT) from None
            except nx.AuthError as exc:
                self.close()
                user = settings.username or "(none)"
                raise self._failed(
                    f"authentication failed for user {user} at {settings.redacted_uri}",
                    explain(exc, timeout=settings.timeout),
                    hint="check NEO4J_PASSWORD (or NEO4J_USERNAME)") from None
            except nx.ClientError as exc:
                self.close()
                cause = explain(exc, timeout=settings.timeout)
                if cause.error_class == errors.DATABASE_NOT_FOUND:
                    raise self._failed(
                        f"database {settings.database!r} not found at {settings.redacted_uri}",
                        cause, hint="check NEO4J_DATABASE or --database") from None
                raise self._failed(f"{settings.redacted_uri} refused the connection: "
                                   f"{cause.text}", cause) from None
            except _RETRYABLE as exc:
                self.close()
                now = time.monotonic()
                cause = explain(exc, timeout=settings.timeout)
                reason = cause.text
                if now >= deadline:
                    hint = cause.hint
                    if settings.wait:
                        gave_up = (f"gave up after {now - began:.1f} s: {attempt} attempts, "
                                   f"{pacer.probes} TCP probes")
                        hint = f"{hint}; {gave_up}" if hint else gave_up
                    elif hint is None and cause.error_class in (errors.UNREACHABLE,
                                                                 errors.TIMEOUT):
                        hint = "is Neo4j running and reachable? --wait retries while it starts"
                    if cause.error_class == errors.DATABASE_UNAVAILABLE:
                        database = settings.database or "the home database"
                        message = (f"{database} at {settings.redacted_uri} is not available: "
                                   f"{reason}")
                    else:
                        message = (f"cannot connect to {_address(settings)} "
                                   f"({settings.redacted_uri}): {reason}")
                    raise self._failed(message, cause, hint=hint) from None
                self._run.emit(events.WAIT, attempt=attempt, target=settings.redacted_uri,
                               error=reason, probes=pacer.probes - logged_probes,
                               waited_ms=round((now - began) * 1000),
                               remaining_ms=round((deadline - now) * 1000))
                logged_probes = pacer.probes
                show(reason)
                pacer.until_next_attempt(attempt_began, deadline)

    @staticmethod
    def _failed(message: str, cause: Cause, *, hint: str | None = None) -> ConnectionFailed:
        return ConnectionFailed(message, hint=hint, error_class=cause.error_class,
                                driver_message=cause.driver_message, **cause.fields)

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self._run.stop.check()
            time.sleep(min(left, 0.1))

    def _open(self) -> None:
        settings = self._settings
        config: dict[str, Any] = {
            "auth": _auth(settings),
            "user_agent": self._user_agent,
            "connection_timeout": settings.timeout,
            "connection_acquisition_timeout": settings.timeout,
            "max_transaction_retry_time": 0,
        }
        if settings.trust.ca_file is not None:
            config["encrypted"] = True
            config["trusted_certificates"] = neo4j.TrustCustomCAs(settings.trust.ca_file)
        self._driver = neo4j.GraphDatabase.driver(settings.driver_uri, **config)
        self._driver.verify_connectivity()
        self._session = self._driver.session(database=settings.database)

    def _identify(self) -> Server:
        # Sent raw: a missing database or a failed login shows here, and open() translates it.
        records = self._send(COMPONENTS, action="inspect").records
        kernel = next((r for r in records if r["name"] == "Neo4j Kernel"), records[0])
        version = ServerVersion.parse(str(kernel["versions"][0]))
        try:
            dialect = dialect_for(version)
        except UnsupportedServer as exc:
            raise ServerTooOld(f"{exc} ({self._settings.redacted_uri})",
                               hint="upgrade the server") from None
        assert self._driver is not None
        agent = self._driver.get_server_info().agent
        return Server(agent=agent, version=version, edition=str(kernel["edition"]),
                      dialect=dialect)

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None
        if self._driver is not None:
            self._driver.close()
            self._driver = None

    # -- statements ---------------------------------------------------------------------------

    def query(self, cypher: str, *, action: str, obj: SchemaObject | None = None,
              parameters: dict[str, Any] | None = None, judged: bool = False,
              retry: Callable[[Exception], bool] | None = None) -> Answer:
        """Send one statement and log it; a failure (other than a signal) is StatementFailed."""
        try:
            return self._send(cypher, action=action, obj=obj, parameters=parameters,
                              judged=judged, retry=retry)
        except Interrupted:
            raise
        except Exception as exc:
            cause = _statement_cause(exc, self._settings.timeout)
            what = f"{action} {obj.name}" if obj is not None else action
            raise StatementFailed(f"{what} failed: {cause.text}", error_class=cause.error_class,
                                  code=_error_fields(exc, cause)["code"],
                                  gql_status=cause.fields.get("gql_status"),
                                  gql_status_description=cause.fields.get(
                                      "gql_status_description"),
                                  driver_message=cause.driver_message) from None

    def _send(self, cypher: str, *, action: str, obj: SchemaObject | None = None,
              parameters: dict[str, Any] | None = None, judged: bool = False,
              retry: Callable[[Exception], bool] | None = None) -> Answer:
        """Send one statement in its own auto-commit transaction and log it once, raising the
        driver's own exception on failure (after logging it). Attempts that `retry` accepts
        are sent again, up to MAX_ATTEMPTS, and listed in the event's `retries`. `judged`: the
        statement should change the schema, and is logged as skipped when it changed nothing."""
        assert self._session is not None
        started = time.monotonic()
        query = neo4j.Query(cypher, metadata=self._metadata, timeout=self._settings.timeout)
        retries: list[dict[str, Any]] = []
        session = self._session

        def send() -> tuple[list[dict[str, Any]], neo4j.ResultSummary]:
            result = session.run(query, parameters)
            return [record.data() for record in result], result.consume()

        def log(outcome: str, **fields: Any) -> None:
            self._run.statement(action, obj, cypher, outcome, started=started, retries=retries,
                                **fields)

        while True:
            try:
                records, summary = self._bounded(send)
                break
            except Interrupted as exc:
                # A second signal while the statement was in flight: it is abandoned.
                log("failed", error_class=errors.INTERRUPTED,
                    error={"code": "Interrupted", "gql_status": None,
                           "message": f"{exc.message}; the outcome is unknown"})
                raise
            except Exception as exc:
                cause = _statement_cause(exc, self._settings.timeout)
                if retry is None or not retry(exc) or len(retries) + 1 >= MAX_ATTEMPTS:
                    log("failed", error_class=cause.error_class,
                        error=_without_none(_error_fields(exc, cause)))
                    raise
                retries.append(_without_none(_error_fields(exc, cause)))
                # Part of the same statement: a stop request waits for its last attempt.
                time.sleep(0.05 * 2 ** len(retries) * random.uniform(0.5, 1.5))
        counters = _counters(summary)
        outcome, reason = _judge(counters) if judged else ("applied", None)
        log(outcome, reason=reason, counters=counters, notifications=_notifications(summary))
        return Answer(records, outcome)

    def _bounded(self, send: Callable[[], _T]) -> _T:
        """Run `send` on a helper thread and stop waiting after --timeout plus a grace period.

        The server's transaction timeout does not cover every wait: a schema command queued
        behind another transaction's lock was seen waiting for 10 minutes with a 2 s timeout.
        The abandoned session is never used again, and closing it is left to process exit.
        """
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                box["value"] = send()
            except BaseException as exc:  # handed to the caller's thread below
                box["error"] = exc

        worker = threading.Thread(target=target, name="statement", daemon=True)
        worker.start()
        limit = self._settings.timeout + TIMEOUT_GRACE
        try:
            worker.join(limit)
        except BaseException:
            self._session = None  # still in use by the worker: never touched again
            self._driver = None
            raise
        if worker.is_alive():
            self._session = None
            self._driver = None
            raise StatementTimeout(f"no answer within --timeout ({limit:g} s including "
                                   f"{TIMEOUT_GRACE:g} s grace); the server may still apply it")
        if "error" in box:
            raise box["error"]
        return box["value"]  # type: ignore[no-any-return]

    # -- what the run session asks of a database ------------------------------------------------

    def read_catalog(self) -> Catalog:
        """Read constraints and indexes once, as two logged statements."""
        constraints = self.query(SHOW_CONSTRAINTS, action="inspect").records
        indexes = self.query(SHOW_INDEXES, action="inspect").records
        return Catalog.from_rows(constraints, indexes)

    def sink(self) -> Sink:
        """Where a live run's steps go: to this server."""
        return LiveSink(self._run, self)

    def send_step(self, step: Step) -> str:
        """Send one table statement; return its outcome (applied, or skipped for a no-op)."""
        return self.query(step.cypher, action=step.action, obj=step.obj, judged=True,
                          retry=_retry_schema_race).outcome

    def duplicates(self, obj: SchemaObject, *, indexed: bool, stopped: str) -> Finding | None:
        """Count the values a uniqueness constraint's data hold twice (one logged statement,
        action `preflight`, bounded by --timeout); `indexed`: an index on its properties;
        `stopped`: what a timeout leaves undone, for its message."""
        from .preflight import count, uniqueness_of

        target = uniqueness_of(obj)
        assert target is not None, f"{obj.name} is no uniqueness constraint"
        try:
            return count(lambda cypher: self.query(cypher, action="preflight", obj=obj).records,
                         target, indexed=indexed)
        except StatementFailed as exc:
            if exc.code not in _TIMED_OUT:
                raise
            raise StatementFailed(
                f"the duplicate check of {obj.name} did not finish within --timeout "
                f"({self._settings.timeout:g} s); {stopped}",
                hint=f"raise --timeout: it reads every {target.describe()}",
                code=exc.code, error_class=errors.TIMEOUT, gql_status=exc.gql_status,
                gql_status_description=exc.gql_status_description,
                driver_message=exc.driver_message) from None

    def await_online(self, names: Sequence[str], timeout: float) -> list[dict[str, Any]]:
        """Poll until no named index is still populating, logging the ones that are; return
        the FAILED ones (at the deadline: those FAILED by then), raise on timeout."""
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            self._run.stop.check()
            rows = self.query(INDEX_STATES, action="await",
                              parameters={"names": list(names)}).records
            failed = [row for row in rows if row.get("state") == "FAILED"]
            waiting = [row for row in rows if row.get("state") not in ("ONLINE", "FAILED")]
            # Waiting on past a first FAILED one names every index that fails, not only those
            # that failed first.
            if not waiting or (failed and time.monotonic() >= deadline):
                return failed
            for row in waiting:
                self._run.emit(events.INDEX_PROGRESS, object=row["name"], state=row["state"],
                               percent=row["populationPercent"])
            self._run.populating([(row["name"], row["populationPercent"]) for row in waiting])
            if time.monotonic() >= deadline:
                names_left = ", ".join(str(row["name"]) for row in waiting)
                raise StatementFailed(
                    f"indexes not ONLINE after {timeout:g} s: {names_left}",
                    hint="raise --index-timeout, or check the server's load",
                    error_class=errors.TIMEOUT)
            self._sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 1.0)
