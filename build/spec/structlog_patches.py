"""Build-time patches to structlog's package import (binary only; rules as driver_patches.py).

`import structlog` imported all of its integrations: structlog.stdlib (logging integration),
structlog.testing, structlog.threadlocal and structlog.twisted, none of which the tool uses (it
wraps a PrintLogger with processors of its own). The bundled structlog/__init__.py imports them
on first access instead, through the module's __getattr__, which gives the same objects.
tests/unit/test_structlog_patches.py compares the patched package with the installed one.
"""

from __future__ import annotations

from driver_patches import Patch

SUBMODULES = Patch(
    module="structlog",
    original='''
from structlog import (
    contextvars,
    dev,
    processors,
    stdlib,
    testing,
    threadlocal,
    tracebacks,
    types,
    typing,
)
''',
    replacement='''
from structlog import (
    contextvars,
    dev,
    processors,
    tracebacks,
    types,
    typing,
)
''',
)

TESTING_NAMES = Patch(
    module="structlog",
    original='''
from structlog.testing import ReturnLogger, ReturnLoggerFactory
''',
    replacement="\n",
)

TWISTED = Patch(
    module="structlog",
    original='''
try:
    from structlog import twisted
except ImportError:
    twisted = None  # type: ignore[assignment]
''',
    replacement='''
# neo4j-schema-rollback build patch: these are imported on first access (see __getattr__).
_LAZY = frozenset({"stdlib", "testing", "threadlocal", "twisted", "ReturnLogger",
                   "ReturnLoggerFactory"})


def _import_lazily(name):
    # import_module, not `from structlog import ...`: that would ask __getattr__ again
    from importlib import import_module

    if name in ("ReturnLogger", "ReturnLoggerFactory"):
        value = getattr(import_module("structlog.testing"), name)
    elif name == "twisted":
        try:
            value = import_module("structlog.twisted")
        except ImportError:
            value = None
    else:
        value = import_module(f"structlog.{name}")
    globals()[name] = value
    return value


def __dir__():
    return sorted({*globals(), *_LAZY})
''',
)

GETATTR = Patch(
    module="structlog",
    original='''
def __getattr__(name: str) -> str:
    import warnings
''',
    replacement='''
def __getattr__(name: str) -> str:
    if name in _LAZY:
        return _import_lazily(name)
    import warnings
''',
)

PATCHES = (SUBMODULES, TESTING_NAMES, TWISTED, GETATTR)
MARKERS = {"structlog": "_import_lazily"}
