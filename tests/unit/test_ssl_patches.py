"""The binary's driver without `ssl` for unencrypted connections (build/spec/ssl_patches.py),
against the installed driver."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import neo4j._async_compat.network._bolt_socket as bolt_socket

from patched import (
    assert_changed_upstream_fails,
    patched_copy,
    run_with_patched_copies,
    spec_module,
)

driver_patches = spec_module("driver_patches")
asyncio_patches = spec_module("asyncio_patches")
ssl_patches = spec_module("ssl_patches")

# Every build patch of the driver, as the binary carries them together.
PATCHES = driver_patches.PATCHES + asyncio_patches.PATCHES + ssl_patches.PATCHES
SSL_NAMES = {"CertificateError", "HAS_SNI", "SSLContext", "SSLError", "SSLSocket",
             "SSLWantReadError"}


def _patched_source(name: str, patches: tuple[object, ...] = PATCHES) -> str:
    __import__(name)
    path = sys.modules[name].__file__
    assert path is not None
    return driver_patches.patched_source(name, Path(path).read_text(encoding="utf-8"), patches)


def test_the_patched_module_offers_the_same_names_less_ssl_s() -> None:
    patched = patched_copy(bolt_socket, _patched_source(bolt_socket.__name__,
                                                        ssl_patches.PATCHES))
    names = {name for name in vars(bolt_socket) if not name.startswith("__")}
    assert names - set(vars(patched)) == SSL_NAMES
    assert set(vars(patched)) - set(vars(bolt_socket)) == {"_sys", "_ssl", "_ssl_classes"}


def test_ssl_classes_are_ssl_s_once_it_is_loaded() -> None:
    import ssl

    patched = patched_copy(bolt_socket, _patched_source(bolt_socket.__name__,
                                                        ssl_patches.PATCHES))
    assert patched._ssl_classes("SSLError", "CertificateError", "SSLWantReadError") == (
        bolt_socket.SSLError, bolt_socket.CertificateError, bolt_socket.SSLWantReadError)
    assert patched._ssl() is ssl and patched._ssl().HAS_SNI is bolt_socket.HAS_SNI


def test_a_changed_driver_fails_the_build() -> None:
    assert_changed_upstream_fails(bolt_socket, "    SSLWantReadError,\n)", "    SSLZ,\n)",
                                  ssl_patches.PATCHES)


# Run by the patched and by the installed driver: a plain connection, a plain socket's
# at_eof (whose `except` clause named SSLWantReadError), then TLS handshakes, sync and async,
# with a local listener that answers in plain text (ssl's errors reach the `except` clauses).
_SCRIPT = """\
import socket, sys, threading
import neo4j
from neo4j._sync.io._bolt._bolt_socket import BoltSocket

def names(exc):
    chain = []
    while exc is not None:
        chain.append(type(exc).__name__)
        exc = exc.__cause__
    return " <- ".join(chain)

print("ssl loaded:", "ssl" in sys.modules)
driver = neo4j.GraphDatabase.driver("bolt://127.0.0.1:1", auth=("u", "p"))
a, b = socket.socketpair()
wrapped = BoltSocket(a)
print("at_eof while open:", wrapped.at_eof())
b.close()
print("at_eof after close:", wrapped.at_eof())
print("ssl loaded:", "ssl" in sys.modules)
try:  # a failed connection imports asyncio (asyncio_patches), and asyncio imports ssl
    driver.verify_connectivity()
except Exception as exc:
    print("plain:", names(exc))
driver.close()

listener = socket.create_server(("127.0.0.1", 0))
def answer():
    while True:
        peer, _ = listener.accept()
        peer.sendall(b"HTTP/1.1 400 Bad Request" + bytes(500))
        peer.close()
threading.Thread(target=answer, daemon=True).start()
uri = "bolt+s://localhost:%d" % listener.getsockname()[1]
with neo4j.GraphDatabase.driver(uri, auth=("u", "p"), connection_timeout=5) as driver:
    try:
        driver.verify_connectivity()
    except Exception as exc:
        print("tls:", names(exc))

import asyncio  # which imports ssl itself

async def main():
    async with neo4j.AsyncGraphDatabase.driver(uri, auth=("u", "p"),
                                               connection_timeout=5) as driver:
        try:
            await driver.verify_connectivity()
        except Exception as exc:
            print("async tls:", names(exc))
asyncio.run(main())
print("ssl loaded:", "ssl" in sys.modules)
"""


def test_the_patched_driver_connects_like_the_driver_without_ssl_until_tls(
        tmp_path: Path) -> None:
    sources = {}
    for name in sorted({p.module for p in PATCHES if p.module.split(".")[0] == "neo4j"}):
        source = _patched_source(name)
        sources[sys.modules[name]] = source
    (tmp_path / f"{asyncio_patches.MODULE}.py").write_text(asyncio_patches.SOURCE,
                                                           encoding="utf-8")
    patched = run_with_patched_copies(
        tmp_path, ["neo4j"], sources,
        _SCRIPT + "assert neo4j.__file__.startswith(sys.argv[1]), neo4j.__file__\n")
    installed = subprocess.run([sys.executable, "-c", _SCRIPT], check=True, capture_output=True,
                               text=True, env=os.environ.copy()).stdout.splitlines()
    assert installed[0] == installed[3] == "ssl loaded: True"  # what the patch is for
    assert patched[:4] == ["ssl loaded: False", "at_eof while open: False",
                           "at_eof after close: True", "ssl loaded: False"]
    assert patched[4:] == installed[4:]
    assert patched[4].startswith("plain: ServiceUnavailable")
    # ssl's error reached the patched `except` clauses, sync and async
    assert patched[5] == "tls: ServiceUnavailable <- BoltSecurityError <- SSLError"
    assert patched[6] == "async tls: ServiceUnavailable <- BoltSecurityError <- SSLError"
    assert patched[7] == "ssl loaded: True"
