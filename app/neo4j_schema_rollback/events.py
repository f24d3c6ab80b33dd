"""Event names, their fields, and the structured log that carries them (structlog)."""

from __future__ import annotations

import datetime as _dt
import json
import sys
from collections.abc import MutableMapping
from typing import IO, Any, Literal

from .startup import importing

RUN_START = "run.start"
SERVER = "server"
STATEMENT = "statement"
OBJECT = "object"
INDEX_PROGRESS = "index.progress"
WAIT = "wait"
WARNING = "warning"
ERROR = "error"
RUN_END = "run.end"
ALL = (RUN_START, SERVER, STATEMENT, OBJECT, INDEX_PROGRESS, WAIT, WARNING, ERROR, RUN_END)

# Leading fields of every line, in this order; the rest follow as emitted.
_HEAD = ("timestamp", "level", "event", "run_id", "tool_version")

LogFormat = Literal["auto", "json", "console"]
EventDict = MutableMapping[str, Any]


def _import_structlog() -> Any:
    # `import structlog` pulls in structlog.dev, which imports rich when it is installed (cyclopts
    # brings it). Neither renderer here uses rich, so keep that cost off every connected run.
    if "rich" in sys.modules:
        import structlog

        return structlog
    sys.modules["rich"] = None  # type: ignore[assignment]
    try:
        import structlog
    finally:
        del sys.modules["rich"]
    return structlog


def _timestamp(_: Any, __: str, event: EventDict) -> EventDict:
    now = _dt.datetime.now(_dt.UTC)
    event["timestamp"] = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
    return event


def _order(_: Any, __: str, event: EventDict) -> EventDict:
    head = {key: event.pop(key) for key in _HEAD if key in event}
    rest = {key: value for key, value in event.items() if value is not None}
    return {**head, **rest}


def render_json(_: Any, __: str, event: EventDict) -> str:
    return json.dumps(event, ensure_ascii=False, default=str, separators=(",", ":"))


def render_console(_: Any, __: str, event: EventDict) -> str:
    """One readable line: time, level, event, then key=value pairs (JSON-quoted when needed)."""
    clock = str(event.pop("timestamp", ""))[11:19]
    level = str(event.pop("level", ""))
    name = str(event.pop("event", ""))
    for key in ("run_id", "tool_version"):
        event.pop(key, None)
    pairs = " ".join(f"{key}={_console_value(value)}" for key, value in event.items())
    return f"{clock} {level:<7} {name:<15} {pairs}".rstrip()


def _console_value(value: Any) -> str:
    if isinstance(value, str) and value and " " not in value and '"' not in value:
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def is_terminal(stream: IO[str]) -> bool:
    """Whether the stream is a terminal (a stream without isatty is not)."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty is not None and isatty())


def choose_format(requested: LogFormat, stream: IO[str]) -> Literal["json", "console"]:
    """`auto` is JSON Lines unless the stream is a terminal."""
    if requested != "auto":
        return requested
    return "console" if is_terminal(stream) else "json"


class EventLog:
    """Emits one line per event to one stream; every line carries the run's identity."""

    def __init__(
        self,
        stream: IO[str],
        *,
        format: Literal["json", "console"],
        run_id: str,
        tool_version: str,
    ) -> None:
        with importing():
            structlog = _import_structlog()
        renderer = render_json if format == "json" else render_console
        self._logger = structlog.wrap_logger(
            structlog.PrintLogger(stream),
            processors=[structlog.processors.add_log_level, _timestamp, _order, renderer],
        ).bind(run_id=run_id, tool_version=tool_version)
        self.format = format

    def emit(self, event: str, *, level: str = "info", **fields: Any) -> None:
        """Write one event line now (flushed, so a killed run keeps what it said)."""
        getattr(self._logger, level)(event, **fields)
