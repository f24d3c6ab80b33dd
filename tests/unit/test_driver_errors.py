"""Driver exceptions in plain words: each kind of failure gets its error class and a short
cause, the driver's full text is kept, and the server's GQLSTATUS only when it sent one.

The classes the test bed can provoke are proved on the real servers (tests/integration); these
cover the rest with the driver's own exception types, built as the driver builds them."""

from __future__ import annotations

import re
import socket
import ssl
from pathlib import Path

import neo4j
import pytest
from neo4j import exceptions as nx

from neo4j_schema_rollback import driver_errors, errors
from neo4j_schema_rollback.driver_errors import explain, one_line


def caused(outer: BaseException, *inner: BaseException) -> BaseException:
    """`outer` raised from `inner[0]`, raised from `inner[1]`..., as the driver chains them."""
    current = outer
    for link in inner:
        current.__cause__ = link
        current = link
    return outer


def server_error(code: str, message: str, gql: tuple[str, str] | None = None) -> nx.Neo4jError:
    """A server failure as the driver hydrates it: over Bolt 5.7+ (gql given) or before."""
    if gql is None:
        return nx.Neo4jError._hydrate_neo4j(code=code, message=message)
    return nx.Neo4jError._hydrate_gql(neo4j_code=code, message=message, gql_status=gql[0],
                                      description=gql[1])


def test_every_driver_phrase_is_still_in_the_driver() -> None:
    """The texts matched where the driver has no exception type are in its installed source."""
    source = "".join(path.read_text() for path in
                     Path(neo4j.__file__).parent.rglob("*.py"))
    source = re.sub(r'"\s*\n\s*f?"', "", source)  # literals continued on the next line
    for phrase in driver_errors.PHRASES:
        assert phrase in source, phrase


def test_refused_through_routing_names_the_root_cause() -> None:
    """neo4j:// wraps the refusal in a group; the cause is still `connection refused`."""
    leaf = caused(nx.ServiceUnavailable("Couldn't connect to h:1"),
                  nx.ServiceUnavailable("Failed to establish connection"),
                  ConnectionRefusedError(111, "Connection refused"))
    exc = caused(nx.ServiceUnavailable(driver_errors.NO_ROUTING_TABLE),
                 ExceptionGroup("All routing table requests failed", [leaf]))  # type: ignore[list-item]
    cause = explain(exc, timeout=30)
    assert (cause.error_class, cause.text, cause.hint) == (
        errors.UNREACHABLE, "connection refused", None)
    assert cause.driver_message == (
        "Unable to retrieve routing information; All routing table requests failed (1 "
        "sub-exception); Couldn't connect to h:1; Failed to establish connection; "
        "[Errno 111] Connection refused")
    assert cause.fields == {}


def test_routing_without_a_deeper_cause_is_routing() -> None:
    """No routing table and nothing under it: class routing."""
    cause = explain(nx.ServiceUnavailable(driver_errors.NO_ROUTING_TABLE), timeout=30)
    assert cause.error_class == errors.ROUTING
    assert cause.text.startswith("no routing table from the server")


@pytest.mark.parametrize(("code", "text"), [
    (socket.EAI_NONAME, "the host name does not resolve"),
    (socket.EAI_AGAIN, "the host name cannot be looked up now (DNS failure)"),
])
def test_names_that_do_not_resolve(code: int, text: str) -> None:
    """A failed name lookup is unreachable, permanent or temporary."""
    exc = caused(nx.ServiceUnavailable("Failed to DNS resolve address"),
                 socket.gaierror(code, "whatever"))
    assert (explain(exc, timeout=30).error_class, explain(exc, timeout=30).text) == (
        errors.UNREACHABLE, text)


def verification_error(code: int, message: str) -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, f"certificate verify failed: {message}")
    exc.verify_code, exc.verify_message = code, message
    return exc


@pytest.mark.parametrize(("code", "message", "hint"), [
    (20, "unable to get local issuer certificate", driver_errors.CA_HINT),
    (62, "Hostname mismatch, certificate is not valid for 'db'.",
     "connect by a host name the certificate names"),
    (10, "certificate has expired", None),
])
def test_certificate_failures_are_tls(code: int, message: str, hint: str | None) -> None:
    """An untrusted, misnamed or expired certificate: class tls, the reason, what to try."""
    cause = explain(caused(nx.ServiceUnavailable("Couldn't connect"),
                           verification_error(code, message)), timeout=30)
    assert (cause.error_class, cause.text, cause.hint) == (
        errors.TLS, f"the server's TLS certificate is not trusted ({message})", hint)


@pytest.mark.parametrize("eof", [
    ssl.SSLEOFError(8, "EOF occurred in violation of protocol"),
    ssl.SSLZeroReturnError(6, "TLS/SSL connection has been closed (EOF) (_ssl.c:992)"),
], ids=["eof", "zero-return"])
def test_a_plain_server_answering_tls_is_tls(eof: ssl.SSLError) -> None:
    """The server hangs up on a TLS hello (an EOF, or with OpenSSL 3.5 a zero return): class
    tls, with the plain-scheme hint."""
    cause = explain(caused(nx.ServiceUnavailable("Couldn't connect"), eof), timeout=30)
    assert (cause.error_class, cause.text, cause.hint) == (
        errors.TLS, "the TLS handshake failed: the server hung up", driver_errors.PLAIN_HINT)


@pytest.mark.parametrize(("said", "error_class", "text"), [
    (f"Failed to read {driver_errors.HANDSHAKE_UNANSWERED} from server", errors.TIMEOUT,
     "no answer to the Bolt handshake within 2 s (--timeout)"),
    ("Failed to establish connection (timed out)", errors.TIMEOUT,
     "no answer within 2 s (--timeout)"),
])
def test_timeouts(said: str, error_class: str, text: str) -> None:
    """A silent port, at the handshake or at TCP connect, is a timeout of --timeout."""
    cause = explain(caused(nx.ServiceUnavailable(said), TimeoutError("timed out")), timeout=2)
    assert (cause.error_class, cause.text) == (error_class, text)


def test_a_port_that_speaks_http() -> None:
    """Bolt to an HTTP port says so."""
    cause = explain(nx.ServiceUnavailable(f"Cannot connect {driver_errors.LOOKS_LIKE_HTTP}"),
                    timeout=30)
    assert (cause.error_class, cause.text) == (
        errors.UNREACHABLE, "this port speaks HTTP, not Bolt (Bolt's port is 7687)")


def test_a_session_that_expired_is_a_lost_connection() -> None:
    """SessionExpired mid-run: class connection_lost."""
    assert explain(nx.SessionExpired("gone"), timeout=30).error_class == errors.CONNECTION_LOST


@pytest.mark.parametrize(("code", "error_class"), [
    ("Neo.ClientError.Security.Unauthorized", errors.AUTH),
    ("Neo.ClientError.Security.Forbidden", errors.FORBIDDEN),
    ("Neo.ClientError.Database.DatabaseNotFound", errors.DATABASE_NOT_FOUND),
    ("Neo.TransientError.General.DatabaseUnavailable", errors.DATABASE_UNAVAILABLE),
    ("Neo.ClientError.Cluster.NotALeader", errors.ROUTING),
    ("Neo.ClientError.Schema.ConstraintWithNameAlreadyExists", errors.DEFINITION_CONFLICT),
    ("Neo.DatabaseError.Schema.ConstraintCreationFailed", errors.DATA_CONFLICT),
    ("Neo.ClientError.Transaction.TransactionTimedOutClientConfiguration", errors.TIMEOUT),
    ("Neo.ClientError.Statement.SyntaxError", errors.SERVER_ERROR),
    ("Neo.DatabaseError.Schema.IndexDropFailed", errors.SERVER_ERROR),
])
def test_server_codes_decide_the_class(code: str, error_class: str) -> None:
    """The server's Neo.* code decides the class of what it refused; the rest: server_error."""
    cause = explain(server_error(code, "said so"), timeout=30)
    assert (cause.error_class, cause.text, cause.fields["code"]) == (error_class, "said so", code)


def test_gql_status_only_when_the_server_sent_it() -> None:
    """Before Bolt 5.7 (4.4) the driver's stand-in 50N42 is left out; a real one is kept."""
    old = explain(server_error("Neo.ClientError.Statement.SyntaxError", "bad"), timeout=30)
    assert old.fields == {"code": "Neo.ClientError.Statement.SyntaxError"}
    new = explain(server_error("Neo.ClientError.Statement.SyntaxError", "bad",
                               ("42001", "error: syntax error or access rule violation")),
                  timeout=30)
    assert new.fields == {"code": "Neo.ClientError.Statement.SyntaxError",
                          "gql_status": "42001",
                          "gql_status_description": "error: syntax error or access rule "
                                                    "violation"}


def test_one_line_joins_lines_and_escapes_control_characters() -> None:
    """Lines become one; a line ending in ':' runs on; control characters are escaped."""
    assert one_line("Unable to create X:\n  Both nodes\nsecond\x1b[31m") == (
        "Unable to create X: Both nodes; second\\x1b[31m")


@pytest.mark.parametrize(("failure", "error_class"), [
    (errors.UsageError("bad"), errors.USAGE),
    (errors.ConnectionFailed("down"), errors.UNREACHABLE),
    (errors.ServerTooOld("4.3"), errors.UNSUPPORTED_SERVER),
    (errors.StatementFailed("no"), errors.SERVER_ERROR),
    (errors.StatementFailed("no", error_class=errors.INDEX_FAILED), errors.INDEX_FAILED),
    (errors.Interrupted("SIGTERM"), errors.INTERRUPTED),
    (KeyboardInterrupt(), errors.INTERRUPTED),
    (ValueError("oops"), errors.BUG),
])
def test_every_failure_has_a_class(failure: BaseException, error_class: str) -> None:
    """A ToolError's own class, interrupted for Ctrl-C, bug for anything else."""
    assert errors.class_of(failure) == error_class
