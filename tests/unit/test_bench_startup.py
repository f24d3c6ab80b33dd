"""The pure parts of scripts/bench-startup: the unpack cache's names and key, golang-migrate's
URL and migration file, and the targets' verdicts."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from patched import spec_module

ROOT = Path(__file__).resolve().parents[2]
bootloader_cache = spec_module("bootloader_cache")


def load_bench() -> ModuleType:
    path = ROOT / "scripts" / "bench-startup"
    loader = importlib.machinery.SourceFileLoader("bench_startup", str(path))
    spec = importlib.util.spec_from_loader("bench_startup", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_startup"] = module  # dataclasses look their module up
    loader.exec_module(module)
    return module


bench = load_bench()


def test_cache_names_are_the_bootloaders() -> None:
    """The script's copies of the cache's names equal build/spec/bootloader_cache.py's."""
    assert bench.CACHE_DIR_VARIABLE == bootloader_cache.CACHE_DIR_VARIABLE
    assert bench.NO_CACHE_VARIABLE == bootloader_cache.NO_CACHE_VARIABLE
    assert bench.COMPLETE == bootloader_cache.COMPLETE
    assert bench.KEY_PREFIX == bootloader_cache.KEY_PREFIX
    assert len(bootloader_cache.KEY_PLACEHOLDER) == len(bench.KEY_PREFIX) + 64


def test_cache_key() -> None:
    """A stamped key names the cache; the placeholder or no patched bootloader: no cache."""
    digest = "0123456789abcdef" * 4
    assert bench.cache_key(b"\x7fELF..." + bench.KEY_PREFIX + digest.encode() + b"\0") == digest
    assert bench.cache_key(b"\x7fELF..." + bootloader_cache.KEY_PLACEHOLDER + b"\0") is None
    assert bench.cache_key(b"\x7fELF... PyInstaller's own bootloader") is None
    assert bench.cache_key(bench.KEY_PREFIX + b"not a digest") is None


def test_migrate_url_encodes_the_credentials() -> None:
    """golang-migrate's neo4j driver reads user and password percent-encoded from the URL."""
    env = {"NEO4J_URI": "bolt://127.0.0.1:18567", "NEO4J_USERNAME": "neo4j",
           "NEO4J_PASSWORD": "Pw ü'\"$%0Y ¤/@:?"}
    assert bench.migrate_url(env) == (
        "neo4j://neo4j:Pw%20%C3%BC%27%22%24%250Y%20%C2%A4%2F%40%3A%3F@127.0.0.1:18567"
        "?x-multi-statement=true")
    assert bench.migrate_url(env, hidden=True) == (
        "neo4j://neo4j:***@127.0.0.1:18567?x-multi-statement=true")
    tls = {**env, "NEO4J_URI": "neo4j+s://db.example:7000"}
    assert bench.migrate_url(tls, hidden=True) == (
        "neo4j://neo4j:***@db.example:7000?x-multi-statement=true&x-tls-encrypted=true")
    assert bench.migrate_url({**env, "NEO4J_URI": "neo4j://[::1]"}, hidden=True) == (
        "neo4j://neo4j:***@[::1]:7687?x-multi-statement=true")


@pytest.mark.parametrize("env", [
    {"NEO4J_URI": "bolt+ssc://127.0.0.1:7687", "NEO4J_PASSWORD": "x"},
    {"NEO4J_URI": "http://127.0.0.1:7474", "NEO4J_PASSWORD": "x"},
    {"NEO4J_URI": "bolt://127.0.0.1:7687"},
])
def test_migrate_url_refuses_what_golang_migrate_cannot_use(env: dict[str, str]) -> None:
    with pytest.raises(bench.BenchError, match="--no-golang-migrate"):
        bench.migrate_url(env)


def test_drop_statements() -> None:
    """One DROP ... IF EXISTS; a line: golang-migrate's multi-statement mode splits at `;`."""
    text = "DROP INDEX kafka_topic IF EXISTS;\n\nDROP CONSTRAINT compute_pk IF EXISTS;\n"
    assert bench.drop_statements(text) == ["DROP INDEX kafka_topic IF EXISTS;",
                                           "DROP CONSTRAINT compute_pk IF EXISTS;"]
    for bad in ("", "DROP INDEX kafka_topic;\n", "CREATE INDEX x IF NOT EXISTS FOR (n) ON (n.x);"):
        with pytest.raises(bench.BenchError):
            bench.drop_statements(bad)


def case(command: str, mode: str, wall_ms: float, instructions: int | None = None) -> Any:
    result = bench.Case(command, command, [command], {}, bench.Cache(mode))
    result.samples.append(bench.Sample(wall_ms / 1000, 0.0, 0))
    result.instructions = instructions
    return result


def test_targets() -> None:
    """Warm rows: absolute instruction targets; first runs: no slower than per-start unpack."""
    cases = [
        case("rollback", bench.COLD, 160.0),
        case("rollback", bench.WARM, 110.0, 499_000_000),
        case("rollback", bench.PER_START, 170.0),
        case("statements", bench.COLD, 120.0),
        case("statements", bench.WARM, 60.0, 385_500_000),
        case("statements", bench.PER_START, 110.0),
    ]
    texts = [bench.target_text(c, cases, counted=True) for c in cases]
    assert texts == [
        "wall ≤ per-start (170 ms): met",
        "instructions ≤ 500 M: met",
        "",
        "wall ≤ per-start (110 ms): **missed**",
        "instructions ≤ 380 M: **missed**",
        "",
    ]
    assert bench.target_text(cases[1], cases, counted=False) == (
        "instructions ≤ 500 M: not counted (--instructions)")
    no_cache = [case("--version", bench.PER_START, 50.0)]
    assert bench.target_text(no_cache[0], no_cache, counted=True) == (
        "warm ≤ 120 M: n/a, no unpack cache")
