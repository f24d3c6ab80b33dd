"""The one updating line on stderr that shows long work to a person at a terminal: indexes
populating after `apply`, or how long `--wait` has waited for the server.

Imported only when there is something to show (see `Run.waiting`, `Run.populating`), so a run
that never waits pays nothing for it.
"""

from __future__ import annotations

import math
import os
import time
import unicodedata
from collections.abc import Callable, Sequence
from typing import IO

ERASE = "\r\x1b[K"  # to column 0, clear to the end of the row
DIM, RESET = "\x1b[2m", "\x1b[0m"
# A redraw more often than this only flickers; log lines still erase the line at once.
INTERVAL = 0.1
FALLBACK_COLUMNS = 80
# Columns left free at the end of the line: the terminal echoes a Ctrl-C as `^C` after the
# line, and a character in the last column makes the terminal wrap. On the next row, erasing
# would clear that row and leave the line standing above the final log lines.
SPARE = 3


def columns_of(text: str) -> int:
    """Terminal columns `text` takes: wide (CJK) characters two, combining marks none."""
    return sum(_char_columns(char) for char in text)


def _char_columns(char: str) -> int:
    if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def fit(text: str, width: int, ellipsis: str = "…") -> str:
    """`text` cut to at most `width` columns, ending in `ellipsis` when cut."""
    if columns_of(text) <= width:
        return text
    room = width - columns_of(ellipsis)
    if room < 0:
        return ""
    kept, used = [], 0
    for char in text:
        used += _char_columns(char)
        if used > room:
            break
        kept.append(char)
    return "".join(kept) + ellipsis


def printable(text: str) -> str:
    """Text from a server or a driver message, safe to put on a terminal: no escape sequences,
    no line breaks."""
    return "".join(char if char.isprintable() else " " for char in text)


def _percent(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "?%"
    # Floored: 99.96 is not done, and must not read as 100.0%.
    return f"{math.floor(value * 10) / 10:.1f}%"


def render_indexes(indexes: Sequence[tuple[str, float | None]]) -> str:
    """`populating compute_tags 45.2%, queue_interval 12.0%`: each index not yet ONLINE, in the
    order given."""
    return "populating " + ", ".join(f"{name} {_percent(percent)}" for name, percent in indexes)


def render_wait(target: str, elapsed: float, limit: float, reason: str) -> str:
    """`waiting for bolt://host:7687 — 12.3 s of 120 s — connection refused`."""
    elapsed = min(max(elapsed, 0.0), limit)
    text = f"waiting for {target} — {elapsed:.1f} s of {limit:g} s"
    return f"{text} — {reason}" if reason else text


def _terminal_columns(stream: IO[str]) -> Callable[[], int]:
    def columns() -> int:
        # Asked at every draw: the window may have been resized since the last one.
        try:
            return os.get_terminal_size(stream.fileno()).columns or FALLBACK_COLUMNS
        except (AttributeError, OSError, ValueError):
            return FALLBACK_COLUMNS

    return columns


def _encodes(stream: IO[str], text: str) -> bool:
    encoding = getattr(stream, "encoding", None)
    if encoding is None:
        return True  # a stream of str (StringIO): no encoding to fail
    try:
        text.encode(encoding)
    except (LookupError, UnicodeEncodeError):
        return False
    return True


class ProgressLine:
    """One line on a terminal, redrawn in place, never wider than the terminal (so it never
    wraps and `\\r` always returns to its start), and erased before anything else is written."""

    def __init__(self, stream: IO[str], *, colour: bool,
                 columns: Callable[[], int] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._stream = stream
        self._columns = columns if columns is not None else _terminal_columns(stream)
        self._clock = clock
        self._style = (DIM, RESET) if colour else ("", "")
        # A terminal whose encoding lacks the dash and the ellipsis (LANG=C without Python's
        # UTF-8 mode) gets their ASCII spellings rather than an encoding error.
        self._ascii = not _encodes(stream, "—…")
        self._shown: str | None = None  # what is on the screen now; None when erased
        self._drawn_at = -math.inf
        self._closed = False

    def show_indexes(self, indexes: Sequence[tuple[str, float | None]]) -> None:
        """Show the indexes still populating and how far each is."""
        self.show(render_indexes(indexes))

    def show_wait(self, target: str, elapsed: float, limit: float, reason: str) -> None:
        """Show how long the wait for `target` has lasted, of how long, and why."""
        self.show(render_wait(target, elapsed, limit, reason))

    def show(self, text: str) -> None:
        """Draw `text` in place of the line, unless it was drawn less than INTERVAL ago."""
        if self._closed:
            return
        now = self._clock()
        text = printable(text)
        if self._ascii:
            text = text.replace("—", "-").replace("…", "...")
        text = fit(text, self._columns() - SPARE, "..." if self._ascii else "…")
        if self._ascii:
            text = text.encode("ascii", "replace").decode("ascii")
        if self._shown is not None and (text == self._shown or now - self._drawn_at < INTERVAL):
            return
        start, end = self._style
        self._write(f"\r{start}{text}{end}\x1b[K")
        self._shown, self._drawn_at = text, now

    def erase(self) -> None:
        """Clear the line (when shown), leaving the cursor at the start of its empty row."""
        if self._shown is not None:
            self._write(ERASE)
            self._shown = None

    def close(self) -> None:
        """Erase the line for good: nothing is drawn after this."""
        self.erase()
        self._closed = True

    def _write(self, text: str) -> None:
        self._stream.write(text)
        self._stream.flush()
