"""The package keeps its shape: no import cycle, exit codes decided in one module, and every
duration flag and variable reading the same inputs the same way."""

from __future__ import annotations

import ast
import importlib
import io
import json
from pathlib import Path

import pytest

from neo4j_schema_rollback import commands
from neo4j_schema_rollback.session import Common, Console, Run
from neo4j_schema_rollback.settings import ConnectionOptions, ConnectionSettings

PACKAGE = Path(__file__).resolve().parents[2] / "app" / "neo4j_schema_rollback"
MODULES = {path.stem: ast.parse(path.read_text()) for path in sorted(PACKAGE.glob("*.py"))}


def _runtime_imports(tree: ast.Module) -> set[str]:
    """The package's modules that `tree` imports when it runs (TYPE_CHECKING blocks aside)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and (
                node.test.id == "TYPE_CHECKING"):
            return
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names if alias.name in MODULES)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found - {"__init__"}


@pytest.mark.parametrize("name", sorted(set(MODULES) - {"__main__"}))
def test_every_module_imports(name: str) -> None:
    """Each module imports on its own: no name it needs at run time hides in a TYPE_CHECKING
    block (some are there to keep the start fast)."""
    importlib.import_module(f"neo4j_schema_rollback.{name}".removesuffix(".__init__"))


def test_no_import_cycle() -> None:
    """The package's modules import each other without a cycle, lazy imports included."""
    graph = {name: _runtime_imports(tree) & set(MODULES) for name, tree in MODULES.items()}
    done: set[str] = set()

    def walk(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, " -> ".join((*path, name))
        if name in done:
            return
        for imported in graph[name]:
            walk(imported, (*path, name))
        done.add(name)

    for name in graph:
        walk(name, ())


def test_exit_codes_are_mapped_in_one_module() -> None:
    """Only errors.py turns failures into exit codes; commands return OK or REFUSED only."""
    for name, tree in MODULES.items():
        if name == "errors":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and (
                    node.value.id == "ExitCode"):
                assert node.attr in ("OK", "REFUSED"), f"{name}.py names ExitCode.{node.attr}"
            if isinstance(node, ast.ClassDef):
                names = {t.id for s in node.body if isinstance(s, ast.Assign)
                         for t in s.targets if isinstance(t, ast.Name)}
                assert "exit_code" not in names, f"{name}.py: {node.name} sets an exit code"
            if isinstance(node, ast.FunctionDef):
                assert node.name != "exit_code_of", f"{name}.py maps failures to exit codes"


DURATIONS = [("30", 30.0), ("2.5", 2.5), ("30s", 30.0), ("2m", 120.0), ("1m30s", 90.0)]
NOT_DURATIONS = ["-1", "-2m", "inf", "nan", "1e309", "soon", "30x", "1m-30s", " "]
SOURCES = ["--wait", "--timeout", "--index-timeout", "NEO4J_WAIT", "NEO4J_TIMEOUT",
           "NEO4J_INDEX_TIMEOUT"]


def _apply(source: str, text: str) -> tuple[int, list[dict[str, object]], str, list[float]]:
    """A dry apply with `text` given by `source`; returns what the settings resolved to."""
    flags = {"--wait": "wait", "--timeout": "timeout"}
    options = ConnectionOptions(**({flags[source]: text} if source in flags else {}))
    env = {"NEO4J_URI": "bolt://h:1", "NEO4J_PASSWORD": "pw"}
    if source.startswith("NEO4J_"):
        env[source] = text
    out, err = io.StringIO(), io.StringIO()
    console = Console(stdout=out, stderr=err, env=env, interactive=False,
                      prompt_secret=lambda _: "", confirm=lambda _: False)
    seen: list[float] = []

    def connect(run: Run, settings: ConnectionSettings) -> object:
        seen.extend([settings.wait, settings.timeout])
        raise KeyboardInterrupt  # enough: the settings are resolved

    with Run("apply", console, common=Common(options, log_format="json"),
             connect=connect) as run:  # type: ignore[arg-type]
        index_timeout = text if source == "--index-timeout" else None
        run.conclude(commands.apply(run, dry_run=True, index_timeout=index_timeout))
    return run.exit_code, [json.loads(line) for line in out.getvalue().splitlines()], \
        err.getvalue(), seen


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize(("text", "seconds"), DURATIONS)
def test_every_duration_source_accepts_the_same_forms(source: str, text: str,
                                                      seconds: float) -> None:
    """30, 2.5, 30s, 2m and 1m30s are accepted by every duration flag and variable."""
    code, _, err, seen = _apply(source, text)
    assert code == 130, err  # it got as far as connecting
    if source in ("--wait", "NEO4J_WAIT"):
        assert seen[0] == seconds
    elif source in ("--timeout", "NEO4J_TIMEOUT"):
        assert seen[1] == seconds


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("text", NOT_DURATIONS)
def test_every_duration_source_refuses_the_same_inputs(source: str, text: str) -> None:
    """Negative, infinite, NaN and garbage durations are one usage error wherever given: the
    stderr line, and an error and a run.end event, exit 2."""
    code, events, err, _ = _apply(source, text)
    assert code == 2
    assert [e["event"] for e in events] == ["error", "run.end"]
    assert events[1]["exit_code"] == 2
    assert err.startswith(f"neo4j-schema-rollback: error: {source}: {text!r} ")
    assert err.count("\n") == 1


def test_the_test_bed_reads_its_environment_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """The JVM heap comes from NEO4J_TESTBED_HEAP at launch time, not at import."""
    from testbed import launch

    monkeypatch.setenv("NEO4J_TESTBED_HEAP", "321m")
    assert "-Xmx321m" in launch.jvm_args([], Path("/launcher"))
    monkeypatch.delenv("NEO4J_TESTBED_HEAP")
    assert f"-Xmx{launch.DEFAULT_HEAP}" in launch.jvm_args([], Path("/launcher"))


def test_every_test_file_has_a_basename_of_its_own() -> None:
    """Two test files of one name (unit and integration) stop the whole suite at collection:
    the test directories are no packages, so pytest imports each file by its basename."""
    tests = Path(__file__).resolve().parents[1]
    names = [path.name for path in tests.rglob("test_*.py")]
    assert sorted({name for name in names if names.count(name) > 1}) == []
