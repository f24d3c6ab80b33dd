"""Build-time compilation of the methods that dataclasses and attrs generate (binary only).

Every start creates the same classes: our dataclasses, the driver's and structlog's, and
cyclopts' attrs classes. For each, dataclasses and attrs write the source of `__init__`,
`__repr__`, `__eq__`, ... as text and compile it: parsing and compiling that text was about a
third of the instructions of `statements` and a fifth of a no-op rollback. The build runs the
tool's start-up paths once (`record`), keeps the code objects compiled from each text, and
bundles them as the module `_nsr_precompiled`. The bundled dataclasses and attrs are patched to
look a text up there first; a text that is not found (a class created at run time, a text that
embeds a hash of a randomised seed) is compiled as before.

The code object found is the one that compiling the same text at the same call site gives: same
file name, same compiler flags (a module's `from __future__` imports), and it is found only for
exactly the same text. Texts that differ between two recording runs with different hash seeds
are not kept. tests/unit/test_precompiled.py compares the patched call sites with the unpatched
modules.
"""

from __future__ import annotations
import __future__

import builtins
import inspect
import marshal
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

from driver_patches import Patch

MODULE = "_nsr_precompiled"
# Commands the recorder runs in-process: what the binary imports on its start-up paths.
# The connected one fails fast (nothing listens on port 1) after importing the driver.
RECORDED_RUNS: tuple[tuple[str, ...], ...] = (
    ("statements",), ("--help",), ("rollback", "--help"), ("status", "--log-format", "json"),
    ("status", "--log-format", "console"),
)
RECORD_ENV = {"NEO4J_URI": "bolt://127.0.0.1:1", "NEO4J_PASSWORD": "x", "NEO4J_WAIT": "0"}

DATACLASSES = Patch(
    module="dataclasses",
    original='''
    ns = {}
    exec(txt, globals, ns)
    return ns['__create_fn__'](**locals)
''',
    replacement='''
    ns = {}
    # neo4j-schema-rollback build patch: the code of `txt`, compiled by the build.
    from _nsr_precompiled import lookup
    exec(lookup(globals['__name__'] if globals else '', txt) or txt, globals, ns)
    return ns['__create_fn__'](**locals)
''',
)

ATTRS = Patch(
    module="attr._make",
    original='''
    bytecode = compile(script, filename, "exec")
    eval(bytecode, globs, locs)
''',
    replacement='''
    # neo4j-schema-rollback build patch: the code of `script`, compiled by the build.
    from _nsr_precompiled import lookup

    bytecode = lookup(filename, script) or compile(script, filename, "exec")
    eval(bytecode, globs, locs)
''',
)

PATCHES = (DATACLASSES, ATTRS)
MARKERS = {"dataclasses": "_nsr_precompiled", "attr._make": "_nsr_precompiled"}

Table = dict[str, dict[str, Any]]  # group -> source text -> code object


# The compiler flags that code compiled by compile() or exec() inherits from its caller.
_FUTURE_FLAGS = 0
for _name in __future__.all_feature_names:
    _FUTURE_FLAGS |= getattr(__future__, _name).compiler_flag
# (module, function) of the call sites that the patches change.
_CALL_SITES = {("dataclasses", "_create_fn"): "exec",
               ("attr._make", "_compile_and_eval"): "compile"}


def _future_flags(namespace: Mapping[str, Any]) -> int:
    """The compiler flags that code compiled in a module inherits from its __future__ imports."""
    flags = 0
    for value in namespace.values():
        if isinstance(value, __future__._Feature):
            flags |= value.compiler_flag
    return flags


@contextmanager
def recording(table: Table) -> Iterator[None]:
    """Record into `table` every text that dataclasses' and attrs' call sites compile while the
    block runs, from the first class on (attrs' own classes too): builtins.exec and
    builtins.compile are wrapped, for calls from those two functions only."""
    real_exec, real_compile = builtins.exec, builtins.compile

    def caller_site(kind: str) -> tuple[FrameType, str] | None:
        frame = sys._getframe(2)
        site = (frame.f_globals.get("__name__"), frame.f_code.co_name)
        return (frame, site[0]) if _CALL_SITES.get(site) == kind else None  # type: ignore[arg-type]

    def recorded(source: str, filename: str, frame: FrameType, group: str) -> CodeType:
        # what compile()/exec() called from `frame` compile: its code's __future__ flags
        code = real_compile(source, filename, "exec", frame.f_code.co_flags & _FUTURE_FLAGS,
                            dont_inherit=True)
        table.setdefault(group, {})[source] = code
        return code

    def exec_(source: Any, globs: Any = None, locs: Any = None, /, **kwargs: Any) -> None:
        site = caller_site("exec") if isinstance(source, str) else None
        if site is None:
            frame = sys._getframe(1)
        else:
            frame = site[0]
            source = recorded(source, "<string>", frame, globs["__name__"] if globs else "")
        if globs is None:  # exec()'s defaults are its caller's namespaces
            globs = frame.f_globals
            locs = frame.f_locals if locs is None else locs
        real_exec(source, globs, locs, **kwargs)

    def compile_(source: Any, filename: Any, mode: str, flags: int = 0,
                 dont_inherit: bool = False, optimize: int = -1, **kwargs: Any) -> Any:
        site = caller_site("compile")
        if site is not None and isinstance(source, str) and mode == "exec" and flags == 0 \
                and not dont_inherit and optimize == -1 and not kwargs:
            return recorded(source, filename, site[0], filename)
        if not dont_inherit:
            flags |= sys._getframe(1).f_code.co_flags & _FUTURE_FLAGS
        return real_compile(source, filename, mode, flags, True, optimize, **kwargs)

    builtins.exec, builtins.compile = exec_, compile_  # type: ignore[assignment]
    try:
        yield
    finally:
        builtins.exec, builtins.compile = real_exec, real_compile


def record(runs: tuple[tuple[str, ...], ...] = RECORDED_RUNS) -> Table:
    """The texts compiled while the tool runs `runs` in this process (stdout/stderr discarded)."""
    import io

    table: Table = {}
    with recording(table):
        from neo4j_schema_rollback.main import run

        saved = sys.stdout, sys.stderr, dict(os.environ)
        try:
            os.environ.update(RECORD_ENV)
            for argv in runs:
                sys.stdout, sys.stderr = io.StringIO(), io.StringIO()
                run(list(argv))
        finally:
            sys.stdout, sys.stderr = saved[0], saved[1]
            os.environ.clear()
            os.environ.update(saved[2])
    return table


def stable(first: Table, second: Table) -> Table:
    """The entries that two recordings (different hash seeds) have in common."""
    return {group: {source: code for source, code in texts.items()
                    if second.get(group, {}).get(source) == code}
            for group, texts in first.items()}


Template = tuple[str, str, int, CodeType]  # prefix, suffix, the integer between, its code
# attrs' __hash__ holds hash() of a str, a 64-bit int: 18 or 19 digits, either sign (~99%).
TEMPLATE_VALUES = (10**17 + 4321, -(10**17 + 4321), 10**18 + 4321, -(10**18 + 4321))


def templates(first: Table, second: Table) -> dict[str, list[Template]]:
    """For an attrs group whose one text differs between the recordings in one integer literal
    only (attrs writes hash() of a str, seeded per process, into __hash__): the text around the
    integer, and per length of the literal (one for each of TEMPLATE_VALUES), the code compiled
    with such an integer there. A different integer of the same length changes nothing else in
    the code (a different length would move the column positions after it).

    Each template is kept only when putting the second recording's integer (of its length) or
    another integer of its length into its constants gives exactly the code compiled from that
    text."""
    import attr._make

    flags = _future_flags(vars(attr._make))
    found: dict[str, list[Template]] = {}
    for group, texts in first.items():
        others = second.get(group, {})
        only_first = [text for text in texts if text not in others]
        only_second = [text for text in others if text not in texts]
        if not group.startswith("<attrs generated") or len(only_first) != 1 \
                or len(only_second) != 1:
            continue
        a, b = only_first[0], only_second[0]
        start = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), None)
        if start is None:
            continue
        end = 0  # length of the common suffix
        while end < min(len(a), len(b)) - start and a[-1 - end] == b[-1 - end]:
            end += 1
        while start > 0 and (a[start - 1].isdigit() or a[start - 1] == "-"):
            start -= 1  # the common prefix may hold the integers' first digits
        while end > 0 and a[len(a) - end].isdigit():
            end -= 1
        prefix, suffix = a[:start], a[len(a) - end:]
        value_a, value_b = _integer(a[start:len(a) - end]), _integer(b[start:len(b) - end])
        if value_a is None or value_b is None or b != prefix + str(value_b) + suffix:
            continue

        def compiled(value: int, group: str = group, prefix: str = prefix,
                     suffix: str = suffix) -> CodeType:
            return compile(prefix + str(value) + suffix, group, "exec", flags, dont_inherit=True)

        kept = []
        for value in TEMPLATE_VALUES:
            code = compiled(value)
            check = value_b if len(str(value_b)) == len(str(value)) else value + 7
            if _with_integer(code, value, check) == (
                    others[b] if check == value_b else compiled(check)):
                kept.append((prefix, suffix, value, code))
        if len(kept) == len(TEMPLATE_VALUES):
            found[group] = kept
    return found


def _integer(text: str) -> int | None:
    """The value of a canonical int literal (as str() writes it), else None."""
    digits = text[1:] if text.startswith("-") else text
    if not digits.isdigit() or str(int(text)) != text:
        return None
    return int(text)


def _with_integer(code: CodeType, old: int, new: int) -> CodeType | None:
    """`code` with the int constant `old` replaced by `new` (also in nested code); None when
    `new` is a constant already (compiling would have shared it)."""
    consts = []
    for const in code.co_consts:
        if type(const) is int and const == new:
            return None
        if isinstance(const, CodeType):
            nested = _with_integer(const, old, new)
            if nested is None:
                return None
            const = nested
        elif type(const) is int and const == old:
            const = new
        consts.append(const)
    return code.replace(co_consts=tuple(consts))


def module_source(table: Table, found: dict[str, list[Template]] | None = None) -> str:
    """The text of `_nsr_precompiled`: each group's table, marshalled, loaded on first lookup."""
    found = found or {}
    blobs = {group: marshal.dumps((table.get(group, {}), found.get(group, [])))
             for group in sorted(set(table) | set(found)) if table.get(group) or group in found}
    helper = inspect.getsource(_with_integer).replace(
        "def _with_integer(code: CodeType, old: int, new: int) -> CodeType | None:",
        "def _with_integer(code, old, new):").replace("CodeType", "_CodeType")
    return (
        '"""Generated by build/spec/precompiled.py: code compiled by the build from the texts\n'
        'that dataclasses and attrs generate on the start-up paths, per module or file name."""\n'
        "\nimport marshal\n\n"
        "_CodeType = type(compile('', '', 'exec'))\n"
        f"_BLOBS = {blobs!r}\n"
        "_TABLES = {}\n\n\n"
        "def lookup(group, source):\n"
        "    try:\n"
        "        texts, templates = _TABLES[group]\n"
        "    except KeyError:\n"
        "        blob = _BLOBS.pop(group, None)\n"
        "        texts, templates = _TABLES[group] = ({}, ()) if blob is None else \\\n"
        "            marshal.loads(blob)\n"
        "    code = texts.get(source)\n"
        "    if code is None:\n"
        "        for prefix, suffix, value, template in templates:\n"
        "            middle = source[len(prefix):len(source) - len(suffix)]\n"
        "            digits = middle[1:] if middle.startswith('-') else middle\n"
        "            if (len(middle) == len(str(value)) and source.startswith(prefix)\n"
        "                    and source.endswith(suffix) and digits.isdigit()\n"
        "                    and str(int(middle)) == middle):\n"
        "                return _with_integer(template, value, int(middle))\n"
        "    return code\n\n\n"
        f"{helper}"
    )


def generate(src: Path, out: Path, python: str = sys.executable,
             run: Callable[..., Any] = subprocess.run) -> Path:
    """Record in two fresh interpreters with different hash seeds; write the module to `out`."""
    tables = []
    for seed in ("0", "1"):
        dump = out.with_suffix(f".seed{seed}")
        env = {**os.environ, "PYTHONHASHSEED": seed,
               "PYTHONPATH": os.pathsep.join([str(src), str(Path(__file__).parent)])}
        run([python, "-c", "import marshal, sys, precompiled; "
             "open(sys.argv[1], 'wb').write(marshal.dumps(precompiled.record()))", str(dump)],
            check=True, env=env)
        tables.append(marshal.loads(dump.read_bytes()))
        dump.unlink()
    table = stable(*tables)
    if sum(len(texts) for texts in table.values()) == 0:
        raise SystemExit("precompiled: nothing recorded (did the start-up paths change?)")
    out.write_text(module_source(table, templates(*tables)), encoding="utf-8")
    return out
