"""Helpers for the tests of the build's patches to its bundled packages (build/spec/)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import types
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

SPEC_DIR = Path(__file__).resolve().parents[1] / "build" / "spec"


def spec_module(name: str) -> types.ModuleType:
    """build/spec/<name>.py, imported (once) under its own name, as the spec imports it."""
    if name in sys.modules:
        return sys.modules[name]
    if str(SPEC_DIR) not in sys.path:
        sys.path.append(str(SPEC_DIR))  # the patch modules import driver_patches
    spec = importlib.util.spec_from_file_location(name, SPEC_DIR / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve annotations through it
    spec.loader.exec_module(module)
    return module


def run_with_patched_copies(tmp_path: Path, packages: Iterable[str],
                            sources: Mapping[types.ModuleType, str], script: str) -> list[str]:
    """The stdout lines of `script`, run by a fresh interpreter that imports copies of the
    installed `packages` from `tmp_path`, with the modules of `sources` replaced by the given
    (patched) sources. The script gets `tmp_path` as sys.argv[1]."""
    for package in packages:
        location = Path(sys.modules[package].__file__ or "").parent
        shutil.copytree(location, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    for module, source in sources.items():
        assert module.__file__ is not None
        top = Path(sys.modules[module.__name__.split(".")[0]].__file__ or "").parent
        (tmp_path / Path(module.__file__).relative_to(top.parent)).write_text(
            source, encoding="utf-8")
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True,
                            capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(tmp_path), "COLUMNS": "80"})
    return result.stdout.splitlines()


def patched_copy(module: types.ModuleType, source: str) -> types.ModuleType:
    """`module` executed from `source` (its patched text) as a second module of its package:
    its imports resolve to the installed (already imported) modules."""
    assert module.__file__ is not None
    copy = types.ModuleType(module.__name__)
    copy.__dict__.update(__package__=module.__package__, __file__=module.__file__)
    if hasattr(module, "__path__"):
        copy.__path__ = list(module.__path__)
    # dont_inherit: not the `from __future__ import annotations` of this file
    exec(compile(source, module.__file__, "exec", dont_inherit=True), copy.__dict__)
    return copy


def assert_changed_upstream_fails(module: types.ModuleType, old: str, new: str,
                                  patches: tuple[Any, ...] | None = None) -> None:
    """The build refuses `patches` (default: the driver's own) once the installed `module`'s
    text `old` reads `new`: a patch never applies to a source it was not written for."""
    import pytest

    assert module.__file__ is not None
    source = Path(module.__file__).read_text(encoding="utf-8")
    assert old in source, f"{old!r} is not in {module.__file__}"
    driver_patches = spec_module("driver_patches")
    chosen = driver_patches.PATCHES if patches is None else patches
    with pytest.raises(driver_patches.PatchError, match="occurs 0 times"):
        driver_patches.patched_source(module.__name__, source.replace(old, new), chosen)
