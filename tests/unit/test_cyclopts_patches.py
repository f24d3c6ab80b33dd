"""The binary's lazy cyclopts help packages and attrs without `platform`
(build/spec/cyclopts_patches.py) against the installed packages."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import attr._compat
import cyclopts.help
import cyclopts.help.formatters
import pytest

from patched import (
    assert_changed_upstream_fails,
    patched_copy,
    run_with_patched_copies,
    spec_module,
)

cyclopts_patches = spec_module("cyclopts_patches")
driver_patches = spec_module("driver_patches")


def _patched_source(module: types.ModuleType) -> str:
    assert module.__file__ is not None
    return driver_patches.patched_source(
        module.__name__, Path(module.__file__).read_text(encoding="utf-8"),
        cyclopts_patches.PATCHES)


def _patched_copy(module: types.ModuleType) -> types.ModuleType:
    return patched_copy(module, _patched_source(module))


@pytest.mark.parametrize("package", [cyclopts.help, cyclopts.help.formatters],
                         ids=lambda m: m.__name__)
def test_lazy_help_packages_offer_the_same_names(package: types.ModuleType) -> None:
    patched = _patched_copy(package)
    assert not any(name in vars(patched) for name in package.__all__)
    assert set(package.__all__) <= set(dir(patched))
    for name in package.__all__:
        assert getattr(patched, name) is getattr(package, name), name
    for name in patched._SUBMODULES:
        assert getattr(patched, name) is sys.modules[f"{package.__name__}.{name}"]
    with pytest.raises(AttributeError, match=f"module '{package.__name__}' has no attribute"):
        patched.no_such_name  # noqa: B018


def test_attrs_knows_it_is_not_on_pypy_without_platform() -> None:
    patched = _patched_copy(attr._compat)
    assert "platform" not in vars(patched)
    assert patched.PYPY is attr._compat.PYPY is False


def test_a_changed_cyclopts_fails_the_build() -> None:
    assert_changed_upstream_fails(cyclopts.help, "InlineText", "Inline",
                                  cyclopts_patches.PATCHES)


def test_plain_help_needs_none_of_the_other_help_modules(tmp_path: Path) -> None:
    """A fresh interpreter with the patched cyclopts and attrs: an App with the plain formatter
    imports no help panel, spec or other formatter, nor platform, until help is printed; the
    help then printed is the unpatched one."""
    script = (
        "import sys, cyclopts\n"
        "assert cyclopts.__file__.startswith(sys.argv[1]), cyclopts.__file__\n"
        "app = cyclopts.App(name='x', help='Does x.', help_formatter='plain',\n"
        "                   result_action='return_value')\n"
        "@app.command\n"
        "def go(*, n: int = 1) -> None:\n"
        "    'Go n times.'\n"
        "app(['go', '--n', '2'])\n"
        "print(sorted(m for m in sys.modules if m.startswith(('cyclopts.help', 'platform'))))\n"
        "app(['go', '--help'])\n")
    lines = run_with_patched_copies(
        tmp_path, ["cyclopts", "attr"],
        {module: _patched_source(module)
         for module in (cyclopts.help, cyclopts.help.formatters, attr._compat)}, script)
    assert lines[0] == "['cyclopts.help', 'cyclopts.help.formatters', " \
        "'cyclopts.help.formatters.plain']"
    installed = subprocess.run(
        [sys.executable, "-c", script.replace("assert cyclopts", "# "), "-"], check=True,
        capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "COLUMNS": "80"})
    assert lines[1:] == installed.stdout.splitlines()[1:]
    assert any("Go n times." in line for line in lines)
