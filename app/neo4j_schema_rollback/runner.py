"""The one runner of a plan's steps, and the sinks they go to: live, dry run or print.

The runner decides the order, stops between statements on a signal or after a failure, and
keeps track of what changed; a sink decides what carrying out a step means.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Protocol

from .errors import Interrupted, StatementFailed
from .plan import Decision, Step

if TYPE_CHECKING:  # types only: a Protocol class costs every start, `statements` included
    from .connection import Connection
    from .session import Run
    from .signals import StopFlag

    class Sink(Protocol):
        """Where the steps of a run go; called once per step, in the plan's order."""

        def send(self, step: Step) -> str:
            """Carry out a SEND step and return its outcome: applied, skipped (the server
            changed nothing) or planned. Raise StatementFailed, or Interrupted by a second
            signal."""
            ...

        def note(self, step: Step, outcome: str, reason: str | None) -> None:
            """Record a step that is not sent: skipped or refused, and why."""
            ...


class Progress:
    """Which table objects a run changed, and which it meant to change but did not."""

    # A plain class, like dialect.Server: a dataclass would cost every start.
    __slots__ = ("done", "pending")

    def __init__(self) -> None:
        self.done: list[str] = []
        self.pending: list[str] = []


def run_steps(steps: Sequence[Step], sink: Sink, *, stop: StopFlag | None = None,
              progress: Progress | None = None) -> None:
    """Send each SEND step to `sink` in order, stopping at the first failure or signal; the
    steps not sent are noted too: skipped, refused, or skipped because of the stop.
    `progress`, when given, tracks the objects changed and those still pending."""
    if progress is not None:
        progress.pending.extend(s.obj.name for s in steps if s.decision is Decision.SEND)
    for index, step in enumerate(steps):
        try:
            if stop is not None:
                stop.check()
        except Interrupted:
            _not_sent(sink, steps[index:], "not sent: the run was interrupted")
            raise
        if step.decision is not Decision.SEND:
            outcome = "skipped" if step.decision is Decision.SKIP else "refused"
            sink.note(step, outcome, step.reason)
            continue
        try:
            outcome = sink.send(step)
        except StatementFailed:
            _not_sent(sink, steps[index + 1:], "not sent: an earlier statement failed")
            raise
        except Interrupted:
            _not_sent(sink, steps[index + 1:], "not sent: the run was interrupted")
            raise
        if progress is not None:
            progress.pending.remove(step.obj.name)
            if outcome == "applied":  # a no-op (someone else got there first) is not ours
                progress.done.append(step.obj.name)


def _not_sent(sink: Sink, steps: Sequence[Step], reason: str) -> None:
    for step in steps:
        if step.decision is Decision.SEND:
            sink.note(step, "skipped", reason)


class DryRunSink:
    """Logs every step as planned; sends nothing."""

    def __init__(self, run: Run) -> None:
        self._run = run

    def send(self, step: Step) -> str:
        self.note(step, "planned", "dry run: not sent")
        return "planned"

    def note(self, step: Step, outcome: str, reason: str | None) -> None:
        self._run.statement(step.action, step.obj, step.cypher, outcome, reason=reason,
                            duplicates=step.duplicates.fields() if step.duplicates else None)


class LiveSink(DryRunSink):
    """Sends each step to the server; a no-op (IF [NOT] EXISTS met) is logged as skipped."""

    def __init__(self, run: Run, connection: Connection) -> None:
        super().__init__(run)
        self._connection = connection

    def send(self, step: Step) -> str:
        return self._connection.send_step(step)


class PrintSink:
    """Writes each statement's Cypher, one per line ending in ';' (the offline output)."""

    def __init__(self, out: IO[str]) -> None:
        self._out = out

    def send(self, step: Step) -> str:
        self._out.write(f"{step.cypher};\n")
        return "planned"

    def note(self, step: Step, outcome: str, reason: str | None) -> None:
        pass  # only what would be sent is printed
