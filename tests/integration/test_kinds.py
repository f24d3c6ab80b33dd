"""Every kind a Community server has, through table files, on every line that has it (the
module and the portable binary): apply, status, rollback (also --to), reapply; same-name and
equivalent-name cases and option mismatches for every kind; hostile identifiers; the embedded
qmtl-worldservice table; a table the server cannot hold refused before any statement."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from db import cypher, env_for, names
from tool import Result, Tool

from neo4j_schema_rollback.catalog import Catalog
from neo4j_schema_rollback.dialect import DIALECT_5, render_create
from neo4j_schema_rollback.kinds import Kind
from neo4j_schema_rollback.table import Definition, SchemaObject, Table
from neo4j_schema_rollback.tablefile import read_table

EVERY_KIND = Path(__file__).resolve().parents[1] / "tables" / "every-kind.toml"
# 4.4 has neither relationship uniqueness constraints nor vector indexes: version 3 of the
# fixture holds exactly those.
V3 = {"unique_rel", "unique_rel_pair", "vector_node", "vector_rel"}
HOSTILE = "a`b'c\"d;e//f}g ü 名"


def fixture_for(line: str, tmp_path: Path) -> tuple[Path, Table]:
    """The every-kind table, cut to versions 1-2 on 4.4."""
    if line != "4.4":
        return EVERY_KIND, read_table(str(EVERY_KIND))
    text = EVERY_KIND.read_text()
    cut = tmp_path / "every-kind-4.4.toml"
    cut.write_text(text[:text.index("[[objects]]\nversion = 3")])
    return cut, read_table(str(cut))


def write_table(path: Path, table: Table) -> Path:
    """A table as a TOML file (json.dumps writes valid TOML basic strings and arrays)."""
    lines = [f"name = {json.dumps(table.name, ensure_ascii=False)}"]
    for obj in table.objects:
        d = obj.definition
        many = d.kind is Kind.FULLTEXT_INDEX
        target = ("labels" if many else "label") if d.entity == "NODE" else (
            "types" if many else "type")
        value = list(d.labels) if many else d.label
        lines += ["[[objects]]", f"version = {obj.version}",
                  f"name = {json.dumps(obj.name, ensure_ascii=False)}",
                  f'kind = "{d.kind.value}"',
                  f"{target} = {json.dumps(value, ensure_ascii=False)}",
                  f"properties = {json.dumps(list(d.properties), ensure_ascii=False)}"]
        if d.options:
            pairs = ", ".join(f"{k} = {json.dumps(list(v) if isinstance(v, tuple) else v)}"
                              for k, v in d.options)
            lines.append(f"options = {{ {pairs} }}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def run(tool: Tool, clean_neo4j: Any):  # type: ignore[no-untyped-def]
    def go(*args: str) -> Result:
        return tool.run(*args, env=env_for(clean_neo4j), secrets=(clean_neo4j.password,))

    return go


def live_definitions(server: Any) -> dict[str, Definition | None]:
    """What the server reports, read back into definitions (constraints and standalone
    indexes; LOOKUP indexes aside)."""
    catalog = Catalog.from_rows(cypher(server, "SHOW CONSTRAINTS YIELD *"),
                                cypher(server, "SHOW INDEXES YIELD *"))
    return {o.name: o.definition for o in (*catalog.constraints, *catalog.indexes)
            if o.type != "LOOKUP"}


SHOW_TYPES = {Kind.RANGE_INDEX: "RANGE", Kind.TEXT_INDEX: "TEXT", Kind.POINT_INDEX: "POINT",
              Kind.FULLTEXT_INDEX: "FULLTEXT", Kind.VECTOR_INDEX: "VECTOR"}


def reported(server: Any) -> set[tuple[str, str, str, tuple[str, ...], tuple[str, ...]]]:
    """The raw SHOW rows: (name, type, entity, labels or types, properties)."""
    rows = cypher(server, "SHOW CONSTRAINTS YIELD *") + [
        row for row in cypher(server, "SHOW INDEXES YIELD *")
        if row["type"] != "LOOKUP" and not row.get("owningConstraint")
        and row.get("uniqueness") != "UNIQUE"]
    return {(r["name"], r["type"], r["entityType"], tuple(r["labelsOrTypes"]),
             tuple(r["properties"])) for r in rows}


def expected(table: Table, line: str, up_to: int) -> set[tuple[str, str, str, tuple[str, ...],
                                                            tuple[str, ...]]]:
    rows = set()
    for obj in table.up_to(up_to):
        d = obj.definition
        if d.kind is Kind.UNIQUENESS_CONSTRAINT:
            type_ = "UNIQUENESS" if d.entity == "NODE" else "RELATIONSHIP_UNIQUENESS"
        elif d.kind is Kind.RANGE_INDEX and line == "4.4":
            type_ = "BTREE"
        else:
            type_ = SHOW_TYPES[d.kind]
        rows.add((obj.name, type_, d.entity.value, d.labels, d.properties))
    return rows


def test_every_kind_applied_checked_rolled_back_and_reapplied(run: Any, clean_neo4j: Any,
                                                              tmp_path: Path) -> None:
    """The fixture of every kind and option goes through the whole life on each line, and the
    schema each step ends with is the one the server reports."""
    path, table = fixture_for(clean_neo4j.line, tmp_path)
    every = {o.name for o in table.objects}
    r = run("apply", "--table", str(path))
    assert r.code == 0, r.stdout + r.stderr
    assert r.outcomes() == {name: "applied" for name in every}
    assert r.of("run.start")[0]["table"] == "every-kind"
    assert r.states() == {name: "present" for name in every}
    assert reported(clean_neo4j) == expected(table, clean_neo4j.line, table.newest)
    assert live_definitions(clean_neo4j) == {o.name: o.definition for o in table.objects}
    raw = {row["name"]: row for row in cypher(clean_neo4j, "SHOW INDEXES YIELD *")}
    assert raw["fulltext_node"]["options"]["indexConfig"]["fulltext.analyzer"] == "english"
    assert raw["point_node_bounded"]["options"]["indexConfig"]["spatial.cartesian.max"] == [
        100.0, 100.0]
    if clean_neo4j.line != "4.4":
        config = raw["vector_rel"]["options"]["indexConfig"]
        assert (config["vector.dimensions"], config["vector.similarity_function"]) == (
            4, "EUCLIDEAN")

    again = run("apply", "--table", str(path))
    assert again.code == 0
    assert set(again.outcomes().values()) == {"skipped"}
    assert run("status", "--table", str(path), "--expect", "applied").code == 0

    dry = run("rollback", "--table", str(path), "--dry-run")
    assert dry.code == 0 and set(dry.outcomes().values()) == {"planned"}
    assert reported(clean_neo4j) == expected(table, clean_neo4j.line, table.newest)

    down = run("rollback", "--table", str(path), "--to", "1", "--yes")
    assert down.code == 0, down.stdout + down.stderr
    dropped = [e["object"] for e in down.table_statements("applied")]
    assert dropped == [o.name for o in table.above(1)]
    assert reported(clean_neo4j) == expected(table, clean_neo4j.line, 1)
    assert run("status", "--table", str(path), "--to", "1", "--expect", "applied").code == 0

    gone = run("rollback", "--table", str(path), "--yes")
    assert gone.code == 0
    assert names(clean_neo4j) == set()
    assert run("status", "--table", str(path), "--expect", "absent").code == 0

    back = run("apply", "--table", str(path))
    assert back.code == 0
    assert reported(clean_neo4j) == expected(table, clean_neo4j.line, table.newest)


def _other(obj: SchemaObject) -> Definition:
    """Another definition for the same name: another property list, or for the kinds with
    options another option (dimensions, similarity, analyzer, bounds)."""
    d = obj.definition
    opts = dict(d.options)
    if d.kind is Kind.VECTOR_INDEX:
        opts["dimensions"] = int(opts["dimensions"]) + 1  # type: ignore[call-overload]
    elif d.kind is Kind.FULLTEXT_INDEX:
        opts["analyzer"] = "simple"
    elif d.kind is Kind.POINT_INDEX:
        opts["cartesian_max"] = (50.0, 50.0)
    else:
        return replace(d, properties=(*d.properties[:-1], d.properties[-1] + "_other"))
    return replace(d, options=tuple(sorted(opts.items())))


def create(server: Any, name: str, definition: Definition) -> None:
    cypher(server, render_create(SchemaObject(1, name, definition), DIALECT_5))


def test_same_name_other_definition_is_refused_for_every_kind(run: Any, clean_neo4j: Any,
                                                              tmp_path: Path) -> None:
    """A same-named object of another definition (options included) is refused by apply and
    rollback (exit 4) and stays."""
    path, table = fixture_for(clean_neo4j.line, tmp_path)
    for obj in table.objects:
        create(clean_neo4j, obj.name, _other(obj))
    before = live_definitions(clean_neo4j)
    r = run("apply", "--table", str(path))
    assert r.code == 4
    assert r.outcomes() == {o.name: "refused" for o in table.objects}
    assert all("same name, other definition" in e["reason"] for e in r.table_statements())
    assert run("status", "--table", str(path)).states() == {
        o.name: "mismatch" for o in table.objects}
    down = run("rollback", "--table", str(path), "--yes")
    assert down.code == 4
    assert down.outcomes() == {o.name: "refused" for o in table.objects}
    assert live_definitions(clean_neo4j) == before


def test_option_mismatch_is_named(run: Any, clean_neo4j: Any, tmp_path: Path) -> None:
    """The refusal says which option differs: the live vector dimensions, analyzer, bounds."""
    path, table = fixture_for(clean_neo4j.line, tmp_path)
    wanted = ["fulltext_node", "point_node_bounded"] + (
        ["vector_node"] if clean_neo4j.line != "4.4" else [])
    for obj in table.objects:
        if obj.name in wanted:
            create(clean_neo4j, obj.name, _other(obj))
    r = run("status", "--table", str(path))
    details = {e["object"]: e["live"] for e in r.of("object") if e["state"] == "mismatch"}
    assert set(details) == set(wanted)
    assert "analyzer: simple" in details["fulltext_node"]
    assert "cartesian_max: (50.0, 50.0)" in details["point_node_bounded"]
    if "vector_node" in details:
        assert "dimensions: 4" in details["vector_node"]


def test_equivalent_under_another_name_is_reported_and_never_dropped(
        run: Any, clean_neo4j: Any, tmp_path: Path) -> None:
    """Each kind's definition under another name: apply refuses (exit 4), rollback skips it
    and leaves it."""
    path, table = fixture_for(clean_neo4j.line, tmp_path)
    for obj in table.objects:
        create(clean_neo4j, obj.name + "_twin", obj.definition)
    r = run("apply", "--table", str(path))
    assert r.code == 4
    assert r.outcomes() == {o.name: "refused" for o in table.objects}
    assert {e["object"]: e["reason"] for e in r.table_statements()} == {
        o.name: f"absent by name; the same definition exists as {o.name}_twin"
        for o in table.objects}
    down = run("rollback", "--table", str(path), "--yes")
    assert down.code == 0
    assert down.outcomes() == {o.name: "skipped" for o in table.objects}
    assert names(clean_neo4j) == {o.name + "_twin" for o in table.objects}


def test_hostile_identifiers_on_every_kind(run: Any, clean_neo4j: Any, tmp_path: Path) -> None:
    """Names, labels, types and properties holding backticks, quotes, ;, //, } and non-ASCII
    text make exactly the one statement meant, for every kind the line has."""
    _, table = fixture_for(clean_neo4j.line, tmp_path)
    hostile = Table(HOSTILE, tuple(
        SchemaObject(o.version, f"{HOSTILE} {o.name}", replace(
            o.definition, labels=tuple(f"{HOSTILE}{label}" for label in o.definition.labels),
            properties=tuple(f"{p}{HOSTILE}" for p in o.definition.properties)))
        for o in table.objects))
    path = write_table(tmp_path / "hostile.toml", hostile)
    r = run("apply", "--table", str(path))
    assert r.code == 0, r.stdout + r.stderr
    assert all(len(e["counters"]) == 1 for e in r.table_statements("applied"))
    assert live_definitions(clean_neo4j) == {o.name: o.definition for o in hostile.objects}
    down = run("rollback", "--table", str(path), "--yes")
    assert down.code == 0
    assert names(clean_neo4j) == set()


def test_worldservice_table(run: Any, clean_neo4j: Any) -> None:
    """qmtl-worldservice's composite key (every line has it), as QMTL's guide creates it."""
    r = run("apply", "--table", "qmtl-worldservice")
    assert r.code == 0, r.stdout + r.stderr
    [create_] = r.table_statements("applied")
    assert create_["cypher"] == (
        "CREATE CONSTRAINT world_node_ref_key IF NOT EXISTS FOR (w:WorldNodeRef) REQUIRE "
        "(w.world_id, w.node_id, w.execution_domain) IS UNIQUE")
    assert reported(clean_neo4j) == {("world_node_ref_key", "UNIQUENESS", "NODE",
                                      ("WorldNodeRef",),
                                      ("world_id", "node_id", "execution_domain"))}
    down = run("rollback", "--table", "qmtl-worldservice", "--yes")
    assert down.code == 0
    assert [e["cypher"] for e in down.table_statements("applied")] == [
        "DROP CONSTRAINT world_node_ref_key IF EXISTS"]
    assert names(clean_neo4j) == set()


def test_a_kind_the_server_lacks_is_refused_before_any_statement(run: Any, clean_neo4j: Any,
                                                                 tmp_path: Path) -> None:
    """4.4 refuses the full fixture (relationship uniqueness arrives in 5.7); a Community server
    refuses Enterprise kinds: exit 2, nothing but the identification sent."""
    enterprise = tmp_path / "enterprise.toml"
    enterprise.write_text('name = "e"\n[[objects]]\nversion = 1\nname = "must_have"\n'
                          'kind = "existence_constraint"\nlabel = "A"\nproperties = ["p"]\n')
    community = ("object 'must_have': existence_constraint on nodes needs Neo4j Enterprise "
                 "Edition; this server is Community Edition")
    cases = [(enterprise, command, community)
             for command in (["apply"], ["rollback", "--yes"], ["status"])]
    if clean_neo4j.line == "4.4":
        # apply and status name the table's first object the line lacks; rollback, which goes
        # newest first, its newest
        first = ("object 'unique_rel': uniqueness_constraint on relationships needs Neo4j 5.7 "
                 "or later, not 4.4.")
        cases += [(EVERY_KIND, ["apply"], first), (EVERY_KIND, ["status"], first),
                  (EVERY_KIND, ["rollback", "--yes"], "object 'vector_rel': vector_index on "
                   "relationships needs Neo4j 5.18 or later, not 4.4.")]
    for path, command, message in cases:
        r = run(*command, "--table", str(path))
        assert r.code == 2, r.stdout + r.stderr
        [error] = r.of("error")
        assert message in error["message"]
        assert [e["action"] for e in r.statements] == ["inspect"]  # dbms.components only
    assert names(clean_neo4j) == set()


# Data no index of the kind can hold, per kind: a 40,000-character string is one term too
# long for Lucene (the text index; the full-text index with the keyword analyzer, which keeps
# the whole value as one term). Point and vector indexes skip what they cannot hold (a point
# far out of the bounds, a vector of another dimension, of NaN or of strings) and stay ONLINE:
# docs/compatibility.md lists what was tried.
UNINDEXABLE = """name = "unindexable"
[[objects]]
version = 1
name = "text_node_failed"
kind = "text_index"
label = "Doc"
properties = ["body"]
[[objects]]
version = 1
name = "text_rel_failed"
kind = "text_index"
type = "LINK"
properties = ["note"]
[[objects]]
version = 1
name = "fulltext_node_failed"
kind = "fulltext_index"
labels = ["Doc"]
properties = ["title"]
options = { analyzer = "keyword" }
[[objects]]
version = 1
name = "fulltext_rel_failed"
kind = "fulltext_index"
types = ["LINK"]
properties = ["text"]
options = { analyzer = "keyword" }
[[objects]]
version = 1
name = "point_node_kept"
kind = "point_index"
label = "Doc"
properties = ["at"]
options = { cartesian_min = [-1.0, -1.0], cartesian_max = [1.0, 1.0] }
[[objects]]
version = 1
name = "point_rel_kept"
kind = "point_index"
type = "LINK"
properties = ["via"]
"""
UNINDEXABLE_VECTORS = """[[objects]]
version = 1
name = "vector_node_kept"
kind = "vector_index"
label = "Doc"
properties = ["embedding"]
options = { dimensions = 3, similarity_function = "cosine" }
[[objects]]
version = 1
name = "vector_rel_kept"
kind = "vector_index"
type = "LINK"
properties = ["embedding"]
options = { dimensions = 3, similarity_function = "euclidean" }
"""


def test_an_index_of_each_kind_driven_to_failed_is_named(run: Any, clean_neo4j: Any,
                                                         tmp_path: Path) -> None:
    """Text and full-text indexes, on nodes and relationships, that the data drives FAILED:
    apply exits 1 naming each of them; point and vector indexes on data they cannot hold stay
    ONLINE."""
    path = tmp_path / "unindexable.toml"
    path.write_text(UNINDEXABLE + (UNINDEXABLE_VECTORS if clean_neo4j.line != "4.4" else ""))
    big = "x" * 40000
    far = "point({x: 1.0e308, y: -1.0e308})"
    cypher(clean_neo4j, f"CREATE (:Doc {{body: $big, title: $big, at: {far}, "
           "embedding: [1.0, 2.0]}), (:Doc {embedding: [0.0 / 0.0, 1.0, 1.0]}), "
           "(:Doc {embedding: ['a', 'b', 'c']})",
           big=big)
    cypher(clean_neo4j, f"CREATE ()-[:LINK {{note: $big, text: $big, via: {far}, "
           "embedding: [1.0, 2.0]}]->(), ()-[:LINK {embedding: [$inf, 1.0, 1.0]}]->()",
           big=big, inf=float("inf"))  # 4.4 folds 1.0 / 0.0 and refuses it as too large
    table = read_table(str(path))
    r = run("apply", "--table", str(path))
    assert r.code == 1, r.stdout + r.stderr
    [error] = r.of("error")
    assert error["error_class"] == "index_failed"
    assert error["message"].count("\n") == 0
    assert error["message"].startswith("index FAILED: ")
    # "name: first line; name: first line" (Lucene's line holds "; " too)
    parts = re.split(r"(?:^index FAILED: |; )(\w+): (?=java\.lang\.)", error["message"])
    failed = dict(zip(parts[1::2], parts[2::2], strict=True))
    assert set(failed) == {"text_node_failed", "text_rel_failed", "fulltext_node_failed",
                           "fulltext_rel_failed"}
    # text-1.0 (4.4) is Lucene and says what the full-text index says
    lucene = "Document contains at least one immense term"
    text = lucene if clean_neo4j.line == "4.4" else "Property value is too large to index"
    assert failed["text_node_failed"].startswith(f"java.lang.IllegalArgumentException: {text}")
    assert failed["text_rel_failed"].startswith(f"java.lang.IllegalArgumentException: {text}")
    assert failed["fulltext_node_failed"].startswith(
        f"java.lang.IllegalArgumentException: {lucene}")
    assert failed["fulltext_rel_failed"].startswith(
        f"java.lang.IllegalArgumentException: {lucene}")
    assert r.end["outcome"] == "failed"
    assert r.outcomes() == {o.name: "applied" for o in table.objects}
    states = {row["name"]: row["state"] for row in cypher(clean_neo4j, "SHOW INDEXES YIELD *")}
    assert {o.name: states[o.name] for o in table.objects} == {
        o.name: "FAILED" if o.name in failed else "ONLINE" for o in table.objects}
    again = run("apply", "--table", str(path))
    assert again.code == 1
    assert set(again.outcomes().values()) == {"skipped"}
    assert run("rollback", "--table", str(path), "--yes").code == 0
    assert names(clean_neo4j) == set()
