"""On a terminal, rollback asks before dropping; the answer decides."""

from __future__ import annotations

import os
import pty
import subprocess
from typing import Any

import pytest
from db import env_for, names
from tool import Result, Tool, check


def rollback_on_a_terminal(tool: Tool, server: Any, answer: bytes) -> tuple[int, str, str]:
    """Run rollback with a pseudo-terminal as stdin, answer its question, return the result."""
    main, secondary = pty.openpty()
    proc = subprocess.Popen([*tool.command, "rollback", "--log-format", "json"],
                            env={**tool.base_env, **env_for(server)}, stdin=secondary,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    os.close(secondary)
    assert proc.stderr is not None
    prompt = b""
    while b"Type 'yes' to continue: " not in prompt:
        chunk = proc.stderr.read1(4096)  # type: ignore[attr-defined]
        assert chunk, f"no question asked; stderr so far: {prompt!r}"
        prompt += chunk
    os.write(main, answer)
    out, err = proc.communicate(timeout=120)
    os.close(main)
    return proc.returncode, out.decode(), (prompt + err).decode()


@pytest.mark.parametrize(("answer", "code"), [(b"yes\n", 0), (b"no\n", 2)])
def test_rollback_asks_on_a_terminal(tool: Tool, clean_neo4j: Any, answer: bytes,
                                     code: int) -> None:
    """The question names the objects; 'yes' drops them, anything else sends nothing."""
    assert tool.run("apply", env=env_for(clean_neo4j)).code == 0
    rc, out, err = rollback_on_a_terminal(tool, clean_neo4j, answer)
    assert rc == code
    assert "Drop 5 schema object(s) from" in err
    assert "compute_buffering_since, queue_interval, compute_tags, kafka_topic, compute_pk" in err
    result = check(Result(rc, out, err), ("rollback",), (clean_neo4j.password,))
    events = result.events
    drops = [e for e in events if e["event"] == "statement" and e["action"] == "drop"]
    if code == 0:
        assert names(clean_neo4j) == set()
        assert {e["outcome"] for e in drops} == {"applied"}
    else:
        assert len(names(clean_neo4j)) == 5
        assert drops == []
        assert events[-1]["event"] == "run.end"
        assert "not confirmed" in result.of("error")[0]["message"]
