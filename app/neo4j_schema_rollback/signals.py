"""SIGINT/SIGTERM -> a flag checked between statements, so no statement is cut in half."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

from .errors import Interrupted

# The one-file binary's bootloader forwards each signal it receives to the tool, and a Ctrl-C on
# a terminal reaches both: one keypress arrives twice within milliseconds. A repeat that close
# is the same request, not a second, more urgent one.
REPEAT_WINDOW = 1.0


@dataclass
class StopFlag:
    """Set by a signal handler; checked between statements."""

    signal_name: str | None = None
    first_at: float | None = None

    def check(self) -> None:
        if self.signal_name is not None:
            raise Interrupted(self.signal_name)

    def request(self, name: str, now: float) -> bool:
        """Record a stop request; True when it should stop at once (a deliberate second one)."""
        if self.signal_name is None or self.first_at is None:
            self.signal_name, self.first_at = name, now
            return False
        return now - self.first_at > REPEAT_WINDOW


@contextmanager
def ctrl_c_interrupts() -> Iterator[None]:
    """While waiting at a prompt nothing is in flight, so Ctrl-C stops at once."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def stop_on_signals() -> Iterator[StopFlag]:
    """Turn the first SIGINT/SIGTERM into a stop request; a second one stops at once."""
    flag = StopFlag()

    def handle(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if flag.request(name, time.monotonic()):
            raise Interrupted(name)

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
