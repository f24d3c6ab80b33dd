"""Helpers that talk to a test-bed server through the Python driver."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import neo4j


def quote_name(name: str) -> str:
    """A Cypher identifier in backticks."""
    return "`" + name.replace("`", "``") + "`"


def server_version(driver: neo4j.Driver) -> str:
    records, _, _ = driver.execute_query(
        "CALL dbms.components() YIELD name, versions WHERE name = 'Neo4j Kernel' "
        "RETURN versions[0] AS version"
    )
    return str(records[0]["version"])


def reset_database(driver: neo4j.Driver, database: str | None = None) -> None:
    """Bring a database back to its fresh state: drop every constraint, then every index but
    the LOOKUP ones, delete all nodes (and relationships), and re-create a node or relationship
    LOOKUP index if a test dropped it."""
    kw: dict[str, Any] = {"database_": database} if database else {}
    constraints, _, _ = driver.execute_query("SHOW CONSTRAINTS YIELD name RETURN name", **kw)
    for rec in constraints:
        driver.execute_query(f"DROP CONSTRAINT {quote_name(rec['name'])} IF EXISTS", **kw)
    indexes, _, _ = driver.execute_query(
        "SHOW INDEXES YIELD name, type, entityType RETURN name, type, entityType", **kw
    )
    lookups = set()
    for rec in indexes:
        if rec["type"] == "LOOKUP":
            lookups.add(rec["entityType"])
        else:
            driver.execute_query(f"DROP INDEX {quote_name(rec['name'])} IF EXISTS", **kw)
    # In batches: one transaction deleting a test's 250,000 nodes strains the test bed's heap.
    while True:
        records, _, _ = driver.execute_query(
            "MATCH (n) WITH n LIMIT 50000 DETACH DELETE n RETURN count(*) AS deleted", **kw)
        if records[0]["deleted"] == 0:
            break
    if "NODE" not in lookups:
        driver.execute_query("CREATE LOOKUP INDEX IF NOT EXISTS FOR (n) ON EACH labels(n)", **kw)
    if "RELATIONSHIP" not in lookups:
        driver.execute_query(
            "CREATE LOOKUP INDEX IF NOT EXISTS FOR ()-[r]-() ON EACH type(r)", **kw
        )


def to_jsonable(value: Any) -> Any:
    """Driver values as JSON values: lists, objects, strings, numbers, booleans, None
    (temporal values as ISO-8601 strings)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    iso = getattr(value, "iso_format", None)
    if callable(iso):
        return iso()
    if isinstance(value, (datetime.date, datetime.time, datetime.timedelta)):
        return str(value)
    return str(value)
