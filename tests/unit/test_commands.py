"""The command functions, called directly with a real run session over catalogs captured from
the real servers (tests/unit/fixtures): the dry-run and print sinks, and no driver at all."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from neo4j_schema_rollback import commands
from neo4j_schema_rollback.catalog import Catalog
from neo4j_schema_rollback.dialect import Server, ServerVersion, dialect_for
from neo4j_schema_rollback.errors import ExitCode
from neo4j_schema_rollback.plan import Step
from neo4j_schema_rollback.preflight import Finding, Uniqueness
from neo4j_schema_rollback.runner import DryRunSink
from neo4j_schema_rollback.session import Common, Console, Run
from neo4j_schema_rollback.settings import ConnectionOptions, ConnectionSettings
from neo4j_schema_rollback.table import QMTL_DAGMANAGER, SchemaObject

if TYPE_CHECKING:
    from neo4j_schema_rollback.runner import Sink

FIXTURES = Path(__file__).parent / "fixtures"
# Each capture holds version 1 of the table: compute_pk and kafka_topic.
CAPTURES = ["catalog-4.4.json", "catalog-5.json", "catalog-calver.json",
            "catalog-calver-cypher25.json"]
V2 = ["compute_tags", "queue_interval", "compute_buffering_since"]
ENV = {"NEO4J_URI": "bolt://captured:7687", "NEO4J_PASSWORD": "pw"}


class Captured:
    """A database that is a captured catalog: nothing is ever sent to it. `findings`: what its
    duplicate counts answer, by object name; `checked` records what was counted."""

    def __init__(self, capture: str, sink: Callable[[Run], Sink] | None = None, *,
                 empty: bool = False, findings: dict[str, Finding] | None = None) -> None:
        self._data = json.loads((FIXTURES / capture).read_text())
        if empty:
            self._data = {**self._data, "constraints": [], "indexes": []}
        self._sink = sink
        self._findings = findings or {}
        self.checked: list[str] = []
        self.stopped: list[str] = []
        self.run: Run | None = None
        self.closed = False
        self.waited: dict[str, Any] = {}

    def open(self) -> Server:
        version = ServerVersion.parse(self._data["server_version"])
        return Server(agent=f"Neo4j/{version}", version=version, edition="community",
                      dialect=dialect_for(version))

    def read_catalog(self) -> Catalog:
        return Catalog.from_rows(self._data["constraints"], self._data["indexes"])

    def sink(self) -> Sink:
        assert self._sink is not None and self.run is not None, "a dry run sends nothing"
        return self._sink(self.run)

    def await_online(self, names: Sequence[str], timeout: float) -> list[dict[str, Any]]:
        return []

    def duplicates(self, obj: SchemaObject, *, indexed: bool, stopped: str) -> Finding | None:
        assert not indexed, "no capture has an index on node_id"
        self.checked.append(obj.name)
        self.stopped.append(stopped)
        return self._findings.get(obj.name)

    def close(self) -> None:
        self.closed = True


@pytest.fixture(params=CAPTURES)
def captured(request: pytest.FixtureRequest) -> Captured:
    return Captured(request.param)


class Outcome:
    """What a run said: exit code, events (parsed) and stderr."""

    def __init__(self, code: int, out: str, err: str) -> None:
        self.code = code
        self.events = [json.loads(line) for line in out.splitlines()]
        self.stderr = err

    def of(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == name]

    def outcomes(self) -> dict[str, str]:
        return {e["object"]: e["outcome"] for e in self.of("statement")}

    @property
    def end(self) -> dict[str, Any]:
        [end] = self.of("run.end")
        return end


def execute(body: Callable[..., ExitCode], db: Captured, *, debug: bool = False,
            options: ConnectionOptions | None = None, env: dict[str, str] | None = None,
            interactive: bool = False, **arguments: Any) -> Outcome:
    """Run one command function in a real run session against `db`."""
    out, err = io.StringIO(), io.StringIO()
    console = Console(stdout=out, stderr=err, env={**ENV, **(env or {})}, interactive=interactive,
                      prompt_secret=lambda _: "pw", confirm=lambda _: False)
    common = Common(options or ConnectionOptions(), log_format="json", debug=debug)

    def connect(run: Run, settings: ConnectionSettings) -> Captured:
        db.run = run
        return db

    with Run(body.__name__, console, common=common, connect=connect) as run:
        run.conclude(body(run, **arguments))
    return Outcome(run.exit_code, out.getvalue(), err.getvalue())


def test_apply_dry_run_plans_what_is_missing(captured: Captured) -> None:
    """A dry apply skips version 1 as present, plans version 2, and ends with those counts."""
    r = execute(commands.apply, captured, dry_run=True)
    assert r.code == ExitCode.OK
    assert r.outcomes() == {"compute_pk": "skipped", "kafka_topic": "skipped",
                            **{name: "planned" for name in V2}}
    assert [e["event"] for e in r.events] == ["run.start", "server", *["statement"] * 5,
                                              "run.end"]
    assert r.of("run.start")[0]["dry_run"] is True
    assert r.end["counts"] == {"applied": 0, "skipped": 2, "planned": 3, "refused": 0,
                               "failed": 0}
    assert (r.end["outcome"], r.end["done"], r.end["not_done"]) == ("success", [], [])
    assert captured.closed


def test_rollback_dry_run_plans_the_drops_newest_first(captured: Captured) -> None:
    """A dry rollback skips version 2 as absent and plans version 1's drops."""
    r = execute(commands.rollback, captured, dry_run=True)
    assert r.code == ExitCode.OK
    assert list(r.outcomes().items()) == [
        ("compute_buffering_since", "skipped"), ("queue_interval", "skipped"),
        ("compute_tags", "skipped"), ("kafka_topic", "planned"), ("compute_pk", "planned")]
    assert r.of("statement")[-1]["cypher"] == "DROP CONSTRAINT compute_pk IF EXISTS"


@pytest.mark.parametrize(("arguments", "code"), [
    ({"to": 1, "expect": "applied"}, ExitCode.OK),
    ({"expect": "applied"}, ExitCode.REFUSED),
    ({"expect": "absent"}, ExitCode.REFUSED),
    ({}, ExitCode.OK),
])
def test_status_judges_the_captured_state(captured: Captured, arguments: dict[str, Any],
                                          code: ExitCode) -> None:
    """status reports version 1 present and version 2 absent, judged against --expect."""
    r = execute(commands.status, captured, **arguments)
    assert r.code == code
    assert {e["object"]: e["state"] for e in r.of("object")} == {
        "compute_pk": "present", "kafka_topic": "present", **{name: "absent" for name in V2}}
    assert r.end["outcome"] == ("success" if code == ExitCode.OK else "refused")


def test_rollback_without_yes_off_a_terminal_is_a_usage_error(captured: Captured) -> None:
    """Not on a terminal and without --yes, rollback stops after run.start: exit 2."""
    r = execute(commands.rollback, captured)
    assert r.code == ExitCode.USAGE
    assert [e["event"] for e in r.events] == ["run.start", "error", "run.end"]
    assert r.stderr.startswith("neo4j-schema-rollback: error: rollback drops schema objects")


class Failing(DryRunSink):
    """A sink with a bug in it."""

    def send(self, step: Step) -> str:
        raise RuntimeError(f"bug while sending {step.obj.name}\nsecond line")


def test_an_internal_bug_exits_70_in_one_line() -> None:
    """A failure that is no domain error exits 70: one stderr line, no traceback, and the log
    still ends with run.end."""
    r = execute(commands.apply, Captured("catalog-5.json", Failing))
    assert r.code == ExitCode.INTERNAL == 70
    assert r.stderr == ("neo4j-schema-rollback: error: internal error: RuntimeError: bug while "
                        "sending compute_tags second line — rerun with --debug and report it\n")
    [error] = r.of("error")
    assert error["exit_code"] == 70
    assert (r.end["outcome"], r.end["exit_code"], r.end["not_done"]) == (
        "internal_error", 70, V2)


def test_debug_adds_the_traceback() -> None:
    """With --debug the internal error's traceback goes to stderr too."""
    r = execute(commands.apply, Captured("catalog-5.json", Failing), debug=True)
    assert r.code == 70
    assert r.stderr.startswith("Traceback (most recent call last):")
    assert r.stderr.endswith("report it\n")


@pytest.mark.parametrize(("action", "version", "to", "first"), [
    ("apply", "4.4", None, "CREATE CONSTRAINT compute_pk IF NOT EXISTS FOR (c:ComputeNode) "
     "REQUIRE c.node_id IS UNIQUE;"),
    ("rollback", "2026.08", None, "DROP INDEX compute_buffering_since IF EXISTS;"),
    ("rollback", "5.26", 1, "DROP INDEX compute_buffering_since IF EXISTS;"),
])
def test_statements_goes_through_the_print_sink(action: commands.Action, version: str,
                                                to: int | None, first: str) -> None:
    """statements prints every step of its plan, one line each, in the runner's order."""
    out = io.StringIO()
    commands.statements(out, QMTL_DAGMANAGER, action, version, to)
    lines = out.getvalue().splitlines()
    assert lines[0] == first
    assert len(lines) == (3 if to == 1 else 5)


TABLES = Path(__file__).resolve().parents[1] / "tables"


def test_statements_refuses_a_kind_the_version_lacks() -> None:
    """statements --server-version 4.4 on a table with relationship uniqueness: exit 2, the
    object, its kind and the first release named, nothing printed."""
    from neo4j_schema_rollback.errors import UsageError
    from neo4j_schema_rollback.tablefile import read_table

    table = read_table(str(TABLES / "every-kind.toml"))
    out = io.StringIO()
    with pytest.raises(UsageError, match=r"table every-kind: object 'unique_rel': "
                       r"uniqueness_constraint on relationships needs Neo4j 5\.7 or later, "
                       r"not 4\.4\.0"):
        commands.statements(out, table, "apply", "4.4")
    assert out.getvalue() == ""
    commands.statements(out, table, "apply", "4.4", 2)  # --to 2 needs only what 4.4 has
    assert len(out.getvalue().splitlines()) == 13


def test_the_table_comes_from_the_flag_then_the_environment(captured: Captured) -> None:
    """NEO4J_SCHEMA_TABLE names the table when --table does not; --table wins."""
    r = execute(commands.status, captured, env={"NEO4J_SCHEMA_TABLE": "qmtl-worldservice"})
    assert r.of("run.start")[0]["table"] == "qmtl-worldservice"
    assert [e["object"] for e in r.of("object")] == ["world_node_ref_key"]
    r = execute(commands.status, captured, env={"NEO4J_SCHEMA_TABLE": "/no/such.toml"})
    assert r.code == ExitCode.USAGE
    assert r.stderr == ("neo4j-schema-rollback: error: NEO4J_SCHEMA_TABLE: '/no/such.toml' is "
                        "neither an embedded table (qmtl-dagmanager, qmtl-worldservice) nor an "
                        "existing file\n")
    assert [e["event"] for e in r.events] == ["error", "run.end"]


DUPLICATES = Finding(Uniqueness("NODE", "ComputeNode", ("node_id",)), 2, 5,
                     ({"node_id": "a"}, {"node_id": "b"}))
MESSAGE = ('2 duplicate values of (:ComputeNode {node_id}) held by 5 nodes, e.g. '
           '{node_id: "a"}, {node_id: "b"}')


@pytest.mark.parametrize("capture", CAPTURES)
def test_a_dry_apply_reports_duplicates_and_exits_5(capture: str) -> None:
    """On an empty catalog a dry apply counts compute_pk's duplicates first, refuses it with the
    finding, plans the rest, and ends in data_conflict (exit 5) with one stderr line."""
    db = Captured(capture, empty=True, findings={"compute_pk": DUPLICATES})
    r = execute(commands.apply, db, dry_run=True)
    assert r.code == ExitCode.DATA_CONFLICT == 5
    assert db.checked == ["compute_pk"]
    assert r.outcomes() == {"compute_pk": "refused", "kafka_topic": "planned",
                            **{name: "planned" for name in V2}}
    refused = r.of("statement")[0]
    assert refused["reason"] == f"the data hold duplicates: {MESSAGE}"
    assert refused["duplicates"] == {"values": 2, "nodes": 5,
                                     "examples": [{"node_id": "a"}, {"node_id": "b"}]}
    [error] = r.of("error")
    assert error["error_class"] == "data_conflict"
    assert error["exit_code"] == 5
    assert r.stderr == (f"neo4j-schema-rollback: error: duplicate data: compute_pk would be "
                        f"refused: {MESSAGE} — make those values unique, then apply again\n")
    assert (r.end["outcome"], r.end["exit_code"]) == ("data_conflict", 5)
    assert r.end["counts"]["refused"] == 1


def test_a_dry_apply_without_duplicates_plans_everything() -> None:
    """No duplicates: compute_pk is checked, then planned like the rest; exit 0."""
    db = Captured("catalog-5.json", empty=True)
    r = execute(commands.apply, db, dry_run=True)
    assert r.code == ExitCode.OK
    assert db.checked == ["compute_pk"]
    assert set(r.outcomes().values()) == {"planned"}


@pytest.mark.parametrize(("body", "arguments", "stopped"), [
    (commands.apply, {}, "nothing was created"),
    (commands.apply, {"dry_run": True}, "nothing was planned"),
    (commands.status, {}, "no object was reported")])
def test_a_count_beyond_the_timeout_says_what_its_command_left_undone(
        body: Callable[..., ExitCode], arguments: dict[str, Any], stopped: str) -> None:
    """A duplicate count that outlives --timeout ends its message with what that command did
    not do: apply created nothing, a dry run planned nothing, status reported nothing."""
    db = Captured("catalog-5.json", empty=True, sink=lambda run: DryRunSink(run))
    execute(body, db, **arguments)
    assert db.stopped == [stopped]


def test_a_present_constraint_is_not_counted(captured: Captured) -> None:
    """compute_pk present in the captured catalog: apply and status count nothing."""
    assert execute(commands.apply, captured, dry_run=True).code == ExitCode.OK
    assert execute(commands.status, captured).code == ExitCode.OK
    assert captured.checked == []


def test_status_reports_the_finding_and_keeps_its_exit_code() -> None:
    """status puts the duplicates on compute_pk's object event (a warning) and exits 0; with
    --to 0 apply would create nothing, so nothing is counted."""
    db = Captured("catalog-calver.json", empty=True, findings={"compute_pk": DUPLICATES})
    r = execute(commands.status, db)
    assert r.code == ExitCode.OK
    [pk] = [e for e in r.of("object") if e["object"] == "compute_pk"]
    assert (pk["level"], pk["state"]) == ("warning", "absent")
    assert pk["duplicates"]["values"] == 2
    assert all("duplicates" not in e for e in r.of("object") if e["object"] != "compute_pk")
    db = Captured("catalog-calver.json", empty=True, findings={"compute_pk": DUPLICATES})
    assert execute(commands.status, db, to=0).code == ExitCode.OK
    assert db.checked == []
