"""Flags over environment over defaults; secrets from one source only; URIs validated."""

from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

from neo4j_schema_rollback.errors import UsageError
from neo4j_schema_rollback.settings import (
    ConnectionOptions,
    ConnectionSettings,
    parse_duration,
    redact,
    resolve,
)


def no_prompt(_: str) -> str:
    raise AssertionError("prompted")


def settle(options: ConnectionOptions | None = None, env: dict[str, str] | None = None,
           interactive: bool = False, prompt=no_prompt) -> ConnectionSettings:  # type: ignore[no-untyped-def]
    return resolve(options or ConnectionOptions(), env or {}, interactive=interactive,
                   prompt=prompt)


def test_defaults() -> None:
    """With only a password, the documented defaults apply."""
    s = settle(env={"NEO4J_PASSWORD": "pw"})
    assert (s.redacted_uri, s.username, s.password, s.database, s.wait, s.timeout) == (
        "neo4j://localhost:7687", "neo4j", "pw", None, 0.0, 30.0)


def test_flags_beat_environment() -> None:
    """Each flag overrides its environment variable."""
    env = {"NEO4J_URI": "bolt://envhost:1", "NEO4J_USERNAME": "envuser",
           "NEO4J_PASSWORD": "envpw", "NEO4J_DATABASE": "envdb", "NEO4J_WAIT": "5",
           "NEO4J_TIMEOUT": "9"}
    s = settle(ConnectionOptions(uri="bolt://flaghost:2", username="flaguser",
                                 password="flagpw", database="flagdb", wait="1",
                                 timeout="2s"), env)
    assert (s.redacted_uri, s.username, s.password, s.database, s.wait, s.timeout) == (
        "bolt://flaghost:2", "flaguser", "flagpw", "flagdb", 1.0, 2.0)
    s = settle(env=env)
    assert (s.redacted_uri, s.username, s.password, s.database, s.wait, s.timeout) == (
        "bolt://envhost:1", "envuser", "envpw", "envdb", 5.0, 9.0)


def test_password_flag_warns() -> None:
    """--password works but warns that it is visible in the process list."""
    s = settle(ConnectionOptions(password="pw"))
    assert s.warnings == ("--password is visible in the process list; prefer NEO4J_PASSWORD "
                          "or --password-file",)


def test_neo4j_user_is_accepted() -> None:
    """NEO4J_USER works like NEO4J_USERNAME; two different values are an error."""
    assert settle(env={"NEO4J_USER": "u", "NEO4J_PASSWORD": "p"}).username == "u"
    with pytest.raises(UsageError, match="disagree"):
        settle(env={"NEO4J_USER": "u", "NEO4J_USERNAME": "v", "NEO4J_PASSWORD": "p"})


def test_neo4j_auth_forms() -> None:
    """NEO4J_AUTH takes user/password, or none for no authentication."""
    s = settle(env={"NEO4J_AUTH": "admin/s3cr/et"})
    assert (s.username, s.password) == ("admin", "s3cr/et")
    s = settle(env={"NEO4J_AUTH": "none"})
    assert (s.username, s.password) == (None, None)
    with pytest.raises(UsageError, match="NEO4J_AUTH must be"):
        settle(env={"NEO4J_AUTH": "justuser"})


def test_password_file(tmp_path: Path) -> None:
    """One trailing newline is stripped; missing, empty and unreadable files are errors."""
    f = tmp_path / "pw"
    f.write_text("secret value\n\n")
    assert settle(ConnectionOptions(password_file=str(f))).password == "secret value\n"
    with pytest.raises(UsageError, match="does not exist"):
        settle(ConnectionOptions(password_file=str(tmp_path / "nope")))
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(UsageError, match="is empty"):
        settle(env={"NEO4J_PASSWORD_FILE": str(tmp_path / "empty")})
    with pytest.raises(UsageError, match="cannot read"):
        settle(ConnectionOptions(password_file=str(tmp_path)))


@pytest.mark.parametrize(("options", "env", "names"), [
    (ConnectionOptions(), {"NEO4J_PASSWORD": "a", "NEO4J_AUTH": "neo4j/b"},
     "NEO4J_PASSWORD and NEO4J_AUTH"),
    (ConnectionOptions(password="a", uri="bolt://u:b@h"), {}, "--password and --uri"),
    (ConnectionOptions(), {"NEO4J_URI": "bolt://u:b@h", "NEO4J_PASSWORD": "a"},
     "NEO4J_PASSWORD and NEO4J_URI"),
])
def test_two_password_sources_at_one_level_conflict(options: ConnectionOptions,
                                                    env: dict[str, str], names: str) -> None:
    """Two sources of the password at the same level are a usage error, not a silent pick."""
    with pytest.raises(UsageError, match=f"the password is given twice: {names}"):
        settle(options, env)


def test_password_sources_conflict_with_file(tmp_path: Path) -> None:
    """NEO4J_PASSWORD and NEO4J_PASSWORD_FILE together are a usage error."""
    f = tmp_path / "pw"
    f.write_text("x")
    with pytest.raises(UsageError, match="NEO4J_PASSWORD and NEO4J_PASSWORD_FILE"):
        settle(env={"NEO4J_PASSWORD": "a", "NEO4J_PASSWORD_FILE": str(f)})


def test_flag_level_password_beats_environment() -> None:
    """A flag password wins over an environment password without a conflict."""
    assert settle(ConnectionOptions(password="flag"), {"NEO4J_PASSWORD": "env"}).password == (
        "flag")


def test_uri_credentials_are_used_and_removed() -> None:
    """user:password@ in the URI is used for login and never kept in the URI."""
    s = settle(ConnectionOptions(uri="bolt://alice:p%40ss@db.example:7687"))
    assert (s.username, s.password, s.redacted_uri) == ("alice", "p@ss", "bolt://db.example:7687")
    assert "p@ss" not in repr(s)


def test_missing_password_when_not_interactive() -> None:
    """No password and no terminal is a usage error that names where to put one."""
    with pytest.raises(UsageError, match="no password for user neo4j at neo4j://localhost:7687"):
        settle()


def test_missing_password_prompts_on_a_terminal() -> None:
    """On a terminal the password is asked for."""
    s = settle(interactive=True, prompt=lambda q: "typed")
    assert s.password == "typed"


@pytest.mark.parametrize(("uri", "message"), [
    ("http://h:7687", "unknown scheme 'http'"),
    ("localhost:7687", "unknown scheme"),
    ("bolt://", "no host"),
    ("bolt://h:notaport", "invalid URI"),
    ("bolt://h:70000", "invalid URI"),
    ("bolt://h:7687/db", "unexpected path"),
])
def test_bad_uris(uri: str, message: str) -> None:
    """Unknown scheme, missing host and bad port are one-line usage errors."""
    with pytest.raises(UsageError, match=message):
        settle(ConnectionOptions(uri=uri, password="x"))


def test_bad_uri_message_hides_credentials() -> None:
    """Even a rejected URI never echoes its password."""
    with pytest.raises(UsageError) as info:
        settle(ConnectionOptions(uri="http://u:hunter2@h", password="x"))
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize("scheme", ["bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s",
                                    "neo4j+ssc"])
def test_all_schemes_accepted(scheme: str) -> None:
    """Every Bolt scheme is accepted."""
    assert settle(ConnectionOptions(uri=f"{scheme}://h:1", password="x")).target.scheme == scheme


def test_trusted_ca(tmp_path: Path) -> None:
    """--trusted-ca needs a +s URI and a readable file; the driver gets the plain scheme."""
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    s = settle(ConnectionOptions(uri="bolt+s://h:1", password="x", trusted_ca=str(ca)))
    assert (s.trust.ca_file, s.driver_uri, s.redacted_uri) == (str(ca), "bolt://h:1",
                                                              "bolt+s://h:1")
    with pytest.raises(UsageError, match="needs an encrypted URI"):
        settle(ConnectionOptions(uri="bolt://h:1", password="x", trusted_ca=str(ca)))
    with pytest.raises(UsageError, match=r"\+ssc"):
        settle(ConnectionOptions(uri="neo4j+ssc://h:1", password="x", trusted_ca=str(ca)))
    with pytest.raises(UsageError, match="does not exist"):
        settle(ConnectionOptions(uri="bolt+s://h:1", password="x", trusted_ca="/nope.pem"))


def test_ssl_cert_file_is_honoured() -> None:
    """With a +s URI, SSL_CERT_FILE names the trust store."""
    s = settle(env={"NEO4J_URI": "neo4j+s://h", "NEO4J_PASSWORD": "x",
                    "SSL_CERT_FILE": "/etc/custom.pem"})
    assert s.trust.ca_file == "/etc/custom.pem"


ACCEPTED = [("30", 30.0), ("2.5", 2.5), ("10s", 10.0), ("0", 0.0), ("30s", 30.0),
            ("2m", 120.0), ("1m30s", 90.0), ("1h", 3600.0), ("2.5m", 150.0), (" 30S ", 30.0),
            ("1e3", 1000.0)]
REFUSED = ["-1", "-1s", "abc", "infs", "nanm", "nan", "inf", "1e309", "", "s", "m30s", "30s2m",
           "1:30", "30 s", "-0.5m", "1d"]


@pytest.mark.parametrize(("text", "value"), ACCEPTED)
def test_parse_duration(text: str, value: float) -> None:
    """Durations are seconds, or numbers with units h, m, s in that order."""
    assert parse_duration(text, "--wait") == value


@pytest.mark.parametrize("text", REFUSED)
def test_parse_duration_rejects(text: str) -> None:
    """Negative, non-numeric, infinite and otherwise spelt durations are usage errors."""
    with pytest.raises(UsageError, match="--wait"):
        parse_duration(text, "--wait")


@pytest.mark.parametrize("text", ["inf", "-inf", "nan", "Infinity", "1e309"])
def test_wait_and_timeout_must_be_finite(text: str) -> None:
    """--wait, --timeout and their variables refuse infinite and NaN durations."""
    for options, env, name in [
        (ConnectionOptions(password="x", wait=text), {}, "--wait"),
        (ConnectionOptions(password="x", timeout=text), {}, "--timeout"),
        (ConnectionOptions(password="x"), {"NEO4J_WAIT": text}, "NEO4J_WAIT"),
        (ConnectionOptions(password="x"), {"NEO4J_TIMEOUT": text}, "NEO4J_TIMEOUT"),
    ]:
        with pytest.raises(UsageError, match=f"{name}: '{text}' must be a finite number"):
            settle(options, env)


def test_zero_timeout_is_rejected() -> None:
    """--timeout 0 would fail every statement: refuse it up front."""
    with pytest.raises(UsageError, match="--timeout must be more than 0"):
        settle(ConnectionOptions(password="x", timeout="0"))


@pytest.mark.parametrize(("uri", "clean"), [
    ("bolt://u:p@h:1", "bolt://h:1"),
    ("neo4j://h", "neo4j://h"),
    ("u:p@h", "h"),
    ("bolt://u:p@x@h", "bolt://h"),
])
def test_redact(uri: str, clean: str) -> None:
    """redact removes credentials from well-formed and malformed URIs."""
    assert redact(uri) == clean


def test_host_ca_bundle_is_found_when_the_built_in_default_is_missing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A frozen binary whose OpenSSL default points nowhere uses the host's own bundle, found
    at the first known distribution path that exists (here: a RHEL-style layout)."""
    import ssl

    from neo4j_schema_rollback import settings

    missing = ssl.DefaultVerifyPaths(None, None, None, None, None, None)  # type: ignore[call-arg]
    monkeypatch.setattr(ssl, "get_default_verify_paths", lambda: missing)
    rhel = tmp_path / "pki" / "tls-ca-bundle.pem"
    rhel.parent.mkdir()
    rhel.write_text("x")
    monkeypatch.setattr(settings, "CA_BUNDLES", (str(tmp_path / "debian.crt"), str(rhel)))
    assert settings.find_ca_bundle({}) == str(rhel)
    assert settings.find_ca_bundle({"SSL_CERT_FILE": "/custom.pem"}) == "/custom.pem"
    s = settle(env={"NEO4J_URI": "neo4j+s://db:7687", "NEO4J_PASSWORD": "x"})
    assert (s.trust.ca_file, s.driver_uri) == (str(rhel), "neo4j://db:7687")


def test_built_in_default_is_kept_when_it_exists(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where OpenSSL's own default exists, the driver's usual trust store is used."""
    import ssl

    from neo4j_schema_rollback import settings

    present = ssl.DefaultVerifyPaths(  # type: ignore[call-arg]
        "/etc/ssl/certs/ca-certificates.crt", None, None, None, None, None)
    monkeypatch.setattr(ssl, "get_default_verify_paths", lambda: present)
    assert settings.find_ca_bundle({}) is None


@pytest.mark.parametrize("uri", [
    "neo4j://neo4j:pa/ss@127.0.0.1:1",
    "neo4j://neo4j:1234/secret@127.0.0.1",
    "bolt://neo4j:1?secret@127.0.0.1",
    "bolt://neo4j:se#cret@127.0.0.1",
])
def test_a_password_that_breaks_the_uri_is_never_echoed(uri: str) -> None:
    """Parser details are left out when the URI carries credentials: they could hold part of
    the password ('/', '?', '#' split it in the wrong place)."""
    with pytest.raises(UsageError) as info:
        settle(ConnectionOptions(uri=uri))
    text = info.value.one_line()
    for piece in ("secret", "cret", "pa/ss", "1234"):
        assert piece not in text, text
    assert "percent-encode" in text


@pytest.mark.parametrize("uri", ["bolt://h:1?x=y", "bolt+s://h?a=b", "neo4j://h#frag"])
def test_bolt_uris_take_no_query(uri: str) -> None:
    """A query on bolt:// (or any fragment) is a usage error, not a driver crash later."""
    with pytest.raises(UsageError, match="unexpected query or fragment"):
        settle(ConnectionOptions(uri=uri, password="x"))


def test_neo4j_routing_context_query_is_kept() -> None:
    """neo4j:// keeps its routing-context query."""
    s = settle(ConnectionOptions(uri="neo4j://h:7687?policy=eu", password="x"))
    assert s.redacted_uri == "neo4j://h:7687?policy=eu"


def test_credentials_and_a_routing_query_together() -> None:
    """Percent-encoded credentials work beside a routing query; the target shows neither the
    user nor any piece of the password."""
    password = "p@ss/w?rd#1"
    s = settle(ConnectionOptions(uri=f"neo4j://alice:{quote(password, safe='')}@db:7687"
                                     "?policy=eu"))
    assert (s.username, s.password) == ("alice", password)
    assert s.redacted_uri == s.driver_uri == "neo4j://db:7687?policy=eu"
    assert "alice" not in s.redacted_uri
    for piece in ("p@ss", "ss/w", "w?rd", "rd#1", "%40", "%2F"):
        assert piece not in s.redacted_uri + repr(s)


@pytest.mark.parametrize(("query", "shown"), [
    ("policy=eu", "policy=eu"),
    ("policy=alice:s3cret%40evil", "policy=alice%3As3cret%40evil"),
    ("policy=a/b:c?d", "policy=a%2Fb%3Ac%3Fd"),
    ("policy=a\x1b[2Jb c", "policy=a%1B%5B2Jb%20c"),
    ("policy=\u2713&region=x+y", "policy=%E2%9C%93&region=x+y"),
])
def test_routing_query_is_printed_percent_encoded(query: str, shown: str) -> None:
    """The printed target percent-encodes the query, so no value can pass for a
    user:password@ part or a terminal control sequence; the driver gets it as written."""
    s = settle(ConnectionOptions(uri=f"neo4j://h:7687?{query}", password="x"))
    assert s.redacted_uri == f"neo4j://h:7687?{shown}"
    parts = urlsplit(s.redacted_uri)
    assert (parts.username, parts.password, parts.hostname) == (None, None, "h")
    assert s.driver_uri == f"neo4j://h:7687?{query}"


@pytest.mark.parametrize("uri", [
    "neo4j://h:7687?policy=a@b",
    "neo4j://alice:s3cret@h:7687?policy=a@b",
    "neo4j://alice:1234?s3cret@h:7687",
    "neo4j://alice:p@zz?w/qx@h:7687?policy=eu",
    "neo4j+s://alice:p@zz/w?qx#1@h:7687?policy=eu",
])
def test_an_at_sign_after_the_host_is_refused(uri: str) -> None:
    """An '@' in the query makes the end of the credentials ambiguous (a password with a bare
    '?' lands there): refused, without echoing anything that may be part of the password."""
    with pytest.raises(UsageError) as info:
        settle(ConnectionOptions(uri=uri))
    text = info.value.one_line()
    assert "percent-encode" in text
    for piece in ("alice", "s3cret", "1234", "zz", "qx", "policy=a"):
        assert piece not in text, text
    if "'@' after the host" in text:
        # Not even a host: what follows the last '@' may be a piece of the query.
        assert text.startswith(f"invalid URI '{uri.split('://')[0]}://…': "), text
