"""Build-time patch: the driver imports `ssl` for encrypted connections only (binary only; rules
as driver_patches.py).

`neo4j._async_compat.network._bolt_socket` (the socket code of the sync and the async driver)
imported six names from `ssl` at its top, so every run loaded `ssl` (and OpenSSL's error
strings, its enums and their members), an unencrypted `bolt://` one too. The driver creates
its SSLContext in `neo4j._sync.config` / `neo4j._async.config`, which import `ssl` there, so
an encrypted connection has `ssl` loaded before a socket is wrapped. In the bundled copy:

* the names are looked up in `ssl` where a socket is secured, and only then;
* the `except` clauses that named `SSLError`, `CertificateError` and `SSLWantReadError` name
  them while `ssl` is loaded, and nothing in its place before: an exception of `ssl`'s can only
  have been raised once `ssl` is loaded (an `except` clause looks its classes up when an
  exception reaches it).

The annotations that name `SSLContext` and `SSLSocket` are strings (the module has
`from __future__ import annotations`) and are never evaluated. tests/unit/test_ssl_patches.py
compares the patched module with the installed one; tests/integration/test_tls.py connects the
binary over TLS to real servers.
"""

from __future__ import annotations

from driver_patches import Patch

MODULE = "neo4j._async_compat.network._bolt_socket"

IMPORT = Patch(
    module=MODULE,
    original='''
from ssl import (
    CertificateError,
    HAS_SNI,
    SSLContext,
    SSLError,
    SSLSocket,
    SSLWantReadError,
)
''',
    replacement='''
import sys as _sys


def _ssl():
    # neo4j-schema-rollback build patch: `ssl` where a socket is secured (the configuration
    # that made the SSLContext has imported it already), not at import.
    import ssl

    return ssl


def _ssl_classes(*names):
    # neo4j-schema-rollback build patch: the exception classes of `ssl` for an `except` clause;
    # none while `ssl` is not loaded, since none of them can have been raised then.
    ssl = _sys.modules.get("ssl")
    return () if ssl is None else tuple(getattr(ssl, name) for name in names)
''',
)

ASYNC_SNI = Patch(
    module=MODULE,
    original='''
            if ssl_context is not None:
                sni_host = hostname if HAS_SNI and hostname else None
''',
    replacement='''
            if ssl_context is not None:
                sni_host = hostname if _ssl().HAS_SNI and hostname else None
''',
)

SYNC_SNI = Patch(
    module=MODULE,
    original='''
                hostname = resolved_address._host_name or None
                sni_host = hostname if HAS_SNI and hostname else None
''',
    replacement='''
                hostname = resolved_address._host_name or None
                sni_host = hostname if _ssl().HAS_SNI and hostname else None
''',
)


def _handshake_errors(indent: str) -> Patch:
    """The `except` clause around the TLS handshake (the async and the sync one differ in
    indentation only)."""
    return Patch(
        module=MODULE,
        original=f"\n{indent}OSError,\n{indent}SSLError,\n{indent}CertificateError,\n",
        replacement=f'\n{indent}OSError,\n{indent}*_ssl_classes("SSLError", "CertificateError"),\n',
    )


ASYNC_HANDSHAKE_ERRORS = _handshake_errors(" " * 16)
SYNC_HANDSHAKE_ERRORS = _handshake_errors(" " * 20)

AT_EOF = Patch(
    module=MODULE,
    original='''
            except (BlockingIOError, SSLWantReadError):
''',
    replacement='''
            except (BlockingIOError, *_ssl_classes("SSLWantReadError")):
''',
)

PATCHES = (IMPORT, ASYNC_SNI, SYNC_SNI, ASYNC_HANDSHAKE_ERRORS, SYNC_HANDSHAKE_ERRORS, AT_EOF)
# asyncio_patches has a marker of its own for this module: the spec checks both.
MARKERS = {MODULE: "_ssl_classes"}
