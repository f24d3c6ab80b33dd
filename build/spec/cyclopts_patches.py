"""Build-time patches to cyclopts' and attrs' imports (binary only; rules as driver_patches.py).

* `App(help_formatter="plain")` imports cyclopts.help.formatters.plain, and with it the
  packages cyclopts.help (help panels, table specs, every formatter) and
  cyclopts.help.formatters, although a command that prints no help needs none of them. Both
  packages' __init__ modules import their names on first access instead, through the module's
  __getattr__, which gives the same objects.
* attrs imported `platform` (~3 ms in the binary) for `platform.python_implementation() ==
  "PyPy"`; `sys.implementation.name == "pypy"` says the same without it.

tests/unit/test_cyclopts_patches.py compares the patched modules with the installed ones.
"""

from __future__ import annotations

from driver_patches import Patch


def _lazy_init(names: dict[str, str], submodules: tuple[str, ...]) -> str:
    """A package __init__'s imports of `names` (name -> submodule), done on first access."""
    table = "".join(f"    {name!r}: {module!r},\n" for name, module in names.items())
    return (
        "\n# neo4j-schema-rollback build patch: the names below are imported on first access.\n"
        f"_LAZY = {{\n{table}}}\n"
        f"_SUBMODULES = frozenset({tuple(sorted(submodules))!r})\n\n\n"
        "def __getattr__(name):\n"
        "    from importlib import import_module\n\n"
        "    if name in _SUBMODULES:\n"
        "        return import_module(f'.{name}', __name__)\n"
        "    if name not in _LAZY:\n"
        "        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')\n"
        "    value = globals()[name] = getattr(import_module(_LAZY[name], __name__), name)\n"
        "    return value\n\n\n"
        "def __dir__():\n"
        "    return sorted({*globals(), *_LAZY})\n"
    )


HELP_NAMES = {
    "DefaultFormatter": ".formatters", "MarkdownFormatter": ".formatters",
    "PlainFormatter": ".formatters",
    "HelpEntry": ".help", "HelpPanel": ".help", "create_parameter_help_panel": ".help",
    "format_command_entries": ".help", "format_doc": ".help", "format_usage": ".help",
    "InlineText": ".inline_text", "Renderer": ".protocols",
    "AsteriskRenderer": ".specs", "ColumnSpec": ".specs", "DescriptionRenderer": ".specs",
    "NameRenderer": ".specs", "PanelSpec": ".specs", "TableSpec": ".specs",
}

HELP_PACKAGE = Patch(
    module="cyclopts.help",
    original='''
from .formatters import DefaultFormatter, MarkdownFormatter, PlainFormatter
from .help import (
    HelpEntry,
    HelpPanel,
    create_parameter_help_panel,
    format_command_entries,
    format_doc,
    format_usage,
)
from .inline_text import InlineText
from .protocols import Renderer
from .specs import (
    AsteriskRenderer,
    ColumnSpec,
    DescriptionRenderer,
    NameRenderer,
    PanelSpec,
    TableSpec,
)
''',
    replacement=_lazy_init(HELP_NAMES, ("formatters", "help", "inline_text", "protocols",
                                        "specs", "silent")),
)

FORMATTER_NAMES = {"DefaultFormatter": ".default", "HtmlFormatter": ".html",
                   "MarkdownFormatter": ".markdown", "PlainFormatter": ".plain"}

FORMATTERS_PACKAGE = Patch(
    module="cyclopts.help.formatters",
    original='''
from .default import DefaultFormatter
from .html import HtmlFormatter
from .markdown import MarkdownFormatter
from .plain import PlainFormatter
''',
    replacement=_lazy_init(FORMATTER_NAMES, ("default", "html", "markdown", "plain")),
)

ATTRS_PLATFORM = Patch(
    module="attr._compat",
    original='''
import inspect
import platform
import sys
''',
    replacement='''
import inspect
import sys
''',
)

ATTRS_PYPY = Patch(
    module="attr._compat",
    original='''
PYPY = platform.python_implementation() == "PyPy"
''',
    replacement='''
# neo4j-schema-rollback build patch: the same answer without importing platform
PYPY = sys.implementation.name == "pypy"
''',
)

PATCHES = (HELP_PACKAGE, FORMATTERS_PACKAGE, ATTRS_PLATFORM, ATTRS_PYPY)
MARKERS = {"cyclopts.help": "_LAZY", "cyclopts.help.formatters": "_LAZY",
           "attr._compat": "implementation"}
