"""Leases: which processes (pytest sessions) use an instance, so that the last one out stops a
server that ``acquire`` started. One file per holder, named by its pid, in ``leases/``."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .paths import instance_dir


def directory(name: str) -> Path:
    return instance_dir(name) / "leases"


def live(name: str) -> list[Path]:
    """The lease files of live processes (those of dead ones are removed)."""
    found = []
    leases = directory(name)
    if leases.is_dir():
        for entry in leases.iterdir():
            if entry.name.isdigit() and Path(f"/proc/{entry.name}").exists():
                found.append(entry)
            else:
                entry.unlink(missing_ok=True)
    return found


def others(name: str) -> list[int]:
    """The pids of other live processes holding a lease on the instance."""
    me = str(os.getpid())
    return sorted(int(p.name) for p in live(name) if p.name != me)


def take(name: str, server_pid: int) -> None:
    """Hold a lease for this process (call with the instance's lock)."""
    leases = directory(name)
    leases.mkdir(parents=True, exist_ok=True)
    (leases / str(os.getpid())).write_text(f"{server_pid}\n")


def drop(name: str) -> list[Path]:
    """Let go of this process's lease; return the leases still held by live processes."""
    (directory(name) / str(os.getpid())).unlink(missing_ok=True)
    return live(name)


def clear(name: str) -> None:
    """Forget every lease (the instance stopped)."""
    shutil.rmtree(directory(name), ignore_errors=True)
