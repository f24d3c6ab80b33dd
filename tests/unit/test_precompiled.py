"""The binary's build-time compiled dataclass and attrs methods (build/spec/precompiled.py).

The patched call sites must give exactly what the unpatched ones give: the same code (with the
same file name and flags) for every recorded text, and the old compile for any other text.
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
import types
from pathlib import Path
from typing import Any

import attr._make
import pytest

from patched import assert_changed_upstream_fails, spec_module

ROOT = Path(__file__).resolve().parents[2]


patches = spec_module("driver_patches")
precompiled = spec_module("precompiled")


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> types.ModuleType:
    """`_nsr_precompiled` as the build generates it, from this checkout's app/."""
    out = tmp_path_factory.mktemp("precompiled") / f"{precompiled.MODULE}.py"
    precompiled.generate(ROOT / "app", out)
    namespace: dict[str, Any] = {"__name__": precompiled.MODULE}
    exec(compile(out.read_text(encoding="utf-8"), str(out), "exec"), namespace)
    module = types.ModuleType(precompiled.MODULE)
    module.__dict__.update(namespace)
    return module


def _tables(module: types.ModuleType) -> dict[str, dict[str, types.CodeType]]:
    """group -> text -> code, as bundled (the templates aside)."""
    return {group: module.lookup.__globals__["marshal"].loads(blob)[0]
            for group, blob in module._BLOBS.items()}


def _same_code(a: types.CodeType, b: types.CodeType) -> None:
    assert a == b
    assert (a.co_filename, a.co_flags, a.co_firstlineno, a.co_qualname) == \
        (b.co_filename, b.co_flags, b.co_firstlineno, b.co_qualname)
    nested_a = [c for c in a.co_consts if isinstance(c, types.CodeType)]
    nested_b = [c for c in b.co_consts if isinstance(c, types.CodeType)]
    assert len(nested_a) == len(nested_b)
    for x, y in zip(nested_a, nested_b, strict=True):
        _same_code(x, y)


def test_the_start_up_classes_are_recorded(generated: types.ModuleType) -> None:
    tables = _tables(generated)
    groups = set(tables)
    # ours and the driver's dataclasses, cyclopts' attrs classes, structlog's dataclasses
    assert {"neo4j_schema_rollback.table", "neo4j_schema_rollback.settings",
            "neo4j._work.summary", "structlog.dev",
            "<attrs generated methods cyclopts.core.App>"} <= groups
    assert sum(len(texts) for texts in tables.values()) > 150


def test_recorded_code_is_what_the_unpatched_call_sites_compile(
        generated: types.ModuleType) -> None:
    for group, texts in _tables(generated).items():
        for text, code in texts.items():
            if group.startswith("<attrs generated"):
                # attr._make._compile_and_eval: compile(script, filename, "exec") in attr._make
                unpatched = _compile_in(attr._make, text, group)
            else:
                # dataclasses._create_fn: exec(txt, globals, ns) in dataclasses
                unpatched = _compile_in(dataclasses, text, "<string>")
            _same_code(code, unpatched)


def _compile_in(module: types.ModuleType, text: str, filename: str) -> types.CodeType:
    """What compile(text, filename, "exec") gives when called from `module`'s own code."""
    namespace = {"__name__": module.__name__, "__builtins__": __builtins__,
                 "text": text, "filename": filename}
    # compile() inherits the __future__ flags of the code that calls it: call it from code
    # compiled with the flags of the module's own source.
    flags = 0
    source = inspect.getsource(module)
    if "from __future__ import annotations" in source:
        import __future__
        flags = __future__.annotations.compiler_flag
    exec(compile("result = compile(text, filename, 'exec')", module.__file__ or "", "exec",
                 flags, dont_inherit=True), namespace)
    return namespace["result"]  # type: ignore[no-any-return]


def test_texts_that_differ_between_hash_seeds_are_left_out() -> None:
    code = compile("x = 1", "<f>", "exec")
    other = compile("x = 2", "<f>", "exec")
    first = {"g": {"x = 1": code, "y": code}, "h": {"z": code}}
    second = {"g": {"x = 1": code, "y": other}}
    assert precompiled.stable(first, second) == {"g": {"x = 1": code}, "h": {}}


def _patched_module(module: types.ModuleType, table: dict[str, dict[str, Any]],
                    generated_dir: Path) -> types.ModuleType:
    """`module` executed from its patched source, with a `_nsr_precompiled` built of `table`."""
    lookup_module = types.ModuleType(precompiled.MODULE)
    exec(precompiled.module_source(table), lookup_module.__dict__)
    sys.modules[precompiled.MODULE] = lookup_module
    assert module.__file__ is not None
    source = patches.patched_source(module.__name__, Path(module.__file__).read_text(
        encoding="utf-8"), precompiled.PATCHES)
    copy = types.ModuleType(module.__name__, None)
    copy.__dict__.update(__file__=module.__file__, __package__=module.__package__)
    sys.modules[f"{module.__name__}_patched"] = copy
    # dont_inherit: the copy must not take this file's `from __future__ import annotations`
    exec(compile(source, module.__file__, "exec", dont_inherit=True), copy.__dict__)
    return copy


@pytest.fixture
def no_lookup_module() -> Any:
    yield
    sys.modules.pop(precompiled.MODULE, None)
    sys.modules.pop("dataclasses_patched", None)
    sys.modules.pop("attr._make_patched", None)


def _sample_classes(dc: Any) -> list[type]:
    @dc.dataclass(frozen=True)
    class Frozen:
        name: str
        size: int = 3

    @dc.dataclass(order=True)
    class Ordered:
        a: int
        b: list[int] = dc.field(default_factory=list)

    return [Frozen, Ordered]


METHODS = ("__init__", "__repr__", "__eq__", "__hash__", "__setattr__", "__delattr__",
           "__lt__", "__le__", "__gt__", "__ge__")


def _methods(cls: type) -> dict[str, types.CodeType]:
    # __repr__ is wrapped by dataclasses' own recursion guard: compare the generated function
    return {name: inspect.unwrap(getattr(cls, name)).__code__ for name in METHODS
            if hasattr(getattr(cls, name, None), "__code__")}


@pytest.mark.usefixtures("no_lookup_module")
def test_patched_dataclasses_make_the_same_methods(tmp_path: Path) -> None:
    table: dict[str, dict[str, Any]] = {}
    with precompiled.recording(table):
        recorded = _sample_classes(dataclasses)
    assert len(table[__name__]) >= 8
    hits = []
    patched = _patched_module(dataclasses, table, tmp_path)
    real_lookup = sys.modules[precompiled.MODULE].lookup

    def counting(group: str, source: str) -> Any:
        code = real_lookup(group, source)
        hits.append(code is not None)
        return code

    sys.modules[precompiled.MODULE].lookup = counting
    cached = _sample_classes(patched)
    assert hits and all(hits)
    for new, old in zip(cached, recorded, strict=True):
        assert _methods(new).keys() == _methods(old).keys()
        for name, code in _methods(new).items():
            _same_code(code, _methods(old)[name])
    frozen = cached[0]("n")
    assert repr(frozen).endswith("Frozen(name='n', size=3)") and hash(frozen) == hash(("n", 3))
    with pytest.raises(patched.FrozenInstanceError):
        frozen.name = "m"  # type: ignore[misc]
    # a text not in the table is compiled as before
    hits.clear()
    sys.modules[precompiled.MODULE].lookup = lambda group, source: (hits.append(False), None)[1]
    again = _sample_classes(patched)
    assert hits and not any(hits)
    for new, old in zip(again, recorded, strict=True):
        for name, code in _methods(new).items():
            _same_code(code, _methods(old)[name])


@pytest.mark.usefixtures("no_lookup_module")
def test_patched_attrs_compiles_like_attrs(tmp_path: Path) -> None:
    script = "def __repr__(self):\n    return f'X({self.a!r})'\n"
    filename = "<attrs generated methods test.X>"
    unpatched: dict[str, Any] = {}
    attr._make._compile_and_eval(script, {}, unpatched, filename)
    table = {filename: {script: _compile_in(attr._make, script, filename)}}
    patched = _patched_module(attr._make, table, tmp_path)
    for tables in (table, {}):  # found in the table, then not found
        sys.modules[precompiled.MODULE].__dict__.update(_BLOBS={}, _TABLES={
            group: (texts, ()) for group, texts in tables.items()})
        locs: dict[str, Any] = {}
        patched._compile_and_eval(script, {}, locs, filename)
        _same_code(locs["__repr__"].__code__, unpatched["__repr__"].__code__)


def test_a_changed_dataclasses_fails_the_build() -> None:
    assert_changed_upstream_fails(dataclasses, "exec(txt, globals, ns)",
                                  "exec(txt, globals, ns)  # changed", precompiled.PATCHES)


def _hash_script(value: int) -> str:
    # the shape of attrs' __hash__: hash() of a seeded str written into the text
    return ("def __hash__(self):\n        return hash((\n"
            f"                {value},\n                self.a,\n            ))\n")


def test_a_text_with_a_seeded_hash_is_found_through_its_template() -> None:
    group = "<attrs generated methods test.Hashed>"
    first_value, second_value = 1234567890123456789, -987654321098765432

    def compiled(value: int) -> types.CodeType:
        return _compile_in(attr._make, _hash_script(value), group)

    first = {group: {_hash_script(first_value): compiled(first_value)}}
    second = {group: {_hash_script(second_value): compiled(second_value)}}
    found = precompiled.templates(first, second)
    assert len(found[group]) == len(precompiled.TEMPLATE_VALUES)
    module = types.ModuleType(precompiled.MODULE)
    exec(precompiled.module_source(precompiled.stable(first, second), found), module.__dict__)
    for value in (first_value, second_value, 10**18 + 1, -(10**18) - 99, 10**17 + 3, 2**63 - 1):
        code = module.lookup(group, _hash_script(value))
        assert code is not None, value
        _same_code(code, compiled(value))
    # other lengths, other texts: not found, so compiled as before
    for text in (_hash_script(12345), _hash_script(10**18 + 1) + " ", _hash_script(-0)):
        assert module.lookup(group, text) is None
    assert module.lookup(group, _hash_script(10**18 + 1).replace("self.a", "self.b")) is None
