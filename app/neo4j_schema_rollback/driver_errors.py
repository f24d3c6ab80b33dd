"""Driver exceptions in plain words: the cause in a few words, its error class, the server's
codes, and the driver's own full text for the log.

Imported by connection.py only, when the driver is already loaded. `ssl` is looked up, never
imported: an unencrypted run does not load it (see build/spec/ssl_patches.py), and then no
exception can be one of its kinds.
"""

from __future__ import annotations

import errno
import socket
import sys
from collections.abc import Iterator
from typing import Any

from neo4j import exceptions as nx

from . import errors

# What the driver says where it has no exception type of its own (neo4j 6.x, _sync/io/_bolt.py,
# _sync/io/_pool.py); tests/unit/test_driver_errors.py fails when the driver stops saying it.
HANDSHAKE_HUNG_UP = "closed with incomplete handshake response"
HANDSHAKE_UNANSWERED = "four byte Bolt handshake response"
LOOKS_LIKE_HTTP = "(looks like HTTP)"
NO_ROUTING_TABLE = "Unable to retrieve routing information"
# The driver fills in GQLSTATUS 50N42 with this description when the server sent none (Bolt
# before 5.7: Neo4j 4.4 and 5.x before 5.26).
UNKNOWN_GQL_STATUS = "50N42"
UNKNOWN_GQL_DESCRIPTION = "error: general processing exception - unexpected error"
PHRASES = (HANDSHAKE_HUNG_UP, HANDSHAKE_UNANSWERED, LOOKS_LIKE_HTTP, NO_ROUTING_TABLE,
           UNKNOWN_GQL_DESCRIPTION)


class Cause:
    """Why a driver call failed, for one message line and the event's fields."""

    __slots__ = ("driver_message", "error_class", "fields", "hint", "text")

    def __init__(self, error_class: str, text: str, driver_message: str,
                 fields: dict[str, Any] | None = None, hint: str | None = None) -> None:
        self.error_class = error_class
        self.text = text
        """The cause in the tool's own words (a server's message as it is)."""
        self.hint = hint
        """What to try, when the cause suggests it."""
        self.driver_message = driver_message
        """The driver's full text, on one line."""
        self.fields: dict[str, Any] = fields or {}
        """The server's codes: `code`, `gql_status`, `gql_status_description`."""

    @property
    def server(self) -> bool:
        """The server answered (a status code), rather than the network failing."""
        return "code" in self.fields


def one_line(text: str) -> str:
    """Text on one line, control characters escaped (messages may quote a URI's query)."""
    joined = ""
    for line in (" ".join(line.split()) for line in text.splitlines() if line.strip()):
        # a line ending in ':' introduces the next one; other lines are separate statements
        joined += line if not joined else (" " if joined.endswith(":") else "; ") + line
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in joined)


def chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, then what caused it, down to the first root (into a group's first member)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup) and current.exceptions:
            current = current.exceptions[0]
        elif current.__cause__ is not None:
            current = current.__cause__
        elif not current.__suppress_context__:
            current = current.__context__
        else:
            current = None


def driver_text(exc: BaseException) -> str:
    """Every distinct text along the chain, joined on one line."""
    parts: list[str] = []
    for link in chain(exc):
        text = one_line(str(link) or type(link).__name__)
        if not any(text in part for part in parts):
            parts.append(text)
    return "; ".join(parts)


def server_codes(exc: nx.Neo4jError) -> dict[str, Any]:
    """The legacy Neo.* code, and the GQLSTATUS code and description when the server sent
    them (not the driver's stand-in)."""
    fields: dict[str, Any] = {"code": exc.code}
    status, description = exc.gql_status, exc.gql_status_description
    stand_in = status == UNKNOWN_GQL_STATUS and description in (
        UNKNOWN_GQL_DESCRIPTION, f"{UNKNOWN_GQL_DESCRIPTION}. {exc.message}")
    if status and not stand_in:
        fields["gql_status"] = status
        fields["gql_status_description"] = one_line(description)
    return fields


def explain(exc: BaseException, *, timeout: float) -> Cause:
    """The plain cause of a failed driver call; `timeout` is the --timeout it ran under."""
    links = list(chain(exc))
    full = driver_text(exc)
    server = next((link for link in links if isinstance(link, nx.Neo4jError)), None)
    if server is not None:
        return Cause(errors.server_error_class(server.code), one_line(server.message or full),
                     full, server_codes(server))
    error_class, text, *hint = _transport(links, timeout)
    return Cause(error_class, text, full, hint=hint[0] if hint else None)


PLAIN_HINT = "if the server does not use TLS, use bolt:// or neo4j://"
TLS_HINT = "if the server requires TLS, use bolt+s:// or neo4j+s://"
CA_HINT = "trust its CA with --trusted-ca, or skip the check with a +ssc URI"
# OpenSSL's verify results that mean "signed by a CA not trusted here".
_UNTRUSTED = frozenset({18, 19, 20, 21})


def _transport(links: list[BaseException], timeout: float) -> tuple[str, ...]:
    said = " ".join(str(link) for link in links)
    ssl = sys.modules.get("ssl")
    for link in reversed(links):  # the root cause first
        if ssl is not None and isinstance(link, ssl.SSLCertVerificationError):
            reason = link.verify_message or "verification failed"
            hint = (CA_HINT if link.verify_code in _UNTRUSTED else
                    "connect by a host name the certificate names" if "ostname" in reason
                    else None)
            return (errors.TLS, f"the server's TLS certificate is not trusted ({reason})",
                    *([hint] if hint else []))
        if ssl is not None and isinstance(link, ssl.SSLError):
            # A plain server hangs up on the TLS hello: an EOF, or (OpenSSL 3.5, the portable
            # binary's) a zero return.
            if isinstance(link, ssl.SSLEOFError | ssl.SSLZeroReturnError) or (
                    "EOF" in (link.reason or "")):
                return errors.TLS, "the TLS handshake failed: the server hung up", PLAIN_HINT
            if link.reason == "WRONG_VERSION_NUMBER":
                return (errors.TLS, "the TLS handshake failed: the server does not answer in "
                        "TLS", PLAIN_HINT)
            reason = link.reason.replace("_", " ").lower() if link.reason else one_line(
                link.strerror or str(link))
            return errors.TLS, f"the TLS handshake failed ({reason})"
        if isinstance(link, socket.gaierror):
            if link.errno == socket.EAI_AGAIN:
                return errors.UNREACHABLE, "the host name cannot be looked up now (DNS failure)"
            if link.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", None)):
                return errors.UNREACHABLE, "the host name does not resolve"
            return errors.UNREACHABLE, f"the host name does not resolve ({link.strerror})"
        if isinstance(link, ConnectionRefusedError):
            return errors.UNREACHABLE, "connection refused"
        if isinstance(link, TimeoutError | socket.timeout):
            if HANDSHAKE_UNANSWERED in said:
                return errors.TIMEOUT, (f"no answer to the Bolt handshake within {timeout:g} s "
                                        "(--timeout)")
            return errors.TIMEOUT, f"no answer within {timeout:g} s (--timeout)"
        if isinstance(link, ConnectionResetError):
            return errors.UNREACHABLE, "the server reset the connection"
        if isinstance(link, OSError) and link.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return errors.UNREACHABLE, (link.strerror or "no route to host").lower()
    if HANDSHAKE_HUNG_UP in said:
        return errors.UNREACHABLE, "the server hung up during the Bolt handshake", TLS_HINT
    if LOOKS_LIKE_HTTP in said:
        return errors.UNREACHABLE, "this port speaks HTTP, not Bolt (Bolt's port is 7687)"
    first = links[0]
    if isinstance(first, nx.UnsupportedServerProduct):
        return errors.UNSUPPORTED_SERVER, "the server is not Neo4j"
    if isinstance(first, nx.ConnectionAcquisitionTimeoutError):
        return errors.TIMEOUT, f"no connection within {timeout:g} s (--timeout)"
    if isinstance(first, nx.SessionExpired):
        return errors.CONNECTION_LOST, "the connection to the server broke"
    if NO_ROUTING_TABLE in said or isinstance(
            first, nx.RoutingServiceUnavailable | nx.WriteServiceUnavailable):
        return errors.ROUTING, ("no routing table from the server; bolt:// talks to one "
                                "server without routing")
    return errors.UNREACHABLE, driver_text(first)
