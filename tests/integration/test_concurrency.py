"""Two runs at once: each exits with a documented code, each log tells the truth, and the final
catalog is one the table allows. The assertions hold for every interleaving."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from db import env_for, names, snapshot
from tool import Result, Tool, finish

ALL = {"compute_pk", "kafka_topic", "compute_tags", "queue_interval", "compute_buffering_since"}
DOCUMENTED = {0, 1, 2, 3, 4, 130, 143}


def together(tool: Tool, server: Any, *commands: tuple[str, ...]) -> list[Result]:
    """Start every command before waiting for any, then collect them all."""
    env = env_for(server)
    procs = [(args, tool.spawn(*args, env=env)) for args in commands]
    return [finish(proc, [], args, secrets=(server.password,)) for args, proc in procs]


def changes(results: list[Result], action: str) -> Counter[str]:
    """How many times each object was really created/dropped, by the runs' own account."""
    return Counter(e["object"] for r in results for e in r.table_statements("applied")
                   if e["action"] == action)


def allowed(server: Any) -> None:
    """Every table object in the catalog has its table definition; nothing foreign appeared."""
    rows = [row for row in snapshot(server) if row[2] != "LOOKUP"]
    for kind, name, type_, _entity, labels, props in rows:
        assert name in ALL
        if name == "compute_pk" and kind == "constraint":
            assert (type_, labels, props) == ("UNIQUENESS", ("ComputeNode",), ("node_id",))
        else:  # a table index, or the index that backs compute_pk
            assert kind == "index" and type_ in ("RANGE", "BTREE")


def test_two_applies_at_once(tool: Tool, clean_neo4j: Any) -> None:
    """Both succeed; each object was created exactly once, by one of them."""
    results = together(tool, clean_neo4j, ("apply",), ("apply",))
    for r in results:
        assert r.code in DOCUMENTED
        assert r.code == 0, r.stdout
        assert r.end["exit_code"] == r.code
    assert changes(results, "create") == Counter(ALL)
    assert names(clean_neo4j) == ALL
    allowed(clean_neo4j)


def test_two_rollbacks_at_once(tool: Tool, clean_neo4j: Any) -> None:
    """Both succeed; each object was dropped exactly once, by one of them."""
    assert tool.run("apply", env=env_for(clean_neo4j)).code == 0
    results = together(tool, clean_neo4j, ("rollback", "--yes"), ("rollback", "--yes"))
    for r in results:
        assert r.code == 0, r.stdout
    assert changes(results, "drop") == Counter(ALL)
    assert names(clean_neo4j) == set()


@pytest.mark.parametrize("start_full", [False, True])
def test_apply_racing_rollback(tool: Tool, clean_neo4j: Any, start_full: bool) -> None:
    """Whatever the interleaving, the logs add up to the final catalog, object by object."""
    if start_full:
        assert tool.run("apply", env=env_for(clean_neo4j)).code == 0
    results = together(tool, clean_neo4j, ("apply",), ("rollback", "--yes"))
    for r in results:
        assert r.code in DOCUMENTED
        assert r.end["exit_code"] == r.code
        assert r.code in (0, 1, 4), r.stdout
    created, dropped = changes(results, "create"), changes(results, "drop")
    final = names(clean_neo4j)
    for name in ALL:
        net = int(start_full) + created[name] - dropped[name]
        assert net == (1 if name in final else 0), (name, created, dropped, final)
    allowed(clean_neo4j)
