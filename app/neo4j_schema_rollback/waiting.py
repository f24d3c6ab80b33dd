"""How `--wait` paces itself between Bolt attempts: TCP probes while the port refuses, the next
attempt as soon as it accepts.

A probe is a plain TCP connect that resolves the host name again each time, so a server that
starts, or a Kubernetes service created late, is noticed within one probe interval without a
Bolt login every 50 ms. No probe is made before the first attempt: a run against a server that
is up sends exactly what it sent before.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

PROBE_INTERVAL = 0.05
"""At most one TCP probe per this many seconds while the port refuses."""
ATTEMPT_INTERVAL = 0.25
"""At most one Bolt attempt per this many seconds once the port accepts."""
PROBE_TIMEOUT = 1.0
"""A probe that gets no answer (a dropped SYN) gives up after this long."""


def probe(host: str, port: int, timeout: float) -> str | None:
    """Try one TCP connection to host:port, resolving the name now; None when it is accepted,
    otherwise why not, in a few words: those of a failed Bolt attempt (driver_errors.py), as
    the progress line shows both beside the address."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except socket.gaierror as exc:
        return f"the host name does not resolve ({exc.strerror})"
    except TimeoutError:
        return f"no answer within {timeout:g} s"
    except ConnectionRefusedError:
        return "connection refused"
    except OSError as exc:
        return (exc.strerror or str(exc)).lower()


class Pacer:
    """Decides when the next Bolt attempt is worth making, counting the probes it took.

    `probe(timeout)` tries the port once (None: accepted); `sleep(seconds)` waits and raises on
    a stop request; `tick(reason)` hears of each refused probe (the terminal's progress line).
    """

    def __init__(self, *, clock: Callable[[], float], sleep: Callable[[float], None],
                 probe: Callable[[float], str | None], tick: Callable[[str], None]) -> None:
        self._clock = clock
        self._sleep = sleep
        self._probe = probe
        self._tick = tick
        self.probes = 0
        """Probes made so far, over every call."""
        self.last_reason: str | None = None
        """Why the last refused probe was refused."""

    def until_next_attempt(self, last_attempt: float, deadline: float) -> None:
        """Return once the port accepts and ATTEMPT_INTERVAL has passed since `last_attempt`
        began, or at the deadline (for one last attempt)."""
        clock = self._clock
        while (started := clock()) < deadline:
            self.probes += 1
            reason = self._probe(min(PROBE_TIMEOUT, deadline - started))
            now = clock()
            if reason is None:
                self._pause(min(last_attempt + ATTEMPT_INTERVAL, deadline) - now)
                return
            self.last_reason = reason
            self._tick(reason)
            self._pause(min(started + PROBE_INTERVAL, deadline) - now)

    def _pause(self, seconds: float) -> None:
        if seconds > 0:
            self._sleep(seconds)
