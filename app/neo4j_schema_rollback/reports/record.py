"""The run's events folded into what every report shows: its properties, one case per table
object and action with a verdict, the run's error and its end. Pure: events in, a Record out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Verdict = Literal["pass", "skip", "failure", "error"]
Event = tuple[str, str, Mapping[str, Any]]  # name, level, fields: what Run.emit is given

# A statement outcome as a test result. A new outcome is one line here (an unknown one fails
# the case rather than passing it unseen).
VERDICTS: dict[str, Verdict] = {
    "applied": "pass",
    "skipped": "skip",
    "planned": "skip",
    "refused": "failure",
    "failed": "failure",
}
TABLE_ACTIONS = ("create", "drop")
# run.start and server fields kept as the run's properties, in this order, under these names.
PROPERTIES = (
    ("command", "command"),
    ("table", "table"), ("to", "to"), ("target", "target"), ("database", "database"),
    ("dry_run", "dry_run"), ("agent", "server_agent"), ("version", "server_version"),
    ("edition", "server_edition"), ("dialect", "dialect"),
)


@dataclass
class Failure:
    """Why a case or the run did not pass: the server's (or the tool's) words."""

    message: str
    code: str | None = None
    error_class: str | None = None
    gql_status: str | None = None
    gql_status_description: str | None = None

    @property
    def type(self) -> str | None:
        """The most specific name of the failure: its class, else its code."""
        return self.error_class or self.code

    def codes(self) -> str:
        """`code`, `gql_status` and `error_class` that are known, e.g. 'Neo.X; 42N01; syntax'."""
        known = (self.code, self.gql_status, self.error_class)
        return "; ".join(part for part in known if part)


@dataclass
class Case:
    """One table object and action (create, drop, or status) and its result."""

    action: str
    name: str
    kind: str | None
    outcome: str
    verdict: Verdict
    level: str
    cypher: str | None = None
    detail: str | None = None
    duration_ms: float | None = None
    failure: Failure | None = None


@dataclass
class Record:
    """What the reports show of one run."""

    command: str
    properties: dict[str, str] = field(default_factory=dict)
    cases: list[Case] = field(default_factory=list)
    error: Failure | None = None
    exit_code: int | None = None
    outcome: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    duration_ms: float | None = None
    started_at: str | None = None

    @property
    def run_failure(self) -> Failure | None:
        """The run's error when no case's failed statement carries it already: a connection,
        login, usage or internal failure, an interrupt, an index that failed."""
        if self.error is None or any(case.outcome == "failed" for case in self.cases):
            return None
        return self.error

    def first_problem(self) -> str | None:
        """The run's error, else the first case that failed: one line."""
        if self.error is not None:
            return _with_codes(self.error)
        for case in self.cases:
            if case.verdict in ("failure", "error"):
                return f"{case.action} {case.name} {case.outcome}: {case.detail or ''}".rstrip(
                    ": ")
        return None


def _with_codes(failure: Failure) -> str:
    codes = failure.codes()
    return f"{failure.message} [{codes}]" if codes else failure.message


def _failure(fields: Mapping[str, Any], nested: Mapping[str, Any] | None = None) -> Failure:
    # A failed statement carries the server's words in its `error` object, the run's `error`
    # event at its top level; error classes and GQL status descriptions may be at either.
    inner = nested or {}

    def pick(key: str) -> Any:
        value = inner.get(key)
        return value if value is not None else fields.get(key)

    return Failure(message=str(pick("message") or ""), code=pick("code"),
                   error_class=pick("error_class"), gql_status=pick("gql_status"),
                   gql_status_description=pick("gql_status_description"))


def fold(events: Iterable[Event], *, started_at: str | None = None,
         identity: Mapping[str, str] | None = None) -> Record:
    """Fold the run's events, in order, into its Record; `identity` holds the fields every
    log line carries (run_id, tool_version) and the command (before run.start says it)."""
    identity = dict(identity or {})
    record = Record(command=identity.pop("command", ""), started_at=started_at,
                    properties=identity)
    cases: dict[tuple[str, str], Case] = {}
    for name, level, fields in events:
        if name in ("run.start", "server"):
            if name == "run.start":
                record.command = str(fields.get("command") or "")
            for key, shown in PROPERTIES:
                if fields.get(key) is not None:
                    record.properties[shown] = _text(fields[key])
        elif name == "statement" and fields.get("action") in TABLE_ACTIONS and fields.get(
                "object"):
            outcome = str(fields.get("outcome"))
            error = fields.get("error")
            case = Case(action=str(fields["action"]), name=str(fields["object"]),
                        kind=fields.get("kind"), outcome=outcome,
                        verdict=VERDICTS.get(outcome, "failure"), level=level,
                        cypher=fields.get("cypher"), detail=fields.get("reason"),
                        duration_ms=fields.get("duration_ms"),
                        failure=_failure(fields, error) if isinstance(error, Mapping) else None)
            if case.failure is not None:
                case.detail = case.failure.message
            cases[(case.action, case.name)] = case
        elif name == "object":
            _verify(cases, record.command, level, fields)
        elif name == "error":
            record.error = _failure(fields)
        elif name == "run.end":
            record.exit_code = fields.get("exit_code")
            record.outcome = fields.get("outcome")
            record.counts = dict(fields.get("counts") or {})
            record.duration_ms = fields.get("duration_ms")
            for key in ("outcome", "exit_code"):
                record.properties[key] = _text(fields.get(key))
            _unfinished(cases, fields.get("not_done") or ())
    record.cases = list(cases.values())
    return record


def _verify(cases: dict[tuple[str, str], Case], command: str, level: str,
            fields: Mapping[str, Any]) -> None:
    """An `object` event: the whole case under `status`; after apply or rollback, a failed
    verification fails the object's create or drop case."""
    name = str(fields.get("object"))
    good = level == "info"
    detail = str(fields.get("detail") or fields.get("state") or "")
    if fields.get("live"):
        detail += f" (live: {fields['live']})"
    action = {"apply": "create", "rollback": "drop"}.get(command, "status")
    case = cases.get((action, name))
    if case is None:
        cases[(action, name)] = Case(
            action=action, name=name, kind=fields.get("kind"), outcome=str(fields.get("state")),
            verdict="pass" if good else "failure", level=level, detail=detail)
    elif not good and case.verdict in ("pass", "skip"):
        case.verdict, case.level = "failure", level
        case.detail = f"verification: {detail}"


def _unfinished(cases: dict[tuple[str, str], Case], not_done: Iterable[str]) -> None:
    """Objects the run meant to change but did not (interrupted, or after a failure) are
    errors unless their own statement failed."""
    pending = set(not_done)
    for case in cases.values():
        if case.name in pending and case.verdict in ("pass", "skip"):
            case.verdict = "error"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
