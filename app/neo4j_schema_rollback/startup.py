"""The garbage collector paused while the start-up imports run."""

from __future__ import annotations

import gc


class ImportsWithoutCollector:
    """`with importing():` around an import of the parser, structlog or the driver.

    Importing creates tens of thousands of objects that live as long as the process; the
    collector, run every 700 allocations, walks them again and again and finds nothing to free.
    Paused, then frozen (moved out of every generation it scans), they are walked never again,
    while everything the command allocates afterwards is collected as usual: a run that waits
    minutes for an index population collects like any other program.
    """

    def __enter__(self) -> None:
        # A pause inside a pause, or a collector its caller turned off: only the outermost,
        # which found it running, resumes it.
        self._resume = gc.isenabled()
        gc.disable()

    def __exit__(self, *_: object) -> None:
        if self._resume:
            gc.freeze()
            gc.enable()


def importing() -> ImportsWithoutCollector:
    return ImportsWithoutCollector()
