"""Reports: sinks of the run's event stream, written once at run.end (an interrupted or failed
run included). Loaded only when a report is asked for (--report, NEO4J_REPORT, GitHub Actions,
a writable termination log), so a run without one pays nothing.

- junit=PATH: JUnit XML, written atomically (a temporary file renamed over PATH);
- github: workflow commands on stderr and a Markdown table appended to $GITHUB_STEP_SUMMARY;
- termination[=PATH]: a short summary for Kubernetes (default PATH: $NEO4J_TERMINATION_LOG,
  else /dev/termination-log).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

from ..errors import Interrupted, UsageError
from ..settings import termination_log
from .record import Event, fold

FORMS = "junit=PATH, github, termination, termination=PATH or none"


@dataclass(frozen=True)
class Target:
    """One report to write: its kind and, for files, where."""

    kind: str  # junit, github, termination
    path: str | None = None


def split(text: str) -> list[str]:
    """NEO4J_REPORT's value: reports separated by commas."""
    return [part.strip() for part in text.split(",") if part.strip()]


def targets(flags: Sequence[str], env: Mapping[str, str]) -> list[Target]:
    """The reports asked for by --report (else NEO4J_REPORT), plus the automatic ones: github
    under GitHub Actions, termination where the termination log is writable; `none` turns the
    automatic ones off. A bad spelling or an unwritable folder is a usage error."""
    specs = list(flags) if flags else split(env.get("NEO4J_REPORT", ""))
    source = "--report" if flags else "NEO4J_REPORT"
    chosen: list[Target] = []
    for spec in specs:
        kind, sep, path = spec.partition("=")
        if spec == "none":
            continue
        if kind == "junit" and sep and path:
            _check_folder(path, source)
            chosen.append(Target("junit", path))
        elif kind == "github" and not sep:
            chosen.append(Target("github"))
        elif kind == "termination" and (not sep or path):
            chosen.append(Target("termination", path or termination_log(env)))
        else:
            raise UsageError(f"{source}: {spec!r} is not a report", hint=f"use {FORMS}")
    if "none" in specs:
        return chosen
    return chosen + automatic(env, {target.kind for target in chosen})


def automatic(env: Mapping[str, str], asked: set[str]) -> list[Target]:
    """The reports written unasked, unless asked for already: github under GitHub Actions,
    termination where the termination log exists and is writable."""
    chosen = []
    if env.get("GITHUB_ACTIONS") == "true" and "github" not in asked:
        chosen.append(Target("github"))
    path = termination_log(env)
    if "termination" not in asked and os.access(path, os.W_OK):
        chosen.append(Target("termination", path))
    return chosen


def _check_folder(path: str, source: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise UsageError(f"{source}: {path!r} is a folder, not a file")
    if not os.path.isdir(folder):
        raise UsageError(f"{source}: folder {folder!r} of {path!r} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{source}: cannot write in folder {folder!r}")


class Reports:
    """Collects the run's events and writes every asked-for report at the end."""

    def __init__(self, chosen: Sequence[Target], *, stderr: IO[str], env: Mapping[str, str],
                 identity: Mapping[str, str]) -> None:
        """`identity`: what the log binds to every line (run_id, tool_version), and the
        command."""
        self.targets = list(chosen)
        self._identity = dict(identity)
        self._stderr = stderr
        self._env = env
        self._events: list[Event] = []
        now = _dt.datetime.now(_dt.UTC)
        self._started_at = now.strftime("%Y-%m-%dT%H:%M:%S")

    def consume(self, event: str, level: str, fields: Mapping[str, Any]) -> None:
        """One event of the run, as it is logged."""
        self._events.append((event, level, dict(fields)))

    def write(self) -> list[str]:
        """Write every report (after run.end was consumed); return one line per report that
        could not be written."""
        record = fold(self._events, started_at=self._started_at, identity=self._identity)
        problems = []
        for target in self.targets:
            where = f" {target.path}" if target.path else ""
            try:
                self._write(target, record)
            except OSError as exc:
                problems.append(f"cannot write the {target.kind} report{where}: "
                                f"{exc.strerror or exc}")
            except Interrupted as exc:
                # A deliberate second signal: this report is left out (a JUnit file is never
                # left half-written), and the run still ends with its run.end line.
                problems.append(f"the {target.kind} report{where} was not written: "
                                f"{exc.message}")
        return problems

    def _write(self, target: Target, record: Any) -> None:
        if target.kind == "junit":
            from . import junit

            assert target.path is not None
            write_atomically(target.path, junit.render(record))
        elif target.kind == "github":
            from . import github

            for line in github.workflow_commands(record):
                self._stderr.write(line + "\n")
            self._stderr.flush()
            summary = self._env.get("GITHUB_STEP_SUMMARY")
            if summary:
                with open(summary, "a", encoding="utf-8") as handle:
                    handle.write(github.summary(record))
        else:
            from . import termination

            assert target.path is not None
            # Kubernetes bind-mounts the file: it is rewritten in place, never renamed over.
            with open(target.path, "wb") as handle:
                handle.write(termination.render(record))


def write_atomically(path: str, data: bytes) -> None:
    """Write `data` to a new file beside `path`, then rename it over `path`: a reader sees the
    old file or the whole new one, never a part."""
    folder, name = os.path.split(os.path.abspath(path))
    temporary = os.path.join(folder, f".{name}.{os.getpid()}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
