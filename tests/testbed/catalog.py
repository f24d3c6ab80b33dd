"""Record what ``SHOW CONSTRAINTS YIELD *`` / ``SHOW INDEXES YIELD *`` return on a real server,
as JSON fixtures for the unit tests (``tests/unit/fixtures/catalog-<line>.json``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from .db import reset_database, server_version, to_jsonable
from .errors import TestbedError

SCHEMA = (
    "CREATE CONSTRAINT compute_pk IF NOT EXISTS FOR (c:ComputeNode) REQUIRE c.node_id IS UNIQUE",
    "CREATE INDEX kafka_topic IF NOT EXISTS FOR (q:Queue) ON (q.topic)",
)


def capture(driver: Any, *, cypher25: bool = False,
            schema: tuple[str, ...] = SCHEMA) -> dict[str, Any]:
    """Reset the database, create the sample schema (or `schema`) and return the catalog rows."""
    prefix = "CYPHER 25 " if cypher25 else ""
    reset_database(driver)
    for statement in schema:
        driver.execute_query(prefix + statement)
    result: dict[str, Any] = {"server_version": server_version(driver)}
    for key, query in (("constraints", "SHOW CONSTRAINTS YIELD *"),
                       ("indexes", "SHOW INDEXES YIELD *")):
        records, _, keys = driver.execute_query(prefix + query)
        result[key] = [{k: to_jsonable(rec[k]) for k in keys} for rec in records]
    return result


def write_catalog(name: str, out: str | None, *, cypher25: bool = False,
                  schema_file: str | None = None) -> None:
    """Capture the catalog of a running instance (a line's default one: named like the line);
    `schema_file`: statements to create instead of the sample, one per line ending in ';' (what
    `neo4j-schema-rollback statements` prints)."""
    schema = SCHEMA if schema_file is None else tuple(
        line.rstrip().removesuffix(";") for line in Path(schema_file).read_text().splitlines()
        if line.strip() and not line.startswith("//"))
    from .lines import LINES
    from .server import running

    server = running(name)
    if server is None:
        what = "line" if name in LINES else "instance"
        raise TestbedError(f"{what} {name} is not running; start it first")
    with server.driver() as driver:
        data = capture(driver, cypher25=cypher25, schema=schema)
    text = json.dumps(data, indent=2) + "\n"
    if out is None:
        sys.stdout.write(text)
    else:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text)
        print(f"neo4j-testbed: wrote {out}", file=sys.stderr)
