"""--help as plain text that reads cleanly at any width: each entry wrapped at the terminal's
width (80 on a pipe) with its continuation lines indented under it, a bracketed note such as
`[env: NEO4J_TIMEOUT; default 30]` never split, and no trailing blanks.

cyclopts' plain formatter leaves the wrapping to rich, which breaks an entry anywhere and starts
its next line at column 0. The formatter it builds on is imported only when help is printed
(cyclopts.help costs a start ~7 ms).
"""

from __future__ import annotations

import re
import textwrap
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cyclopts.help import HelpPanel
    from rich.console import Console, ConsoleOptions

HANG = 6
"""Where an entry's continuation lines start."""
_BRACKETS = re.compile(r"\[[^\]]*\]")
_KEEP = "\0"  # stands for a space inside brackets while wrapping: textwrap never breaks there


def wrap(text: str, width: int, *, indent: str = "", hang: str = "") -> list[str]:
    """`text` in lines of at most `width` (unless one word is longer), the first indented by
    `indent`, the others by `hang`; a [...] group stays on one line."""
    kept = _BRACKETS.sub(lambda match: match[0].replace(" ", _KEEP), " ".join(text.split()))
    lines = textwrap.wrap(kept, width=width, initial_indent=indent, subsequent_indent=hang,
                          break_long_words=False, break_on_hyphens=False)
    return [line.replace(_KEEP, " ") for line in lines] or [""]


class Formatter:
    """cyclopts' plain help formatter, wrapping every line itself; made on first use."""

    def __init__(self) -> None:
        self._made: Any = None

    def _plain(self) -> Any:
        if self._made is None:
            self._made = _wrapping()
        return self._made

    def __call__(self, console: Console, options: ConsoleOptions, panel: HelpPanel) -> None:
        self._plain()(console, options, panel)

    def render_usage(self, console: Console, options: ConsoleOptions, usage: Any) -> None:
        self._plain().render_usage(console, options, usage)

    def render_description(self, console: Console, options: ConsoleOptions,
                           description: Any) -> None:
        self._plain().render_description(console, options, description)


def _wrapping() -> Any:
    from cyclopts.help.formatters.plain import PlainFormatter, _to_plain_text

    class Wrapping(PlainFormatter):
        """cyclopts' plain formatter, wrapping every line itself."""

        def _print_plain(self, console: Console, text: str) -> None:
            # One entry, title or paragraph per call; rich may have wrapped its parts already.
            if text.startswith(self.indent):  # an entry: a flag or a command and what it does
                lines = wrap(text, console.width, indent=self.indent, hang=" " * HANG)
            else:
                lines = wrap(text, console.width)
            for line in lines:
                console.print(line, highlight=False, markup=False, soft_wrap=True)

        def render_description(self, console: Console, options: ConsoleOptions,
                               description: Any) -> None:
            text = _to_plain_text(description, console) if description else ""
            paragraphs = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
            for index, paragraph in enumerate(paragraphs):
                if index:
                    console.print()
                self._print_plain(console, " ".join(paragraph.split()))
            if paragraphs:
                console.print()

    return Wrapping()
