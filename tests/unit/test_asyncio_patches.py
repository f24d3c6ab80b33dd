"""The binary's lazy asyncio in the driver and structlog (build/spec/asyncio_patches.py)
against the installed packages."""

from __future__ import annotations

import asyncio
import sys
import types
from pathlib import Path

import neo4j._async.auth_management
import neo4j._async_compat
import neo4j._async_compat.concurrency as concurrency
import pytest

from patched import (
    assert_changed_upstream_fails,
    patched_copy,
    run_with_patched_copies,
    spec_module,
)

driver_patches = spec_module("driver_patches")
asyncio_patches = spec_module("asyncio_patches")


def _module(name: str) -> types.ModuleType:
    __import__(name)
    return sys.modules[name]


def _patched_source(module: types.ModuleType) -> str:
    assert module.__file__ is not None
    return driver_patches.patched_source(
        module.__name__, Path(module.__file__).read_text(encoding="utf-8"),
        asyncio_patches.PATCHES)


@pytest.fixture
def lazy_asyncio() -> types.ModuleType:
    module = types.ModuleType(asyncio_patches.MODULE)
    exec(asyncio_patches.SOURCE, module.__dict__)
    sys.modules[asyncio_patches.MODULE] = module
    yield module
    del sys.modules[asyncio_patches.MODULE]


def _patched_copy(module: types.ModuleType) -> types.ModuleType:
    return patched_copy(module, _patched_source(module))


def test_the_proxy_gives_asyncio_s_attributes(lazy_asyncio: types.ModuleType) -> None:
    proxy = lazy_asyncio.asyncio
    assert proxy.CancelledError is asyncio.CancelledError
    assert proxy.Lock is asyncio.Lock and proxy.sleep is asyncio.sleep
    with pytest.raises(AttributeError):
        proxy.no_such_name  # noqa: B018


@pytest.mark.usefixtures("lazy_asyncio")
@pytest.mark.parametrize("name", [*asyncio_patches.IMPORTERS, "neo4j._async_compat",
                                  "neo4j._async.auth_management"])
def test_patched_modules_offer_the_same_names(name: str) -> None:
    original = _module(name)
    patched = _patched_copy(original)
    for key, value in vars(original).items():
        if key in ("__builtins__", "__cached__", "__loader__", "__spec__") or (
                isinstance(value, types.ModuleType) and value.__name__.startswith(f"{name}.")):
            continue  # a copy has no loader, and its submodules belong to the original
        ours = getattr(patched, key)  # lazily defined names too
        if key == "asyncio":
            assert ours.CancelledError is asyncio.CancelledError
        elif isinstance(value, type | types.FunctionType) and value.__module__ == name:
            # defined by the module itself: the copy defines its own, alike
            assert type(ours) is type(value) and ours.__qualname__ == value.__qualname__, key
            if isinstance(value, type):
                assert [c.__qualname__ for c in ours.__mro__] == \
                    [c.__qualname__ for c in value.__mro__], key
        elif isinstance(value, type | types.FunctionType | types.ModuleType | type(print)):
            assert ours is value, key  # imported


@pytest.mark.usefixtures("lazy_asyncio")
def test_the_async_locks_are_the_drivers() -> None:
    patched = _patched_copy(concurrency)
    assert "AsyncRLock" not in vars(patched)
    assert patched.AsyncLock is asyncio.Lock
    assert patched.AsyncBoundedSemaphore is asyncio.BoundedSemaphore
    rlock = patched.AsyncRLock
    assert rlock.__qualname__ == "AsyncRLock" and rlock.__mro__[1] is asyncio.Lock
    assert sorted(vars(rlock)) == sorted(vars(concurrency.AsyncRLock))

    async def reenter() -> list[bool]:
        lock = rlock()
        async with lock, lock:
            inner = lock.locked()
        return [inner, lock.locked()]

    assert asyncio.run(reenter()) == [True, False]
    assert patched.async_acquire_bounded_semaphore.__code__.co_code == \
        concurrency.async_acquire_bounded_semaphore.__code__.co_code


def test_a_changed_driver_fails_the_build() -> None:
    assert_changed_upstream_fails(concurrency, "Reentrant asyncio.lock.", "Reentrant lock.",
                                  asyncio_patches.PATCHES)


def test_the_sync_driver_and_structlog_run_without_asyncio(tmp_path: Path) -> None:
    """A fresh interpreter with the patched copies (and the other build patches of the driver
    and structlog): importing both, logging a line and creating a driver import no asyncio; a
    failed connection does (an `except asyncio.CancelledError` clause is reached); the async
    API, asked for, still works."""
    import structlog

    patches = (driver_patches.PATCHES + spec_module("structlog_patches").PATCHES
               + asyncio_patches.PATCHES)
    modules = {p.module for p in patches}
    sources = {}
    for name in sorted(modules):
        module = _module(name)
        assert module.__file__ is not None
        sources[module] = driver_patches.patched_source(
            name, Path(module.__file__).read_text(encoding="utf-8"), patches)
    (tmp_path / f"{asyncio_patches.MODULE}.py").write_text(asyncio_patches.SOURCE,
                                                           encoding="utf-8")
    script = (
        "import io, sys, structlog, neo4j\n"
        "assert neo4j.__file__.startswith(sys.argv[1]) and structlog.__file__.startswith(\n"
        "    sys.argv[1])\n"
        "log = structlog.wrap_logger(structlog.PrintLogger(io.StringIO()),\n"
        "                            processors=[structlog.processors.JSONRenderer()])\n"
        "log.info('x')\n"
        "with neo4j.GraphDatabase.driver('bolt://127.0.0.1:1', auth=('u', 'p')) as driver:\n"
        "    print('asyncio' in sys.modules)\n"
        "    try:\n"
        "        driver.verify_connectivity()\n"
        "    except neo4j.exceptions.ServiceUnavailable:\n"
        "        print('unavailable')\n"
        "print('asyncio' in sys.modules)\n"
        "import asyncio\n"
        "async def main():\n"
        "    async with neo4j.AsyncGraphDatabase.driver('bolt://127.0.0.1:1',\n"
        "                                               auth=('u', 'p')) as driver:\n"
        "        try:\n"
        "            await driver.verify_connectivity()\n"
        "        except neo4j.exceptions.ServiceUnavailable:\n"
        "            print('async unavailable')\n"
        "asyncio.run(main())\n")
    lines = run_with_patched_copies(tmp_path, ["neo4j", "structlog"], sources, script)
    assert lines == ["False", "unavailable", "True", "async unavailable"]
    assert structlog is not None and neo4j._async.auth_management is not None
    assert neo4j._async_compat is not None
