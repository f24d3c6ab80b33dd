"""Generated tables (hypothesis) on the real servers: whatever names and options a valid table
holds, its statements are exactly the ones the server runs, on every line; and the tool, as the
module and the portable binary, applies and rolls back such tables whole."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Any

import neo4j
from db import env_for, names
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_kinds import live_definitions, write_table
from tool import Tool

from neo4j_schema_rollback import commands
from neo4j_schema_rollback.catalog import Catalog
from neo4j_schema_rollback.dialect import ServerVersion, lacking
from neo4j_schema_rollback.kinds import Entity, Kind
from neo4j_schema_rollback.table import Definition, SchemaObject, Table
from neo4j_schema_rollback.tablefile import read_table
from testbed.db import reset_database

# Hostile pieces and ordinary ones; no control characters (the validator refuses those).
_piece = st.sampled_from(["a", "Z", "_", "`", "``", "'", '"', ";", "//", "}", "{", " ", "ü",
                          "名", ".", "-", "$", ":", "|", "(", ")", "[", "]", "\\", "ON", "x9"])
_ident = st.lists(_piece, min_size=1, max_size=6).map("".join)
_community = [k for k in Kind if k.spec.edition == "community"]


@st.composite
def _object(draw: st.DrawFn, index: int) -> SchemaObject:
    kind = draw(st.sampled_from(_community))
    spec = kind.spec
    entity = draw(st.sampled_from(spec.entities))
    targets = draw(st.integers(1, min(spec.max_targets, 3)))
    # Each object its own labels: two kinds on one schema may be refused by the server for
    # reasons of its own (a constraint over an existing index), which is not what is tested.
    labels = tuple(f"{draw(_ident)}#{index}.{n}" for n in range(targets))
    count = draw(st.integers(1, spec.max_properties or 3))
    props = tuple(f"{draw(_ident)}{n}" for n in range(count))
    options: dict[str, Any] = {}
    if kind is Kind.VECTOR_INDEX:
        options = {"dimensions": draw(st.integers(1, 4096)),
                   "similarity_function": draw(st.sampled_from(["cosine", "EUCLIDEAN"]))}
    elif kind is Kind.FULLTEXT_INDEX:
        options = draw(st.fixed_dictionaries({}, optional={
            "analyzer": st.sampled_from(["english", "simple", "whitespace", "standard"]),
            "eventually_consistent": st.booleans()}))
    elif kind is Kind.POINT_INDEX:
        low = draw(st.floats(-1e6, -1, allow_nan=False))
        options = draw(st.fixed_dictionaries({}, optional={
            "cartesian_min": st.just([low, low]), "cartesian_max": st.just([-low, -low])}))
    name = f"{draw(_ident)}#{index}".lstrip()  # the server strips a name's spaces (refused)
    return SchemaObject(draw(st.integers(1, 2)), name,
                        Definition(kind, labels, props, entity,
                                   spec.canonical_options(options)))


@st.composite
def _table(draw: st.DrawFn) -> Table:
    size = draw(st.integers(1, 4))
    objects = sorted((draw(_object(i)) for i in range(size)), key=lambda o: o.version)
    return Table(draw(_ident), tuple(objects))


def test_generated_tables_run_on_the_server(clean_neo4j: Any, neo4j_driver: neo4j.Driver
                                            ) -> None:
    """Each generated table, written as a file, validated and rendered by the tool, is created
    by the server statement for statement as the definitions it holds, then dropped."""
    version = ServerVersion.parse(clean_neo4j.version)

    @settings(max_examples=20, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(_table())
    def check(table: Table) -> None:
        if lacking(table.objects, version, "community") is not None:
            return  # refused before any statement: tested in test_kinds
        reset_database(neo4j_driver)  # also after a failed example, while hypothesis shrinks
        with tempfile.TemporaryDirectory() as scratch:
            parsed = read_table(str(write_table(Path(scratch) / "t.toml", table)))
        assert parsed == table
        for action in ("apply", "rollback"):
            out = io.StringIO()
            commands.statements(out, parsed, action, str(version))  # type: ignore[arg-type]
            for line in out.getvalue().splitlines():
                summary = neo4j_driver.execute_query(line.removesuffix(";")).summary
                counters = summary.counters
                assert counters.indexes_added + counters.constraints_added + (
                    counters.indexes_removed + counters.constraints_removed) == 1, line
            if action == "apply":
                rows = [neo4j_driver.execute_query(q).records
                        for q in ("SHOW CONSTRAINTS YIELD *", "SHOW INDEXES YIELD *")]
                catalog = Catalog.from_rows([r.data() for r in rows[0]],
                                            [r.data() for r in rows[1]])
                live = {o.name: o.definition for o in (*catalog.constraints, *catalog.indexes)
                        if o.type != "LOOKUP"}
                for obj in table.objects:
                    assert live.get(obj.name) == obj.definition, (obj.name, live)

    check()
    assert Entity.NODE  # the module's imports are all used


def test_generated_tables_apply_and_roll_back_through_the_tool(
        tool: Tool, clean_neo4j: Any, neo4j_driver: neo4j.Driver) -> None:
    """Each generated table, as a file, goes through the tool as a user starts it (the module,
    the portable binary): apply creates exactly its definitions, rollback drops them all."""
    version = ServerVersion.parse(clean_neo4j.version)
    env = env_for(clean_neo4j)

    # Fewer examples than above: each is two whole runs of the tool (the binary's start in its
    # root included), about a second each.
    @settings(max_examples=10, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(_table())
    def check(table: Table) -> None:
        if lacking(table.objects, version, "community") is not None:
            return
        reset_database(neo4j_driver)
        with tempfile.TemporaryDirectory() as scratch:
            path = str(write_table(Path(scratch) / "t.toml", table))
            up = tool.run("apply", "--table", path, env=env, secrets=(clean_neo4j.password,))
            assert up.code == 0, up.stdout + up.stderr
            assert up.outcomes() == {o.name: "applied" for o in table.objects}
            assert live_definitions(clean_neo4j) == {o.name: o.definition
                                                     for o in table.objects}
            down = tool.run("rollback", "--table", path, "--yes", env=env,
                            secrets=(clean_neo4j.password,))
            assert down.code == 0, down.stdout + down.stderr
            assert names(clean_neo4j) == set()

    check()
