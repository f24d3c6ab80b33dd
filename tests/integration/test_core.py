"""apply / rollback / status against real servers: every line, exact outcomes and exit codes."""

from __future__ import annotations

from typing import Any

import pytest
from db import cypher, env_for, names, snapshot
from tool import Result, Tool

ALL = {"compute_pk", "kafka_topic", "compute_tags", "queue_interval", "compute_buffering_since"}
V1 = {"compute_pk", "kafka_topic"}
NEWEST_FIRST = ["compute_buffering_since", "queue_interval", "compute_tags", "kafka_topic",
                "compute_pk"]


@pytest.fixture
def run(tool: Tool, clean_neo4j: Any):  # type: ignore[no-untyped-def]
    """Run the tool against the clean server, checking the password never leaks."""

    def go(*args: str, env: dict[str, str] | None = None) -> Result:
        return tool.run(*args, env={**env_for(clean_neo4j), **(env or {})},
                        secrets=(clean_neo4j.password,))

    return go


def test_apply_from_empty(run: Any, clean_neo4j: Any) -> None:
    """Apply creates all five objects, awaits them, verifies them, and exits 0."""
    r = run("apply")
    assert r.code == 0, r.stdout + r.stderr
    assert r.outcomes() == {name: "applied" for name in ALL}
    creates = r.table_statements("applied")
    assert [e["object"] for e in creates] == ["compute_pk", "kafka_topic", "compute_tags",
                                              "queue_interval", "compute_buffering_since"]
    assert creates[0]["counters"] == {"constraints_added": 1}
    assert all(e["counters"] == {"indexes_added": 1} for e in creates[1:])
    assert creates[0]["cypher"] == ("CREATE CONSTRAINT compute_pk IF NOT EXISTS FOR "
                                    "(c:ComputeNode) REQUIRE c.node_id IS UNIQUE")
    assert r.states() == {name: "present" for name in ALL}
    assert [e["action"] for e in r.statements if e["action"] in ("inspect", "await")][:3] == [
        "inspect", "inspect", "inspect"]
    assert any(e["action"] == "await" for e in r.statements)
    assert r.end["outcome"] == "success"
    assert r.end["exit_code"] == 0
    assert r.end["counts"]["applied"] >= 5
    assert r.end["done"] == ["compute_pk", "kafka_topic", "compute_tags", "queue_interval",
                             "compute_buffering_since"]
    assert r.end["not_done"] == []
    assert names(clean_neo4j) == ALL
    assert not any("ASSERT" in e["cypher"] for e in r.statements)


def test_apply_twice_sends_nothing_the_second_time(run: Any) -> None:
    """A second apply skips every object as present and exits 0."""
    assert run("apply").code == 0
    r = run("apply")
    assert r.code == 0
    assert r.outcomes() == {name: "skipped" for name in ALL}
    assert {e["reason"] for e in r.table_statements()} == {"present"}
    assert r.end["done"] == []


def test_rollback_from_full_drops_newest_first(run: Any, clean_neo4j: Any) -> None:
    """Rollback drops every object, version 2 first, and leaves only LOOKUP indexes."""
    assert run("apply").code == 0
    r = run("rollback", "--yes")
    assert r.code == 0, r.stdout + r.stderr
    drops = r.table_statements("applied")
    assert [e["object"] for e in drops] == NEWEST_FIRST
    assert drops[-1]["cypher"] == "DROP CONSTRAINT compute_pk IF EXISTS"
    assert drops[-1]["counters"] == {"constraints_removed": 1}
    assert r.states() == {name: "absent" for name in ALL}
    assert names(clean_neo4j) == set()
    assert r.end["done"] == NEWEST_FIRST
    # After sending drops, the final states come from a second catalog read.
    assert [e["cypher"] for e in r.statements if e["action"] == "inspect"] == [
        "CALL dbms.components() YIELD name, versions, edition",
        "SHOW CONSTRAINTS YIELD *", "SHOW INDEXES YIELD *",
        "SHOW CONSTRAINTS YIELD *", "SHOW INDEXES YIELD *"]


def test_rollback_is_the_default_command(run: Any, clean_neo4j: Any) -> None:
    """Without a command the tool rolls back."""
    assert run("apply").code == 0
    r = run("--yes")
    assert r.code == 0
    assert r.of("run.start")[0]["command"] == "rollback"
    assert names(clean_neo4j) == set()


def test_rollback_twice(run: Any) -> None:
    """A second rollback skips every object as absent and exits 0."""
    assert run("apply").code == 0
    assert run("rollback", "--yes").code == 0
    r = run("rollback", "--yes")
    assert r.code == 0
    assert r.outcomes() == {name: "skipped" for name in ALL}
    assert {e["reason"] for e in r.table_statements()} == {"absent"}
    # Nothing to send: the catalog read once is the proof; no second read.
    assert [e["cypher"] for e in r.statements if e["action"] == "inspect"] == [
        "CALL dbms.components() YIELD name, versions, edition",
        "SHOW CONSTRAINTS YIELD *", "SHOW INDEXES YIELD *"]
    assert r.states() == {name: "absent" for name in ALL}
    assert r.end["outcome"] == "success"


def test_rollback_from_partial(run: Any, clean_neo4j: Any) -> None:
    """With only version 1 applied, rollback skips version 2 and drops version 1."""
    assert run("apply", "--to", "1").code == 0
    assert names(clean_neo4j) == V1
    r = run("rollback", "--yes")
    assert r.code == 0
    assert r.outcomes() == {"compute_buffering_since": "skipped", "queue_interval": "skipped",
                            "compute_tags": "skipped", "kafka_topic": "applied",
                            "compute_pk": "applied"}
    assert names(clean_neo4j) == set()


def test_to_1_both_ways(run: Any, clean_neo4j: Any) -> None:
    """apply --to 1 creates version 1 only; rollback --to 1 keeps it."""
    r = run("apply", "--to", "1")
    assert r.code == 0
    assert set(r.outcomes()) == V1
    assert names(clean_neo4j) == V1
    assert run("apply").code == 0
    r = run("rollback", "--to", "1", "--yes")
    assert r.code == 0
    assert list(r.outcomes()) == NEWEST_FIRST[:3]
    assert names(clean_neo4j) == V1
    assert run("status", "--to", "1", "--expect", "applied").code == 0


def test_users_objects_survive(run: Any, clean_neo4j: Any) -> None:
    """Indexes and constraints not in the table are never touched."""
    cypher(clean_neo4j, "CREATE INDEX user_idx FOR (u:User) ON (u.email)")
    cypher(clean_neo4j, "CREATE CONSTRAINT user_pk FOR (u:User) REQUIRE u.id IS UNIQUE")
    before = snapshot(clean_neo4j)
    assert run("apply").code == 0
    assert run("rollback", "--yes").code == 0
    assert snapshot(clean_neo4j) == before


def test_same_name_other_definition_is_refused_and_stays(run: Any, clean_neo4j: Any) -> None:
    """A same-named index on another property is refused by both apply and rollback."""
    cypher(clean_neo4j, "CREATE INDEX kafka_topic FOR (q:Queue) ON (q.name)")
    r = run("apply")
    assert r.code == 4
    assert r.outcomes()["kafka_topic"] == "refused"
    refused = r.table_statements("refused")[0]
    assert "same name, other definition" in refused["reason"]
    assert "(:Queue {name})" in refused["reason"]
    assert r.states()["kafka_topic"] == "mismatch"
    assert r.end["outcome"] == "refused"
    r = run("rollback", "--yes")
    assert r.code == 4
    assert r.outcomes()["kafka_topic"] == "refused"
    assert names(clean_neo4j) == {"kafka_topic"}
    [row] = cypher(clean_neo4j, "SHOW INDEXES YIELD name, properties WHERE name = 'kafka_topic'")
    assert row["properties"] == ["name"]


def test_equivalent_under_another_name_is_reported_and_never_dropped(run: Any,
                                                                     clean_neo4j: Any) -> None:
    """An equivalent index under another name makes apply exit 4, status say equivalent,
    and rollback leave it alone."""
    cypher(clean_neo4j, "CREATE INDEX my_topic FOR (q:Queue) ON (q.topic)")
    r = run("apply")
    assert r.code == 4
    assert r.outcomes()["kafka_topic"] == "refused"
    assert "my_topic" in r.table_statements("refused")[0]["reason"]
    assert names(clean_neo4j) == (ALL - {"kafka_topic"}) | {"my_topic"}
    r = run("status")
    assert r.code == 0
    [obj] = [e for e in r.of("object") if e["object"] == "kafka_topic"]
    assert (obj["state"], obj["equivalents"]) == ("equivalent", ["my_topic"])
    r = run("status", "--expect", "applied")
    assert r.code == 4
    r = run("rollback", "--yes")
    assert r.code == 0
    assert names(clean_neo4j) == {"my_topic"}


@pytest.mark.parametrize("command", ["apply", "rollback"])
def test_dry_run_changes_nothing(run: Any, clean_neo4j: Any, command: str) -> None:
    """A dry run logs every table statement as planned and leaves the catalog identical."""
    if command == "rollback":
        assert run("apply").code == 0
    before = snapshot(clean_neo4j)
    r = run(command, "--dry-run")
    assert r.code == 0
    assert r.outcomes() == {name: "planned" for name in ALL}
    assert {e["reason"] for e in r.table_statements()} == {"dry run: not sent"}
    assert snapshot(clean_neo4j) == before
    assert r.of("run.start")[0]["dry_run"] is True


def test_rollback_without_yes_when_not_interactive_sends_nothing(run: Any,
                                                                 clean_neo4j: Any) -> None:
    """Non-interactive rollback without --yes exits 2 before any statement."""
    assert run("apply").code == 0
    before = snapshot(clean_neo4j)
    r = run("rollback")
    assert r.code == 2
    assert r.statements == []
    assert "--yes" in r.of("error")[0]["message"]
    assert r.end["exit_code"] == 2
    assert snapshot(clean_neo4j) == before


def test_status_and_expect(run: Any) -> None:
    """status reports each object; --expect applied/absent exits 4 when not so."""
    r = run("status")
    assert r.code == 0
    assert r.states() == {name: "absent" for name in ALL}
    assert run("status", "--expect", "absent").code == 0
    assert run("status", "--expect", "applied").code == 4
    assert run("apply").code == 0
    r = run("status", "--expect", "applied")
    assert r.code == 0
    assert r.states() == {name: "present" for name in ALL}
    assert run("status", "--expect", "absent").code == 4
    assert run("status", "--to", "1", "--expect", "applied").code == 4


def test_server_event_names_the_dialect(run: Any, neo4j_server: Any) -> None:
    """The server event reports the kernel version and the dialect chosen for it."""
    r = run("status")
    [server] = r.of("server")
    assert server["version"] == neo4j_server.version
    assert server["dialect"] == ("neo4j-4.4" if neo4j_server.version.startswith("4.4")
                                 else "neo4j-5")
    assert server["edition"] == "community"


def test_failed_index_is_reported_and_fails_the_run(run: Any, clean_neo4j: Any) -> None:
    """An index that cannot be populated ends FAILED: apply exits 1 naming it and why."""
    cypher(clean_neo4j, "CREATE (:Queue {topic: $t})", t="x" * 40000)
    r = run("apply")
    assert r.code == 1
    [error] = r.of("error")
    assert error["message"].startswith("index FAILED: kafka_topic: ")
    assert "too large" in error["message"]
    assert error["message"].count("\n") == 0
    assert error["error_class"] == "index_failed"
    assert r.end["outcome"] == "failed"
    assert r.outcomes()["kafka_topic"] == "applied"
    again = run("apply")
    assert again.code == 1
    assert again.outcomes()["kafka_topic"] == "skipped"
    assert run("rollback", "--yes").code == 0
    assert names(clean_neo4j) == set()


def test_index_timeout_reports_progress_then_fails(run: Any, clean_neo4j: Any) -> None:
    """Indexes still POPULATING when --index-timeout runs out: one index.progress event per
    waiting index, exit 1 naming them; a rerun with time to wait converges."""
    # 250,000 values to index: population takes far longer than the one poll that
    # --index-timeout 0 allows right after the last CREATE (measured at that poll with 100,000
    # values: 46% done on 4.4, 23% on 2026.08, 11% on 5.26, too thin a margin on 4.4; with
    # 250,000: 14% on 4.4).
    for first in range(1, 250_000, 50_000):
        cypher(clean_neo4j, "UNWIND range($first, $first + 49999) AS i "
               "CREATE (:ComputeNode {buffering_since: i})", first=first)
    r = run("apply", "--index-timeout", "0")
    assert r.code == 1, r.stdout + r.stderr
    [error] = r.of("error")
    prefix = "indexes not ONLINE after 0 s: "
    assert error["message"].startswith(prefix)
    waiting = error["message"][len(prefix):].split(" — ")[0].split(", ")
    assert "compute_buffering_since" in waiting
    progress = r.of("index.progress")
    assert sorted(e["object"] for e in progress) == sorted(waiting)
    assert all(e["state"] == "POPULATING" and 0 <= e["percent"] < 100 for e in progress)
    assert r.end["outcome"] == "failed"
    assert r.end["done"] == ["compute_pk", "kafka_topic", "compute_tags", "queue_interval",
                             "compute_buffering_since"]
    again = run("apply")
    assert again.code == 0, again.stdout + again.stderr
    assert again.states() == {name: "present" for name in ALL}
