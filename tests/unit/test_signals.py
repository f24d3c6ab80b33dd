"""Stop requests: the first asks to stop between statements; a deliberate second stops now."""

import os
import signal

import pytest

from neo4j_schema_rollback.errors import ExitCode, Interrupted
from neo4j_schema_rollback.signals import StopFlag, stop_on_signals


def test_first_request_only_sets_the_flag() -> None:
    """The first signal is remembered and raised at the next check."""
    flag = StopFlag()
    assert flag.request("SIGTERM", 10.0) is False
    with pytest.raises(Interrupted) as info:
        flag.check()
    assert info.value.exit_code is ExitCode.TERMINATED


def test_a_forwarded_duplicate_is_not_a_second_request() -> None:
    """The bootloader's forwarded copy, milliseconds later, does not stop the run at once."""
    flag = StopFlag()
    flag.request("SIGINT", 10.0)
    assert flag.request("SIGINT", 10.01) is False
    assert flag.request("SIGINT", 11.5) is True


def test_signal_handler_in_process() -> None:
    """A real SIGINT inside stop_on_signals sets the flag instead of raising."""
    with stop_on_signals() as flag:
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)
        assert flag.signal_name == "SIGINT"
        with pytest.raises(Interrupted) as info:
            flag.check()
    assert info.value.exit_code is ExitCode.INTERRUPTED
