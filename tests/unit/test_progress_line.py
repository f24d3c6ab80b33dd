"""The progress line: its rendering (pure), its drawing on a terminal, and when a run shows it."""

from __future__ import annotations

import io
import subprocess
import sys
from typing import Any

import pytest

from neo4j_schema_rollback import events
from neo4j_schema_rollback.errors import Interrupted
from neo4j_schema_rollback.progress_line import (
    ProgressLine,
    columns_of,
    fit,
    render_indexes,
    render_wait,
)
from neo4j_schema_rollback.session import Common, Console, Run

ENV = {"NEO4J_URI": "bolt://db.example:7687", "NEO4J_PASSWORD": "pw"}


class Screen:
    """What a terminal was sent, in order, from both of the streams that share it."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, str]] = []

    def text(self, name: str | None = None) -> str:
        return "".join(text for stream, text in self.writes if name in (None, stream))


class Tty(io.StringIO):
    """A stream that says it is a terminal and records into a shared Screen."""

    def __init__(self, screen: Screen, name: str, *, tty: bool = True,
                 encoding: str = "utf-8") -> None:
        super().__init__()
        self._screen, self._name, self._tty, self._encoding = screen, name, tty, encoding

    @property
    def encoding(self) -> str:
        return self._encoding

    def isatty(self) -> bool:
        return self._tty

    def write(self, text: str) -> int:
        self._screen.writes.append((self._name, text))
        return len(text)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def line_on(stream: io.StringIO | Tty, *, colour: bool = False, columns: int = 80,
            clock: Clock | None = None) -> ProgressLine:
    return ProgressLine(stream, colour=colour, columns=lambda: columns,
                        clock=clock if clock is not None else Clock())


# -- rendering -------------------------------------------------------------------------------


def test_fit_keeps_what_fits_and_cuts_the_rest_with_an_ellipsis() -> None:
    """Text within the width is kept whole; longer text is cut to exactly the width."""
    assert fit("populating a 1.0%", 17) == "populating a 1.0%"
    assert fit("populating a 1.0%", 16) == "populating a 1.…"
    assert fit("abcdef", 4, "...") == "a..."
    assert fit("abcdef", 0) == ""


def test_fit_counts_wide_characters_as_two_columns() -> None:
    """A CJK character takes two columns, a combining accent none: the cut is by columns."""
    assert columns_of("索引") == 4
    assert columns_of("e\u0301") == 1
    assert fit("索引索引", 5) == "索引…"
    assert columns_of(fit("索引索引", 6)) <= 6


def test_several_indexes_on_one_line_in_order() -> None:
    """Each index still populating: its name and percent, floored to a tenth."""
    assert render_indexes([("compute_tags", 45.27), ("queue_interval", 12.0),
                           ("compute_buffering_since", 99.96)]) == (
        "populating compute_tags 45.2%, queue_interval 12.0%, compute_buffering_since 99.9%")


def test_an_unknown_percent_is_a_question_mark() -> None:
    """A server that reports no percent shows `?%`, not a number it did not say."""
    assert render_indexes([("a", None), ("b", float("nan"))]) == "populating a ?%, b ?%"


def test_the_wait_line_has_elapsed_time_limit_and_reason() -> None:
    """--wait: the target, seconds waited (tenths) of the limit, and the last failure."""
    assert render_wait("bolt://host:7687", 12.34, 120, "connection refused") == (
        "waiting for bolt://host:7687 — 12.3 s of 120 s — connection refused")
    assert render_wait("bolt://h:1", 3.96, 2.5, "") == "waiting for bolt://h:1 — 2.5 s of 2.5 s"
    assert render_wait("bolt://h:1", -0.01, 5, "x") == "waiting for bolt://h:1 — 0.0 s of 5 s — x"


# -- drawing ---------------------------------------------------------------------------------


def test_show_draws_in_place_and_erase_clears_the_row() -> None:
    """A line starts at column 0 and clears the rest of the row; erase clears it all."""
    out = io.StringIO()
    line = line_on(out)
    line.show("populating a 1.0%")
    line.erase()
    line.erase()  # nothing shown: nothing written
    assert out.getvalue() == "\rpopulating a 1.0%\x1b[K\r\x1b[K"


def test_the_line_never_reaches_the_last_columns() -> None:
    """Cut three columns short of the width: room for a `^C` echo, and no wrap."""
    out = io.StringIO()
    line_on(out, columns=20).show("waiting for bolt://127.0.0.1:7687")
    assert out.getvalue() == "\rwaiting for bolt…\x1b[K"
    assert columns_of("waiting for bolt…") == 17


def test_colour_dims_the_line_and_no_colour_writes_no_style() -> None:
    """With colour the text is dim; without, only the erasing sequences are written."""
    dim, plain = io.StringIO(), io.StringIO()
    line_on(dim, colour=True).show("x")
    line_on(plain, colour=False).show("x")
    assert dim.getvalue() == "\r\x1b[2mx\x1b[0m\x1b[K"
    assert plain.getvalue() == "\rx\x1b[K"


def test_redraws_are_throttled_to_ten_a_second() -> None:
    """A change within 0.1 s of the last draw waits for a later update; the same text is
    never drawn twice; after an erase the next update draws at once."""
    out, clock = io.StringIO(), Clock()
    line = line_on(out, clock=clock)
    line.show("a 1.0%")
    clock.now += 0.05
    line.show("a 2.0%")
    clock.now += 0.05
    line.show("a 3.0%")
    line.show("a 3.0%")
    clock.now += 0.2
    line.show("a 3.0%")
    line.erase()
    line.show("a 4.0%")
    assert out.getvalue() == "\ra 1.0%\x1b[K\ra 3.0%\x1b[K\r\x1b[K\ra 4.0%\x1b[K"


def test_a_closed_line_draws_nothing() -> None:
    """After close (the run's end) updates are ignored."""
    out = io.StringIO()
    line = line_on(out)
    line.show("a")
    line.close()
    line.show("b")
    assert out.getvalue() == "\ra\x1b[K\r\x1b[K"


def test_control_characters_never_reach_the_terminal() -> None:
    """A reason quoting an escape sequence or a line break is shown with spaces instead."""
    out = io.StringIO()
    line_on(out).show("bad\x1b[31m\nname")
    assert out.getvalue() == "\rbad [31m name\x1b[K"


def test_an_ascii_terminal_gets_ascii_dashes_and_dots() -> None:
    """A stream that cannot encode the dash and the ellipsis gets `-` and `...`."""
    screen = Screen()
    line = line_on(Tty(screen, "stderr", encoding="ascii"), columns=30)
    line.show(render_wait("bolt://host:7687", 1, 5, "refused"))
    assert screen.text() == "\rwaiting for bolt://host:...\x1b[K"
    line.erase()
    line = line_on(Tty(screen, "stderr", encoding="ascii"), columns=80)
    line.show(render_wait("bolt://h:1", 1, 5, "é"))
    assert screen.text().endswith("\rwaiting for bolt://h:1 - 1.0 s of 5 s - ?\x1b[K")


# -- when a run shows it -----------------------------------------------------------------------


def started(screen: Screen, *, log_format: events.LogFormat = "auto",
            env: dict[str, str] | None = None, stdout_tty: bool = True,
            stderr_tty: bool = True) -> Run:
    """A run on a (fake) terminal after run.start."""
    console = Console(stdout=Tty(screen, "stdout", tty=stdout_tty),
                      stderr=Tty(screen, "stderr", tty=stderr_tty),
                      env={**ENV, "TERM": "xterm-256color", **(env or {})}, interactive=False,
                      prompt_secret=lambda _: "pw", confirm=lambda _: False)
    run = Run("apply", console, common=Common(log_format=log_format))
    run.start(to=2, dry_run=False)
    return run


def test_a_console_run_on_a_terminal_shows_the_wait_on_stderr() -> None:
    """Console log, both streams terminals: the wait line goes to stderr, dim."""
    screen = Screen()
    run = started(screen)
    run.waiting(2.04, 30, "connection refused")
    assert screen.writes[-1] == ("stderr", "\r\x1b[2mwaiting for bolt://db.example:7687 — "
                                           "2.0 s of 30 s — connection refused\x1b[0m\x1b[K")
    assert screen.text("stderr") == screen.writes[-1][1]


def test_indexes_populating_are_shown_together() -> None:
    """The indexes not yet ONLINE share one line."""
    screen = Screen()
    run = started(screen, env={"NO_COLOR": "1"})
    run.populating([("compute_tags", 45.0), ("queue_interval", 3.5)])
    assert screen.text("stderr") == (
        "\rpopulating compute_tags 45.0%, queue_interval 3.5%\x1b[K")


def test_no_color_leaves_only_the_erasing_sequences() -> None:
    """NO_COLOR (any non-empty value): no dim; an empty NO_COLOR does not count."""
    plain, coloured = Screen(), Screen()
    started(plain, env={"NO_COLOR": "yes"}).waiting(1, 5, "x")
    started(coloured, env={"NO_COLOR": ""}).waiting(1, 5, "x")
    assert "\x1b[2m" not in plain.text("stderr")
    assert plain.text("stderr").startswith("\rwaiting for ")
    assert "\x1b[2m" in coloured.text("stderr")


def test_a_log_line_erases_the_line_first() -> None:
    """Every event line is written on an empty row: the line is erased just before it."""
    screen = Screen()
    run = started(screen)
    run.waiting(1, 5, "x")
    drawn = len(screen.writes)
    run.emit(events.WAIT, attempt=2)
    assert screen.writes[drawn] == ("stderr", "\r\x1b[K")
    assert screen.text("stdout").splitlines()[-1].split()[2] == "wait"
    assert {stream for stream, _ in screen.writes[drawn + 1:]} == {"stdout"}


@pytest.mark.parametrize("kwargs", [
    {"log_format": "json"},
    {"env": {"TERM": "dumb"}},
    {"stderr_tty": False},
    {"stdout_tty": False, "log_format": "console"},
], ids=["json", "term-dumb", "stderr-not-a-terminal", "stdout-not-a-terminal"])
def test_no_line_unless_console_on_two_terminals(kwargs: dict[str, Any]) -> None:
    """JSON mode, TERM=dumb, or either stream off a terminal: nothing but the log is written,
    exactly as without the line."""
    screen = Screen()
    run = started(screen, **kwargs)
    run.waiting(1, 5, "x")
    run.populating([("a", 1.0)])
    assert screen.text("stderr") == ""
    assert run.line is None


def test_a_stop_request_erases_the_line_and_keeps_it_off() -> None:
    """After Ctrl-C the line is erased at the next update and not drawn again."""
    screen = Screen()
    run = started(screen)
    run.waiting(1, 5, "x")
    run.stop.request("SIGINT", 0.0)
    run.waiting(1.2, 5, "x")
    run.populating([("a", 1.0)])
    assert screen.text("stderr").endswith("\x1b[K\r\x1b[K")
    assert screen.text("stderr").count("waiting") == 1


def test_the_run_ends_with_the_line_erased_before_error_and_run_end() -> None:
    """An interrupted run erases the line, then writes error and run.end on clean rows."""
    screen = Screen()
    with started(screen) as run:
        run.waiting(1, 5, "x")
        raise Interrupted("SIGINT")
    assert run.exit_code == 130
    after = screen.writes[[i for i, (s, _) in enumerate(screen.writes) if s == "stderr"][-1]:]
    assert after[0] == ("stderr", "\r\x1b[K")
    assert [text.split()[2] for stream, text in after[1:] if text.strip()] == ["error", "run.end"]
    assert all(stream == "stdout" for stream, _ in after[1:])


def test_a_run_with_nothing_to_wait_for_never_imports_the_line() -> None:
    """On a terminal, a run that neither waits nor awaits indexes (a no-op rollback) does not
    import the progress module; the first update does."""
    code = (
        "import sys\n"
        "from neo4j_schema_rollback.session import Common, Console, Run\n"
        "class Tty:\n"
        "    encoding = 'utf-8'\n"
        "    def write(self, text): return len(text)\n"
        "    def flush(self): pass\n"
        "    def isatty(self): return True\n"
        "console = Console(Tty(), Tty(), {'NEO4J_URI': 'bolt://h:1', 'NEO4J_PASSWORD': 'p'},\n"
        "                  False, str, bool)\n"
        "with Run('rollback', console, common=Common()) as run:\n"
        "    run.start(to=0, dry_run=False)\n"
        "    run.emit('statement', cypher='SHOW INDEXES YIELD *')\n"
        "print('neo4j_schema_rollback.progress_line' in sys.modules)\n"
        "run.waiting(1.0, 5.0, 'x')\n"
        "print('neo4j_schema_rollback.progress_line' in sys.modules)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.split() == ["False", "True"]
