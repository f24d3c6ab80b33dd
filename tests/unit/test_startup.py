"""The collector paused around the start-up imports, and running whenever a command does."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from neo4j_schema_rollback.errors import ExitCode
from neo4j_schema_rollback.startup import importing


@pytest.fixture(autouse=True)
def _collector_restored() -> Iterator[None]:
    yield
    gc.unfreeze()
    gc.enable()


def test_paused_inside_then_frozen_and_running_again() -> None:
    frozen = gc.get_freeze_count()
    with importing():
        assert not gc.isenabled()
        made = [[] for _ in range(100)]  # containers the collector tracks
    assert gc.isenabled()
    assert gc.get_freeze_count() >= frozen + len(made)


def test_nested_pause_resumes_at_the_outermost_only() -> None:
    with importing():
        with importing():
            pass
        assert not gc.isenabled()
    assert gc.isenabled()


def test_resumes_when_the_import_fails() -> None:
    with pytest.raises(ModuleNotFoundError), importing():
        import neo4j_schema_rollback_no_such_module  # noqa: F401
    assert gc.isenabled()


def test_a_collector_disabled_by_the_caller_stays_disabled() -> None:
    gc.disable()
    with importing():
        pass
    assert not gc.isenabled()


# Runs the tool's entry point in a fresh interpreter (so the imports really happen) and records,
# at every write to stdout, whether the collector runs: the command writes while it runs.
_PROBE = """\
import gc, io, json, sys
states = []
class Probe(io.StringIO):
    def write(self, text):
        states.append(gc.isenabled())
        return super().write(text)
sys.stdout = Probe()
from neo4j_schema_rollback.main import run
code = run(sys.argv[1:])
print(json.dumps({"code": code, "states": states, "frozen": gc.get_freeze_count(),
                  "loaded": sorted(m for m in ("cyclopts", "structlog", "neo4j")
                                   if m in sys.modules)}),
      file=sys.stderr)
"""


def _probe(*args: str) -> dict[str, object]:
    r = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True, text=True,
                       check=True)
    result: dict[str, object] = json.loads(r.stderr.splitlines()[-1])
    return result


def test_an_offline_command_runs_with_the_collector() -> None:
    result = _probe("statements")
    assert result["code"] == 0
    assert result["states"] and all(result["states"])  # type: ignore[arg-type]
    assert result["loaded"] == ["cyclopts"]
    assert isinstance(result["frozen"], int) and result["frozen"] > 10_000


def test_a_connected_command_runs_with_the_collector() -> None:
    """structlog and the driver are imported inside the command, then it logs and connects
    (port 1 refuses: the connection's exit code) with the collector running."""
    result = _probe("status", "--uri", "bolt://127.0.0.1:1", "--password", "x",
                    "--log-format", "json")
    assert result["code"] == ExitCode.CONNECTION
    assert result["states"] and all(result["states"])  # type: ignore[arg-type]
    assert result["loaded"] == ["cyclopts", "neo4j", "structlog"]
    # structlog's and the driver's objects were frozen too, not only the parser's
    assert result["frozen"] > _probe("statements")["frozen"]  # type: ignore[operator]
