"""Table + live catalog + dialect -> the steps of a run. Pure: no I/O, no driver."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING

from .catalog import Catalog, LiveObject
from .dialect import Dialect, render_create, render_drop
from .table import SchemaObject

if TYPE_CHECKING:  # the preflight is imported by the commands that connect, on first use
    from .preflight import Finding


class State(StrEnum):
    """Where one table object stands in the live database."""

    PRESENT = "present"
    ABSENT = "absent"
    MISMATCH = "mismatch"
    EQUIVALENT = "equivalent"


class Decision(StrEnum):
    """What to do with a table statement."""

    SEND = "send"
    SKIP = "skip"
    REFUSE = "refuse"


@dataclass(frozen=True)
class Assessment:
    """One table object compared with the live catalog."""

    obj: SchemaObject
    state: State
    live: LiveObject | None
    equivalents: tuple[LiveObject, ...]

    def detail(self) -> str:
        """A one-line explanation of the state, naming the live objects involved."""
        if self.state is State.PRESENT:
            return "present with the expected definition"
        if self.state is State.MISMATCH:
            assert self.live is not None
            return f"same name, other definition: live is {self.live.describe()}"
        if self.state is State.EQUIVALENT:
            names = ", ".join(obj.name for obj in self.equivalents)
            return f"absent by name; the same definition exists as {names}"
        return "absent"


def assess(obj: SchemaObject, catalog: Catalog) -> Assessment:
    """Compare one table object with the catalog by name, then by definition."""
    live = catalog.by_name(obj.name)
    if live is not None:
        state = State.PRESENT if live.definition == obj.definition else State.MISMATCH
        return Assessment(obj, state, live, ())
    equivalents = catalog.equivalents(obj.definition, besides=obj.name)
    state = State.EQUIVALENT if equivalents else State.ABSENT
    return Assessment(obj, state, None, equivalents)


@dataclass(frozen=True)
class Step:
    """One table statement and the decision about it."""

    action: str  # "create" or "drop"
    obj: SchemaObject
    cypher: str
    decision: Decision
    reason: str | None
    duplicates: Finding | None = None


def plan_apply(
    wanted: Sequence[SchemaObject], catalog: Catalog, dialect: Dialect
) -> list[Step]:
    """Create each wanted object that is absent; refuse where a name or shape is taken."""
    steps = []
    for obj in wanted:
        found = assess(obj, catalog)
        cypher = render_create(obj, dialect)
        if found.state is State.ABSENT:
            steps.append(Step("create", obj, cypher, Decision.SEND, None))
        elif found.state is State.PRESENT:
            steps.append(Step("create", obj, cypher, Decision.SKIP, "present"))
        else:
            # IF NOT EXISTS would silently do nothing here: say so instead of claiming success.
            steps.append(Step("create", obj, cypher, Decision.REFUSE, found.detail()))
    return steps


def to_preflight(steps: Sequence[Step]) -> list[SchemaObject]:
    """The uniqueness (and key) constraints a run would create: the ones whose data are
    checked first."""
    return [step.obj for step in steps
            if step.decision is Decision.SEND and step.action == "create"
            and step.obj.kind.requires_unique]


def refuse_duplicates(steps: Sequence[Step], findings: Mapping[str, Finding]) -> list[Step]:
    """Refuse each create whose object's data hold duplicates; the other steps are unchanged."""
    return [replace(step, decision=Decision.REFUSE, duplicates=found,
                    reason=f"the data hold duplicates: {found.describe()}")
            if (found := findings.get(step.obj.name)) is not None
            and step.decision is Decision.SEND else step
            for step in steps]


def plan_rollback(
    unwanted: Sequence[SchemaObject], catalog: Catalog, dialect: Dialect
) -> list[Step]:
    """Drop each unwanted object only where the live catalog holds the same definition."""
    steps = []
    for obj in unwanted:
        found = assess(obj, catalog)
        cypher = render_drop(obj, dialect)
        if found.state is State.PRESENT:
            steps.append(Step("drop", obj, cypher, Decision.SEND, None))
        elif found.state is State.MISMATCH:
            steps.append(Step("drop", obj, cypher, Decision.REFUSE, found.detail()))
        else:
            # An equivalent under another name is someone else's object: never dropped.
            steps.append(Step("drop", obj, cypher, Decision.SKIP, found.detail()))
    return steps


def plan_all(action: str, objects: Sequence[SchemaObject], dialect: Dialect) -> list[Step]:
    """Send every object's create or drop, whatever the database holds (offline output)."""
    render = render_create if action == "create" else render_drop
    return [Step(action, obj, render(obj, dialect), Decision.SEND, None) for obj in objects]
