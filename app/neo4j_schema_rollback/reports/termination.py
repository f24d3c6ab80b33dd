"""A run's Record as a Kubernetes termination message: a few lines `kubectl describe pod`
shows for the container, within the kubelet's 4096 bytes."""

from __future__ import annotations

from .. import PROG
from .record import Record

LIMIT = 4096  # bytes the kubelet reads of a container's termination message


def render(record: Record) -> bytes:
    """Outcome and exit code, the statement counts, the first error and the run id."""
    counts = ", ".join(f"{name} {value}" for name, value in record.counts.items())
    lines = [f"{PROG} {record.command}: {record.outcome or 'unknown'} "
             f"(exit code {record.exit_code})"]
    if counts:
        lines.append(f"statements: {counts}")
    problem = record.first_problem()
    if problem:
        lines.append(f"first error: {' '.join(problem.split())}")
    if record.properties.get("run_id"):
        lines.append(f"run id: {record.properties['run_id']}")
    return clip("\n".join(lines) + "\n")


def clip(text: str, limit: int = LIMIT) -> bytes:
    """UTF-8 of `text`, cut to `limit` bytes on a character boundary, ending in '…' when cut."""
    data = text.encode("utf-8", "backslashreplace")
    if len(data) <= limit:
        return data
    mark = "…\n".encode()
    return data[:limit - len(mark)].decode("utf-8", "ignore").encode() + mark
