"""--wait's pacing between Bolt attempts (a scripted clock), and the TCP probe (real sockets)."""

from __future__ import annotations

import itertools
import socket
from collections.abc import Iterator

import pytest

from neo4j_schema_rollback.waiting import ATTEMPT_INTERVAL, PROBE_INTERVAL, Pacer, probe


class Script:
    """A clock that only moves when the pacer sleeps or a probe takes time; the port's answers
    are scripted, and every probe's start is recorded."""

    def __init__(self, answers: list[str | None], probe_takes: float = 0.001) -> None:
        self.now = 100.0
        self.answers: Iterator[str | None] = iter(answers)
        self.probe_takes = probe_takes
        self.probed_at: list[float] = []
        self.timeouts: list[float] = []
        self.ticks: list[str] = []

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.now += seconds

    def probe(self, timeout: float) -> str | None:
        self.probed_at.append(self.now)
        self.timeouts.append(timeout)
        self.now += min(self.probe_takes, timeout)
        return next(self.answers, "refused")

    def pacer(self) -> Pacer:
        return Pacer(clock=lambda: self.now, sleep=self.sleep, probe=self.probe,
                     tick=self.ticks.append)


def gaps(times: list[float]) -> list[float]:
    return [round(b - a, 6) for a, b in itertools.pairwise(times)]


def test_probes_every_50_ms_while_refused_then_attempts_when_the_port_accepts() -> None:
    script = Script(["refused"] * 8 + [None])
    pacer = script.pacer()
    pacer.until_next_attempt(last_attempt=100.0, deadline=160.0)
    assert pacer.probes == 9
    assert gaps(script.probed_at) == [PROBE_INTERVAL] * 8
    # Accepted at 100.401: the next attempt goes right away, 250 ms having passed.
    assert script.now == pytest.approx(100.401)
    assert script.ticks == ["refused"] * 8
    assert pacer.last_reason == "refused"


def test_an_accepting_port_still_waits_250_ms_after_the_last_attempt() -> None:
    """A server that accepts TCP but is not serving Bolt yet: one attempt per 250 ms."""
    script = Script([None])
    pacer = script.pacer()
    pacer.until_next_attempt(last_attempt=99.9, deadline=160.0)
    assert pacer.probes == 1
    assert script.now == pytest.approx(99.9 + ATTEMPT_INTERVAL)
    assert script.ticks == []


def test_returns_at_the_deadline_for_one_last_attempt() -> None:
    script = Script([])
    pacer = script.pacer()
    pacer.until_next_attempt(last_attempt=100.0, deadline=100.12)
    assert script.probed_at == pytest.approx([100.0, 100.05, 100.1])
    assert script.now == pytest.approx(100.12)
    assert script.timeouts[-1] == pytest.approx(0.02)  # no probe outlasts the deadline


def test_a_slow_probe_is_followed_at_once_not_after_another_interval() -> None:
    """A probe that times out (a dropped SYN) has used its interval already."""
    script = Script(["no answer", "no answer", None], probe_takes=1.0)
    pacer = script.pacer()
    pacer.until_next_attempt(last_attempt=100.0, deadline=160.0)
    assert gaps(script.probed_at) == [1.0, 1.0]
    assert script.timeouts == [1.0, 1.0, 1.0]
    assert script.now == pytest.approx(103.0)


def test_the_deadline_passed_already_means_no_probe() -> None:
    script = Script([None])
    pacer = script.pacer()
    pacer.until_next_attempt(last_attempt=90.0, deadline=100.0)
    assert pacer.probes == 0 and script.now == 100.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_probe_of_a_listening_port_is_accepted() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        assert probe("127.0.0.1", listener.getsockname()[1], 1.0) is None


def test_probe_of_a_closed_port_says_it_refuses() -> None:
    port = free_port()
    assert probe("127.0.0.1", port, 1.0) == "connection refused"


def test_probe_of_a_name_that_does_not_resolve_says_so() -> None:
    reason = probe("nsr-not-created-yet.invalid", 7687, 1.0)
    assert reason is not None
    assert reason.startswith("the host name does not resolve (")
