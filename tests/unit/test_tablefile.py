"""Table files: every bad file is one usage line naming the file, the object and the field, and
a good one parses into the same Table as the embedded tables (also under hypothesis)."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neo4j_schema_rollback import commands
from neo4j_schema_rollback.errors import UsageError
from neo4j_schema_rollback.kinds import Entity, Kind
from neo4j_schema_rollback.table import QMTL_WORLDSERVICE, Definition
from neo4j_schema_rollback.tablefile import read_table

TABLES = Path(__file__).resolve().parents[1] / "tables"
GOOD = """\
name = "t"

[[objects]]
version = 1
name = "world_node_ref_key"
kind = "uniqueness_constraint"
label = "WorldNodeRef"
properties = ["world_id", "node_id", "execution_domain"]
"""


def write(tmp_path: Path, text: str | bytes) -> str:
    path = tmp_path / "table.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return str(path)


def refusal(tmp_path: Path, text: str | bytes) -> str:
    path = write(tmp_path, text)
    with pytest.raises(UsageError) as caught:
        read_table(path)
    message = caught.value.message
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    return message.removeprefix(f"{path}: ")


def test_a_file_parses_into_the_same_model_as_the_embedded_table(tmp_path: Path) -> None:
    """The worldservice key written as a file is the embedded table's object."""
    table = read_table(write(tmp_path, GOOD))
    assert table.objects == QMTL_WORLDSERVICE.objects


def test_every_kind_fixture_parses() -> None:
    """The every-kind fixture holds every Community kind, on nodes and relationships."""
    table = read_table(str(TABLES / "every-kind.toml"))
    kinds = {(o.kind, o.definition.entity) for o in table.objects}
    community = [k for k in Kind if k.spec.edition == "community"]
    assert kinds == {(k, e) for k in community for e in Entity}
    vector = next(o for o in table.objects if o.name == "vector_node").definition
    assert vector.options == (("dimensions", 3), ("similarity_function", "cosine"))
    point = next(o for o in table.objects if o.name == "point_node_bounded").definition
    assert point.option("cartesian_max") == (100.0, 100.0)
    assert point.option("wgs_84_min") == (-180.0, -90.0)  # the server's default, filled in


BAD = [
    (b"\xff\xfe", "not UTF-8 text"),
    ("name = 1 2\n", "not valid TOML: .*\\(at line 1, column 10\\)"),
    ('name = "t"\nfoo = 1\n', "unknown field 'foo'"),
    ('name = "t"\n', "field 'objects': missing or empty"),
    ('objects = []\n', "field 'name': missing"),
    (GOOD.replace('kind = "uniqueness_constraint"', 'kind = "btree_index"'),
     "object 'world_node_ref_key': field 'kind': unknown kind 'btree_index'"),
    (GOOD.replace('kind = "uniqueness_constraint"', 'kind = "lookup_index"'),
     "object 'world_node_ref_key': field 'kind': lookup indexes exist by default"),
    (GOOD.replace('version = 1', 'version = 1\ncolour = "red"'),
     "object 'world_node_ref_key': unknown field 'colour'"),
    (GOOD + GOOD.split("\n", 1)[1], "object 'world_node_ref_key': field 'name': the name "
     "appears twice"),
    (GOOD.replace("version = 1", "version = 2") + GOOD.split("\n", 1)[1].replace(
        'name = "world_node_ref_key"', 'name = "b"'), "object 'b': field 'version': versions "
     "never decrease \\(1 after 2\\)"),
    (GOOD.replace('version = 1', 'version = "1"'), "field 'version': '1' is not a whole"),
    (GOOD.replace('version = 1', 'version = true'), "field 'version': True is not a whole"),
    (GOOD.replace('["world_id", "node_id", "execution_domain"]', '[]'),
     "object 'world_node_ref_key': field 'properties': the list is empty"),
    (GOOD.replace('["world_id", "node_id", "execution_domain"]', '"world_id"'),
     "field 'properties': not a list of strings"),
    (GOOD.replace('["world_id", "node_id", "execution_domain"]', '[1]'),
     "field 'properties': 1 must be"),
    (GOOD.replace('label = "WorldNodeRef"', ''), "give exactly one of the fields 'label'"),
    (GOOD.replace('label = "WorldNodeRef"', 'label = "A"\ntype = "B"'), "give exactly one"),
    (GOOD.replace('label = "WorldNodeRef"', 'labels = ["A", "B"]'),
     "field 'labels': uniqueness_constraint takes one; use 'label'"),
    (GOOD.replace('label = "WorldNodeRef"', 'label = "A\\nB"'), "field 'label': "),
    (GOOD + 'options = { analyzer = "english" }\n', "field 'options': unknown option "
     "'analyzer' for uniqueness_constraint \\(known: none\\)"),
    (GOOD + 'options = 3\n', "field 'options': not a table"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_every_bad_file_is_one_line_naming_file_object_and_field(tmp_path: Path,
                                                                 text: str | bytes,
                                                                 message: str) -> None:
    """Each broken file is refused with a message naming where the problem is."""
    assert re.search(message, refusal(tmp_path, text))


VECTOR = """\
name = "v"
[[objects]]
version = 1
name = "v"
kind = "vector_index"
label = "Chunk"
properties = ["embedding"]
"""


@pytest.mark.parametrize(("options", "message"), [
    ("", "option 'dimensions' is required"),
    ("options = { dimensions = 3 }", "option 'similarity_function' is required"),
    ("options = { dimensions = 0, similarity_function = 'cosine' }",
     "option 'dimensions': 0 is not a whole number from 1 to 4096"),
    ("options = { dimensions = 4097, similarity_function = 'cosine' }", "from 1 to 4096"),
    ("options = { dimensions = 3.0, similarity_function = 'cosine' }", "3.0 is not a whole"),
    ("options = { dimensions = 3, similarity_function = 'dot' }", "'dot' is not one of"),
    ("options = { dimensions = 3, similarity_function = 'cosine', m = 16 }",
     "unknown option 'm'"),
])
def test_vector_options_are_checked(tmp_path: Path, options: str, message: str) -> None:
    """A vector index needs its dimensions and similarity function, each of the right type."""
    assert message in refusal(tmp_path, VECTOR + options + "\n")


@pytest.mark.parametrize(("kind", "options", "message"), [
    ("fulltext_index", "{ analyzer = \"eng'lish\" }", "is not an analyzer name"),
    ("fulltext_index", "{ eventually_consistent = 1 }", "1 is not true or false"),
    ("point_index", "{ cartesian_min = [1.0] }", "is not a list of 2 finite numbers"),
    ("point_index", "{ cartesian_3d_max = [1.0, 2.0, inf] }", "3 finite numbers"),
    ("point_index", "{ wgs_84_min = [true, 1.0] }", "2 finite numbers"),
    ("point_index", "{ cartesian_max = [1%s, 1.0] }" % ("0" * 400), "…"),
    ("property_type_constraint", "{ property_type = \"INTEGER; DROP\" }", "is not one of"),
])
def test_options_of_the_wrong_type_or_range(tmp_path: Path, kind: str, options: str,
                                            message: str) -> None:
    """Every option is checked for type and range."""
    text = VECTOR.replace("vector_index", kind).replace('label = "Chunk"', 'labels = ["C"]'
                                                        if kind == "fulltext_index" else
                                                        'label = "C"')
    assert message in refusal(tmp_path, f"{text}options = {options}\n")


def test_an_integer_beyond_cpythons_limit_is_a_bad_file(tmp_path: Path) -> None:
    """An integer of more than 4300 digits, which int() refuses: one line, exit 2."""
    text = VECTOR + "options = { dimensions = 1%s }\n" % ("0" * 5000)
    assert refusal(tmp_path, text) == "not a table file: an integer has more than 4300 digits"


def test_an_unreadable_or_missing_file(tmp_path: Path) -> None:
    """A missing path names the embedded tables; a directory cannot be read."""
    with pytest.raises(UsageError, match=r"neither an embedded table .*qmtl-worldservice"):
        read_table(str(tmp_path / "nope.toml"))
    with pytest.raises(UsageError, match="cannot read the table file"):
        read_table(str(tmp_path))


def test_options_read_as_definitions(tmp_path: Path) -> None:
    """The fulltext analyzer and types land in the definition; defaults are filled in."""
    text = VECTOR.replace("vector_index", "fulltext_index").replace(
        'label = "Chunk"', 'types = ["R", "S"]')
    [obj] = read_table(write(tmp_path, text)).objects
    assert obj.definition == Definition(
        Kind.FULLTEXT_INDEX, ("R", "S"), ("embedding",), Entity.RELATIONSHIP,
        (("analyzer", "standard-no-stop-words"), ("eventually_consistent", False)))


# -- generated tables: never a traceback, a valid table always prints its statements ----------

_ident = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)),
                 min_size=0, max_size=12)
_value = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5000) | st.floats(allow_nan=True) | _ident,
    lambda inner: st.lists(inner, max_size=4), max_leaves=6)
_object = st.fixed_dictionaries(
    {"version": st.integers(-1, 4) | _value, "name": _ident | _value,
     "kind": st.sampled_from([*(k.value for k in Kind), "lookup_index", "x"]) | _value},
    optional={"label": _ident, "labels": st.lists(_ident, max_size=3), "type": _ident,
              "types": st.lists(_ident, max_size=3),
              "properties": st.lists(_ident, max_size=3) | _value,
              "options": st.dictionaries(
                  st.sampled_from(["dimensions", "similarity_function", "analyzer",
                                   "eventually_consistent", "cartesian_min", "property_type",
                                   "zz"]),
                  _value | st.sampled_from(["cosine", "english", "INTEGER"]) |
                  st.lists(st.floats(-10, 10), min_size=2, max_size=2), max_size=3),
              "extra": _value})
_document = st.fixed_dictionaries({"name": _ident, "objects": st.lists(_object, max_size=4)},
                                  optional={"other": _value})


def _toml(value: object) -> str:
    if value is None:
        return '""'  # TOML has no null
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value).replace("inf", "inf").replace("nan", "nan")
    if isinstance(value, str):
        escaped = "".join(c if c.isprintable() and c not in '"\\' else f"\\u{ord(c):04x}"
                          for c in value)
        return f'"{escaped}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f'"{k}" = {_toml(v)}' for k, v in value.items()) + " }"
    raise AssertionError(value)


def document_text(document: dict[str, object]) -> str:
    lines = [f'"{key}" = {_toml(value)}' for key, value in document.items() if key != "objects"]
    for obj in document["objects"]:  # type: ignore[attr-defined]
        lines.append("[[objects]]")
        lines += [f'"{key}" = {_toml(value)}' for key, value in obj.items()]
    return "\n".join(lines) + "\n"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_document)
def test_generated_tables_never_crash_the_validator(document: dict[str, object]) -> None:
    """Any generated table is valid (its statements print for every line) or one usage error."""
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as handle:
        handle.write(document_text(document))
    try:
        table = read_table(handle.name)
    except UsageError as exc:
        assert "\n" not in exc.message
        return
    out = io.StringIO()
    commands.check_table(out, table)
    assert out.getvalue().startswith(f"// table {table.name}: valid")


def test_check_table_exits_0_or_2_as_a_process(tmp_path: Path) -> None:
    """check-table: 0 and the statements for a good file, 2 and one stderr line for a bad one."""
    good = subprocess.run([sys.executable, "-m", "neo4j_schema_rollback", "check-table",
                           write(tmp_path, GOOD)], capture_output=True, text=True, check=False)
    assert (good.returncode, good.stderr) == (0, "")
    assert "// Neo4j 4.4: apply (oldest first)\nCREATE CONSTRAINT world_node_ref_key" in (
        good.stdout)
    bad = subprocess.run([sys.executable, "-m", "neo4j_schema_rollback", "check-table",
                          write(tmp_path, GOOD.replace("[\"world_id\", ", "[\"world_id\"; "))],
                         capture_output=True, text=True, check=False)
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert bad.stderr.startswith("neo4j-schema-rollback: error: ")
    assert "not valid TOML" in bad.stderr and "(at line 8, column" in bad.stderr
    assert bad.stderr.count("\n") == 1


def test_the_published_schema_accepts_the_fixtures_and_refuses_what_the_reader_refuses() -> None:
    """docs/table.schema.json agrees with the reader on the every-kind fixture and the docs'
    example, and refuses an unknown kind and a missing vector option."""
    import json
    import tomllib

    import jsonschema

    root = Path(__file__).resolve().parents[2]
    validator = jsonschema.Draft202012Validator(
        json.loads((root / "docs" / "table.schema.json").read_text()))
    example = (root / "docs" / "table-files.md").read_text().split("```toml\n")[1].split(
        "```")[0]
    for text in ((TABLES / "every-kind.toml").read_text(), example):
        validator.validate(tomllib.loads(text))
    read_table(str(TABLES / "every-kind.toml"))
    bad = tomllib.loads(VECTOR)
    assert not validator.is_valid(bad)
    bad["objects"][0]["kind"] = "lookup_index"
    assert not validator.is_valid(bad)


def test_the_lines_check_table_renders_are_the_tested_lines() -> None:
    """dialect.LINES names the test bed's lines."""
    from neo4j_schema_rollback.dialect import LINES, ServerVersion
    from testbed.lines import LINES as TESTED

    assert [v.short for v in LINES] == [
        ServerVersion.parse(line.server_version).short for line in TESTED.values()]
