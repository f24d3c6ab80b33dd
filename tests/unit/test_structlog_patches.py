"""The binary's lazy structlog integrations (build/spec/structlog_patches.py) against the
installed structlog: the same names give the same objects, and `import structlog` no longer
imports structlog.stdlib."""

from __future__ import annotations

import types
from pathlib import Path

import pytest
import structlog

from patched import run_with_patched_copies, spec_module

driver_patches = spec_module("driver_patches")
structlog_patches = spec_module("structlog_patches")


def _patched_source() -> str:
    assert structlog.__file__ is not None
    return driver_patches.patched_source(
        "structlog", Path(structlog.__file__).read_text(encoding="utf-8"),
        structlog_patches.PATCHES)


def _patched_package_init() -> types.ModuleType:
    """structlog/__init__.py executed from its patched source as a second module of the
    package: its imports resolve to the installed (already imported) structlog modules."""
    assert structlog.__file__ is not None
    module = types.ModuleType("structlog")
    module.__dict__.update(__package__="structlog", __path__=list(structlog.__path__),
                           __file__=structlog.__file__)
    exec(compile(_patched_source(), structlog.__file__, "exec"), module.__dict__)
    return module


def test_patched_structlog_offers_the_same_names() -> None:
    patched = _patched_package_init()
    assert "stdlib" not in vars(patched) and "ReturnLogger" not in vars(patched)
    assert set(structlog.__all__) <= set(dir(patched))
    for name in structlog.__all__:
        assert getattr(patched, name) is getattr(structlog, name), name
    with pytest.raises(AttributeError, match="has no attribute no_such_name"):
        patched.no_such_name  # noqa: B018


def test_twisted_is_none_without_twisted_as_before() -> None:
    patched = _patched_package_init()
    assert patched.twisted is structlog.twisted


def test_import_structlog_leaves_the_integrations_out(tmp_path: Path) -> None:
    script = (
        "import io, sys, structlog\n"
        "assert structlog.__file__.startswith(sys.argv[1]), structlog.__file__\n"
        "out = io.StringIO()\n"
        "log = structlog.wrap_logger(structlog.PrintLogger(out), processors=[\n"
        "    structlog.processors.add_log_level, structlog.processors.JSONRenderer()])\n"
        "log.info('hello', n=1)\n"
        "print(out.getvalue().strip())\n"
        "print(sorted(m for m in ('structlog.stdlib', 'structlog.testing',\n"
        "    'structlog.threadlocal', 'structlog.twisted') if m in sys.modules))\n"
        "structlog.stdlib.BoundLogger, structlog.ReturnLogger\n"
        "print('structlog.stdlib' in sys.modules, 'structlog.testing' in sys.modules)\n")
    lines = run_with_patched_copies(tmp_path, ["structlog"], {structlog: _patched_source()},
                                    script)
    assert lines == ['{"n": 1, "event": "hello", "level": "info"}', "[]", "True True"]
