"""Errors of the test bed: one clear message each, shown without a traceback by the CLI."""

from __future__ import annotations

from pathlib import Path


class TestbedError(Exception):
    """Something the user can fix (missing Java/Maven/artifact, port in use, server failed)."""

    __test__ = False  # not a pytest test class

    def __init__(self, message: str, *, log_path: Path | None = None, log_tail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.log_path = log_path
        self.log_tail = log_tail

    def __str__(self) -> str:
        text = self.message
        if self.log_path is not None:
            text += f"\nserver log: {self.log_path}"
        if self.log_tail:
            text += "\n--- last lines of the server log ---\n" + self.log_tail.rstrip("\n")
        return text


class InstanceBusy(TestbedError):
    """``acquire(..., exclusive=True)``: another process holds a lease on the instance."""
