"""Direct access to a test-bed server, for arranging a scenario and checking its outcome."""

from __future__ import annotations

from typing import Any

import neo4j


def cypher(server: Any, query: str, **params: Any) -> list[dict[str, Any]]:
    """Run one statement on `server` and return its rows."""
    with neo4j.GraphDatabase.driver(server.uri, auth=(server.username, server.password)) as d:
        records, _, _ = d.execute_query(query, params)
        return [r.data() for r in records]


def snapshot(server: Any) -> list[tuple[Any, ...]]:
    """Every constraint and index, as comparable tuples, sorted."""
    constraints = cypher(server, "SHOW CONSTRAINTS YIELD *")
    indexes = cypher(server, "SHOW INDEXES YIELD *")
    rows = [("constraint", c["name"], c["type"], c["entityType"], tuple(c["labelsOrTypes"] or ()),
             tuple(c["properties"] or ())) for c in constraints]
    rows += [("index", i["name"], i["type"], i["entityType"], tuple(i["labelsOrTypes"] or ()),
              tuple(i["properties"] or ())) for i in indexes]
    return sorted(rows)


def names(server: Any) -> set[str]:
    """Names of every constraint and non-LOOKUP index."""
    return {row[1] for row in snapshot(server) if row[2] != "LOOKUP"}


def env_for(server: Any) -> dict[str, str]:
    return {"NEO4J_URI": server.uri, "NEO4J_USERNAME": server.username,
            "NEO4J_PASSWORD": server.password}
