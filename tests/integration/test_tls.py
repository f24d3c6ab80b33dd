"""TLS against a real server that requires it: private CA, SSL_CERT_FILE, +ssc, and failures."""

from __future__ import annotations

from typing import Any

import pytest
from tool import Tool


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


def test_unknown_ca_is_refused(tool: Tool, neo4j_tls_server: Any) -> None:
    """bolt+s against a certificate no trusted CA signed fails with exit 3, naming TLS."""
    r = tool.run("status", env={**tls_env(neo4j_tls_server),
                                "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt"},
                 secrets=(neo4j_tls_server.password,))
    assert r.code == 3
    message = r.of("error")[0]["message"]
    assert "certificate" in message.lower() or "ssl" in message.lower(), message


def test_plain_bolt_against_a_tls_only_server_exits_3(tool: Tool, neo4j_tls_server: Any) -> None:
    """An unencrypted URI against a server that requires TLS is a connection error."""
    r = tool.run("status", env=tls_env(neo4j_tls_server, plain(neo4j_tls_server, "bolt")),
                 secrets=(neo4j_tls_server.password,))
    assert r.code == 3
