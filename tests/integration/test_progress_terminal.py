"""The progress line in a real terminal (a tmux pane of 80 x 24), through the module and the
binary: shown while --wait retries and while indexes populate, cut to the width, gone before
the log lines that follow it and after Ctrl-C."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from db import cypher, env_for
from netutil import free_port
from terminal import Pane
from tool import Tool

WIDTH = 80


@pytest.fixture
def panes(tmp_path: Path) -> Iterator[list[Pane]]:
    """Panes a test opens, all closed (their tmux server killed) at its end."""
    opened: list[Pane] = []
    yield opened
    for pane in opened:
        pane.close()


def open_pane(panes: list[Pane], tool: Tool, tmp_path: Path, *args: str,
              env: dict[str, str]) -> Pane:
    pane = Pane([*tool.command, *args], {**tool.base_env, **env}, tmp_path, width=WIDTH)
    panes.append(pane)
    return pane


def matching(pattern: str, rows: list[str]) -> list[str]:
    return [row for row in rows if re.fullmatch(pattern, row)]


def test_wait_line_counts_up_and_ctrl_c_erases_it(tool: Tool, tmp_path: Path,
                                                 panes: list[Pane]) -> None:
    """While --wait retries a closed port, one row shows the seconds waited of the limit and
    the plain error, within the width and redrawn in place; Ctrl-C erases it before the error
    and run.end lines, exit 130."""
    port = free_port()
    pane = open_pane(panes, tool, tmp_path, "status", "--wait", "60",
                     "--uri", f"bolt://127.0.0.1:{port}", env={"NEO4J_PASSWORD": "pw-unused"})
    # Why: the first attempt's error, then each probe's answer (the port refuses).
    line = rf"waiting for bolt://127\.0\.0\.1:{port} — (\d+\.\d) s of 60 s — connection refused"
    pane.until(lambda rows: len(matching(line, rows)) == 1, "the wait line")
    [first] = matching(line, pane.rows())
    assert len(first) <= WIDTH - 3
    waited = re.fullmatch(line, first)
    assert waited is not None
    # Redrawn in place: a later time on the one row, never a second row.
    pane.until(lambda rows: len(matching(line, rows)) == 1 and matching(line, rows)[0] != first,
               "the wait line counting up")
    pane.keys("C-c")
    assert pane.finished() == 130
    rows = [row for row in pane.rows() if row]
    assert not [row for row in rows if "waiting for" in row], pane.screen
    logged = [row for row in rows if re.match(r"\d\d:\d\d:\d\d ", row)]
    assert logged[-2].split()[1:4] == ["error", "error", 'message="interrupted']
    assert logged[-1].split()[1:5] == ["error", "run.end", "outcome=interrupted",
                                       "exit_code=130"]


def test_index_line_shows_the_percent_then_goes(tool: Tool, clean_neo4j: Any, tmp_path: Path,
                                                panes: list[Pane]) -> None:
    """apply on 250,000 values to index: the line shows the populating index and its percent
    on the console's terminal, and no row of it is left when the run has ended."""
    for first in range(1, 250_000, 50_000):
        cypher(clean_neo4j, "UNWIND range($first, $first + 49999) AS i "
               "CREATE (:ComputeNode {buffering_since: i})", first=first)
    pane = open_pane(panes, tool, tmp_path, "apply", env=env_for(clean_neo4j))
    line = r"populating (\w+ \d+\.\d%, )*compute_buffering_since \d+\.\d%(, \w+ \d+\.\d%)*"
    pane.until(lambda rows: len(matching(line, rows)) == 1, "the index line")
    [shown] = matching(line, pane.rows())
    percent = float(shown.split("compute_buffering_since ")[1].split("%")[0])
    assert 0 <= percent < 100
    assert pane.finished() == 0, pane.screen
    rows = [row for row in pane.rows() if row]
    assert not [row for row in rows if row.startswith("populating")], pane.screen
    assert [row for row in rows if " index.progress " in row]
    [end] = [row for row in rows if " run.end " in row]
    assert "outcome=success" in end
    assert clean_neo4j.password not in pane.screen
