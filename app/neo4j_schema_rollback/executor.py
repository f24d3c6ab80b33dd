"""The one place that talks to Neo4j: connects, reads the catalog, runs steps, awaits indexes.

Every statement it sends is logged as one `statement` event with its exact text, outcome,
timing, the server's counters and notifications.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import neo4j
from neo4j import exceptions as nx

from . import events
from .catalog import Catalog
from .dialect import Dialect, ServerVersion, UnsupportedServer, dialect_for
from .errors import (
    ConnectionFailed,
    Interrupted,
    ServerTooOld,
    StatementFailed,
    UsageError,
)
from .plan import Decision, Step
from .settings import ConnectionSettings
from .signals import StopFlag
from .table import SchemaObject

APP_NAME = "neo4j-schema-rollback"
SHOW_CONSTRAINTS = "SHOW CONSTRAINTS YIELD *"
SHOW_INDEXES = "SHOW INDEXES YIELD *"
COMPONENTS = "CALL dbms.components() YIELD name, versions, edition"
INDEX_STATES = (
    "SHOW INDEXES YIELD name, state, populationPercent, failureMessage WHERE name IN $names"
)
# Errors that mean "not reachable or not serving yet": worth another try while --wait lasts.
_RETRYABLE = (nx.ServiceUnavailable, nx.SessionExpired, nx.TransientError, OSError)


@dataclass(frozen=True)
class Server:
    """What the server said about itself on connect."""

    agent: str
    version: ServerVersion
    edition: str
    dialect: Dialect


@dataclass
class Progress:
    """Which table objects a run changed, and which it meant to change but did not."""

    done: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)


def _auth(settings: ConnectionSettings) -> Any:
    if settings.username is None:
        return None
    return neo4j.basic_auth(settings.username, settings.password or "")


def _one_line(text: str) -> str:
    joined = "; ".join(" ".join(line.split()) for line in text.splitlines() if line.strip())
    # Server and driver messages may quote user input (a URI's query): no escape sequences.
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in joined)


def _error_fields(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, nx.Neo4jError):
        return {"code": exc.code, "gql_status": exc.gql_status,
                "message": _one_line(exc.message or str(exc))}
    return {"code": type(exc).__name__, "gql_status": None,
            "message": _one_line(str(exc) or repr(exc))}


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


def _retry_schema_race(exc: Exception) -> bool:
    return isinstance(exc, nx.TransientError) or (
        isinstance(exc, nx.Neo4jError) and exc.code in _SCHEMA_RACES)


def _judge(counters: dict[str, int]) -> tuple[str, str | None]:
    # IF [NOT] EXISTS turns a statement into a no-op when someone got there first: the counters,
    # not the absence of an error, tell whether it changed anything.
    if counters:
        return "applied", None
    return "skipped", "sent, but the server changed nothing"


class Executor:
    """Owns the driver and session for one run."""

    def __init__(self, settings: ConnectionSettings, log: events.EventLog, stop: StopFlag,
                 *, run_id: str, tool_version: str) -> None:
        self._settings = settings
        self._log = log
        self._stop = stop
        self._metadata = {"app": APP_NAME, "run_id": run_id}
        self._user_agent = f"{APP_NAME}/{tool_version}"
        self._driver: neo4j.Driver | None = None
        _quiet_driver_logging()
        self._session: neo4j.Session | None = None

    @property
    def target(self) -> str:
        """The URI (without credentials) and database, for messages."""
        database = self._settings.database or "the home database"
        return f"{self._settings.redacted_uri} ({database})"

    # -- connecting ---------------------------------------------------------------------------

    def connect(self) -> Server:
        """Open the driver, retrying unreachable servers until --wait runs out, then identify
        the server. A failed login is never retried."""
        settings = self._settings
        deadline = time.monotonic() + settings.wait
        attempt = 0
        while True:
            attempt += 1
            self._stop.check()
            try:
                self._open()
                return self._identify()
            except nx.ConfigurationError as exc:
                self.close()
                raise UsageError(f"the driver rejects the settings for {settings.redacted_uri}: "
                                 f"{_one_line(str(exc))}") from None
            except StatementTimeout as exc:
                raise ConnectionFailed(f"{settings.redacted_uri} did not answer: {exc}",
                                       hint="check the server's health") from None
            except nx.AuthError as exc:
                self.close()
                user = settings.username or "(none)"
                raise ConnectionFailed(
                    f"authentication failed for user {user} at {settings.redacted_uri}",
                    hint="check NEO4J_PASSWORD (or NEO4J_USERNAME)", code=exc.code) from None
            except nx.ClientError as exc:
                self.close()
                if exc.code == "Neo.ClientError.Database.DatabaseNotFound":
                    raise ConnectionFailed(
                        f"database {settings.database!r} not found at {settings.redacted_uri}",
                        hint="check NEO4J_DATABASE or --database", code=exc.code) from None
                raise ConnectionFailed(
                    f"{settings.redacted_uri} refused the connection: {exc.message}",
                    code=exc.code) from None
            except _RETRYABLE as exc:
                self.close()
                remaining = deadline - time.monotonic()
                reason = _error_fields(exc)["message"]
                if remaining <= 0:
                    hint = ("is Neo4j running and reachable? --wait retries while it starts"
                            if settings.wait == 0 else f"gave up after {attempt} attempts")
                    raise ConnectionFailed(f"cannot connect to {settings.redacted_uri}: "
                                           f"{reason}", hint=hint) from None
                delay = min(remaining, min(8.0, 0.25 * 2 ** (attempt - 1)) * random.uniform(0.5, 1))
                self._log.emit(events.WAIT, attempt=attempt, target=settings.redacted_uri,
                               error=reason, retry_in_ms=round(delay * 1000),
                               remaining_ms=round(remaining * 1000))
                self._sleep(delay)

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self._stop.check()
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
        records, _ = self._send_logged(COMPONENTS, action="inspect")
        kernel = next((r for r in records if r["name"] == "Neo4j Kernel"), records[0])
        raw_version = str(kernel["versions"][0])
        version = ServerVersion.parse(raw_version)
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

    def run(self, cypher: str, *, action: str, parameters: dict[str, Any] | None = None,
            ) -> list[dict[str, Any]]:
        """Send one statement, log it, and turn a failure into StatementFailed."""
        return self._checked(cypher, action=action, parameters=parameters)[0]

    def _checked(self, cypher: str, *, action: str, obj: SchemaObject | None = None,
                 **options: Any) -> tuple[list[dict[str, Any]], neo4j.ResultSummary]:
        """`_send_logged`, with a failure (other than a signal) raised as StatementFailed."""
        try:
            return self._send_logged(cypher, action=action, obj=obj, **options)
        except Interrupted:
            raise
        except Exception as exc:
            error = _error_fields(exc)
            what = f"{action} {obj.name}" if obj is not None else action
            raise StatementFailed(f"{what} failed: {error['message']}",
                                  code=error["code"]) from None

    def _send_logged(self, cypher: str, *, action: str, obj: SchemaObject | None = None,
                     parameters: dict[str, Any] | None = None,
                     judge: Callable[[dict[str, int]], tuple[str, str | None]] | None = None,
                     retry: Callable[[Exception], bool] | None = None,
                     ) -> tuple[list[dict[str, Any]], neo4j.ResultSummary]:
        """Send one statement in its own auto-commit transaction and log it once, raising the
        driver's own exception on failure (after logging it). Attempts that `retry` accepts
        are sent again, up to MAX_ATTEMPTS, and listed in the event's `retries`."""
        assert self._session is not None
        started = time.monotonic()
        query = neo4j.Query(cypher, metadata=self._metadata, timeout=self._settings.timeout)
        retries: list[dict[str, Any]] = []
        session = self._session

        def send() -> tuple[list[dict[str, Any]], neo4j.ResultSummary]:
            result = session.run(query, parameters)
            return [record.data() for record in result], result.consume()

        while True:
            try:
                records, summary = self._bounded(send)
                break
            except Interrupted as exc:
                # A second signal while the statement was in flight: it is abandoned.
                self._statement(action, obj, cypher, "failed", started, retries=retries,
                                error={"code": "Interrupted", "gql_status": None,
                                       "message": f"{exc.message}; the outcome is unknown"})
                raise
            except Exception as exc:
                if retry is None or not retry(exc) or len(retries) + 1 >= MAX_ATTEMPTS:
                    self._statement(action, obj, cypher, "failed", started,
                                    error=_error_fields(exc), retries=retries)
                    raise
                retries.append(_error_fields(exc))
                # Part of the same statement: a stop request waits for its last attempt.
                time.sleep(0.05 * 2 ** len(retries) * random.uniform(0.5, 1.5))
        counters = _counters(summary)
        outcome, reason = judge(counters) if judge is not None else ("applied", None)
        self._statement(action, obj, cypher, outcome, started, reason=reason,
                        counters=counters, notifications=_notifications(summary),
                        retries=retries)
        return records, summary

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

    def _statement(self, action: str, obj: SchemaObject | None, cypher: str, outcome: str,
                   started: float | None = None, **fields: Any) -> None:
        duration = round((time.monotonic() - started) * 1000, 1) if started is not None else None
        level = {"failed": "error", "refused": "warning"}.get(outcome, "info")
        self._log.emit(
            events.STATEMENT, level=level, action=action,
            object=obj.name if obj else None, kind=obj.kind.value if obj else None,
            cypher=cypher, outcome=outcome, duration_ms=duration,
            **{k: v for k, v in fields.items() if v not in (None, {}, [])},
        )

    def read_catalog(self) -> Catalog:
        """Read constraints and indexes once, as two logged statements."""
        constraints = self.run(SHOW_CONSTRAINTS, action="inspect")
        indexes = self.run(SHOW_INDEXES, action="inspect")
        return Catalog.from_rows(constraints, indexes)

    def execute(self, steps: Sequence[Step], *, dry_run: bool, progress: Progress) -> None:
        """Send each SEND step in order, stopping at the first failure or signal. Steps not
        sent are logged too: skipped, refused or planned, each with its reason."""
        if not dry_run:
            progress.pending.extend(s.obj.name for s in steps if s.decision is Decision.SEND)
        for index, step in enumerate(steps):
            try:
                self._stop.check()
            except Interrupted:
                self._not_sent(steps[index:], "not sent: the run was interrupted")
                raise
            if step.decision is Decision.SKIP:
                self._statement(step.action, step.obj, step.cypher, "skipped", reason=step.reason)
            elif step.decision is Decision.REFUSE:
                self._statement(step.action, step.obj, step.cypher, "refused", reason=step.reason)
            elif dry_run:
                self._statement(step.action, step.obj, step.cypher, "planned",
                                reason="dry run: not sent")
            else:
                try:
                    outcome = self._send(step)
                except StatementFailed:
                    self._not_sent(steps[index + 1:], "not sent: an earlier statement failed")
                    raise
                except Interrupted:
                    self._not_sent(steps[index + 1:], "not sent: the run was interrupted")
                    raise
                progress.pending.remove(step.obj.name)
                if outcome == "applied":  # a no-op (someone else got there first) is not ours
                    progress.done.append(step.obj.name)

    def _not_sent(self, steps: Iterable[Step], reason: str) -> None:
        for step in steps:
            if step.decision is Decision.SEND:
                self._statement(step.action, step.obj, step.cypher, "skipped", reason=reason)

    def _send(self, step: Step) -> str:
        """Send one table statement; return its outcome (applied, or skipped for a no-op)."""
        _, summary = self._checked(step.cypher, action=step.action, obj=step.obj,
                                   judge=_judge, retry=_retry_schema_race)
        return _judge(_counters(summary))[0]

    # -- waiting for indexes ------------------------------------------------------------------

    def await_online(self, names: Sequence[str], timeout: float,
                     on_progress: Callable[[dict[str, Any]], None]) -> list[dict[str, Any]]:
        """Poll until every named index is ONLINE; return the FAILED ones, raise on timeout."""
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            self._stop.check()
            rows = self.run(INDEX_STATES, action="await", parameters={"names": list(names)})
            failed = [row for row in rows if row.get("state") == "FAILED"]
            waiting = [row for row in rows if row.get("state") not in ("ONLINE", "FAILED")]
            if failed or not waiting:
                return failed
            for row in waiting:
                on_progress(row)
            if time.monotonic() >= deadline:
                names_left = ", ".join(str(row["name"]) for row in waiting)
                raise StatementFailed(
                    f"indexes not ONLINE after {timeout:g} s: {names_left}",
                    hint="raise --index-timeout, or check the server's load")
            self._sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 1.0)
