"""TLS against a real server that requires it: private CA, SSL_CERT_FILE, +ssc, and failures."""

from __future__ import annotations

from typing import Any

import pytest
from tool import Result, Tool


def tls_env(server: Any, uri: str | None = None) -> dict[str, str]:
    return {"NEO4J_URI": uri or server.uri, "NEO4J_USERNAME": server.username,
            "NEO4J_PASSWORD": server.password}


def plain(server: Any, scheme: str) -> str:
    return f"{scheme}://127.0.0.1:{server.port}"


def test_private_ca_with_trusted_ca_flag(tool: Tool, neo4j_tls_server: Any) -> None:
    """bolt+s with --trusted-ca verifies the server against the private CA."""
    r = tool.run("status", "--trusted-ca", str(neo4j_tls_server.ca_cert),
                 env=tls_env(neo4j_tls_server), secrets=(neo4j_tls_server.password,))
    assert r.code == 0, r.stdout + r.stderr
    assert r.of("run.start")[0]["target"] == neo4j_tls_server.uri


@pytest.mark.parametrize("variable", ["NEO4J_TRUSTED_CA", "SSL_CERT_FILE"])
def test_private_ca_from_environment(tool: Tool, neo4j_tls_server: Any, variable: str) -> None:
    """NEO4J_TRUSTED_CA, or SSL_CERT_FILE naming the trust store, verifies the server."""
    env = {**tls_env(neo4j_tls_server), variable: str(neo4j_tls_server.ca_cert)}
    r = tool.run("status", env=env, secrets=(neo4j_tls_server.password,))
    assert r.code == 0, r.stdout + r.stderr


@pytest.mark.parametrize("scheme", ["bolt+ssc", "neo4j+ssc"])
def test_self_signed_scheme_accepts_any_certificate(tool: Tool, neo4j_tls_server: Any,
                                                    scheme: str) -> None:
    """+ssc encrypts without verifying the certificate."""
    r = tool.run("status", env=tls_env(neo4j_tls_server, plain(neo4j_tls_server, scheme)),
                 secrets=(neo4j_tls_server.password,))
    assert r.code == 0, r.stdout + r.stderr


PROG = "neo4j-schema-rollback: error: "


def failed_with(r: Result, message: str, error_class: str) -> dict[str, Any]:
    """Exit 3 with exactly this line on stderr and in the error event, of this class."""
    assert r.code == 3
    [error] = r.of("error")
    assert (error["message"], r.stderr) == (message, PROG + message + "\n")
    assert error["error_class"] == error_class
    assert "code" not in error
    return error


@pytest.mark.parametrize("scheme", ["bolt+s", "neo4j+s"])
def test_unknown_ca_is_refused(tool: Tool, neo4j_tls_server: Any, scheme: str) -> None:
    """+s against a certificate no trusted CA signed: exit 3, one line saying the certificate
    is not trusted and what to do (through neo4j:// routing too), class tls."""
    uri = plain(neo4j_tls_server, scheme)
    r = tool.run("status", env={**tls_env(neo4j_tls_server, uri),
                                "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt"},
                 secrets=(neo4j_tls_server.password,))
    error = failed_with(r, f"cannot connect to 127.0.0.1:{neo4j_tls_server.port} ({uri}): the "
                        "server's TLS certificate is not trusted (unable to get local issuer "
                        "certificate) — trust its CA with --trusted-ca, or skip the check with a "
                        "+ssc URI", "tls")
    assert "CERTIFICATE_VERIFY_FAILED" in error["driver_message"]


@pytest.mark.parametrize("scheme", ["bolt", "neo4j"])
def test_plain_bolt_against_a_tls_only_server_exits_3(tool: Tool, neo4j_tls_server: Any,
                                                      scheme: str) -> None:
    """An unencrypted URI against a server that requires TLS: the server hangs up during the
    Bolt handshake, and the line says to use +s."""
    uri = plain(neo4j_tls_server, scheme)
    r = tool.run("status", env=tls_env(neo4j_tls_server, uri),
                 secrets=(neo4j_tls_server.password,))
    failed_with(r, f"cannot connect to 127.0.0.1:{neo4j_tls_server.port} ({uri}): the server "
                "hung up during the Bolt handshake — if the server requires TLS, use bolt+s:// or "
                "neo4j+s://", "unreachable")


@pytest.mark.parametrize("scheme", ["bolt+s", "bolt+ssc", "neo4j+s"])
def test_tls_against_a_plain_server_exits_3(tool: Tool, neo4j_server: Any, scheme: str) -> None:
    """An encrypted URI against a server without TLS: the TLS handshake fails, class tls, and
    the line says to use the plain scheme."""
    uri = plain(neo4j_server, scheme)
    r = tool.run("status", env=tls_env(neo4j_server, uri), secrets=(neo4j_server.password,))
    error = failed_with(r, f"cannot connect to 127.0.0.1:{neo4j_server.port} ({uri}): the TLS "
                        "handshake failed: the server hung up — if the server does not use TLS, "
                        "use bolt:// or neo4j://", "tls")
    # OpenSSL 3.0 (the host's Python) ends the handshake with an EOF, 3.5 (the binary's) with a
    # zero return
    assert "[SSLEOFError]" in error["driver_message"] or (
        "[SSLZeroReturnError]" in error["driver_message"])
