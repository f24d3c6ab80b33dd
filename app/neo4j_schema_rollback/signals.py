"""SIGINT/SIGTERM -> a flag checked between statements, so no statement is cut in half."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

from .errors import Interrupted


@dataclass
class StopFlag:
    """Set by a signal handler; checked between statements."""

    signal_name: str | None = None

    def check(self) -> None:
        if self.signal_name is not None:
            raise Interrupted(self.signal_name)


@contextmanager
def stop_on_signals() -> Iterator[StopFlag]:
    """Turn the first SIGINT/SIGTERM into a stop request; a second one stops at once."""
    flag = StopFlag()

    def handle(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if flag.signal_name is not None:
            raise Interrupted(name)
        flag.signal_name = name

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
