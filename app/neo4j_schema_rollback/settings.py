"""Flags + environment + files -> one validated connection settings object, with redaction."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from .errors import UsageError

SCHEMES = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")
DEFAULT_URI = "neo4j://localhost:7687"
DEFAULT_USERNAME = "neo4j"
DEFAULT_TIMEOUT = 30.0
DEFAULT_INDEX_TIMEOUT = 300.0
TERMINATION_LOG = "/dev/termination-log"  # Kubernetes' default terminationMessagePath

# Where distributions keep their CA bundle. A frozen binary's OpenSSL looks where the build
# machine kept it, which need not exist on the host, so the host's own bundle is found here.
CA_BUNDLES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Alpine, Arch
    "/etc/pki/tls/certs/ca-bundle.crt",  # RHEL, Fedora, Amazon Linux
    "/etc/ssl/ca-bundle.pem",  # SUSE
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",  # RHEL 7+
    "/etc/ssl/cert.pem",  # macOS, Alpine, BSDs
)


@dataclass(frozen=True)
class ConnectionOptions:
    """What the command line said; None means 'not given'."""

    uri: str | None = None
    username: str | None = None
    password: str | None = None
    password_file: str | None = None
    database: str | None = None
    trusted_ca: str | None = None
    wait: str | None = None
    timeout: str | None = None


@dataclass(frozen=True)
class Target:
    """A parsed URI without credentials."""

    scheme: str
    host: str
    port: int | None
    query: str = ""

    @property
    def uri(self) -> str:
        return self._join(self.query)

    @property
    def shown(self) -> str:
        """The URI for logs and messages."""
        # Percent-encoded, so no routing value can pass for a user:password@ part or put a
        # control character into a log line.
        return self._join(quote(self.query, safe="=&%+"))

    def _join(self, query: str) -> str:
        netloc = self.host if ":" not in self.host else f"[{self.host}]"
        if self.port is not None:
            netloc += f":{self.port}"
        return urlunsplit((self.scheme, netloc, "", query, ""))

    @property
    def base_scheme(self) -> str:
        return self.scheme.split("+")[0]


@dataclass(frozen=True)
class Trust:
    """How to check the server's certificate: not at all, the URI's way, or against a CA file."""

    ca_file: str | None = None  # set: encrypt and trust only this bundle


@dataclass(frozen=True)
class ConnectionSettings:
    """Everything needed to open a session; `password` never appears in repr or logs."""

    target: Target
    username: str | None
    password: str | None = field(repr=False)
    database: str | None
    trust: Trust
    wait: float
    timeout: float
    warnings: tuple[str, ...] = ()

    @property
    def redacted_uri(self) -> str:
        return self.target.shown

    @property
    def driver_uri(self) -> str:
        # Custom trust needs the plain scheme: the driver refuses +s/+ssc with explicit TLS config.
        if self.trust.ca_file is not None:
            return Target(self.target.base_scheme, self.target.host, self.target.port,
                          self.target.query).uri
        return self.target.uri


def parse_uri(text: str) -> tuple[Target, str | None, str | None]:
    """Split a URI into its target and any credentials it carries."""
    shown = redact(text)
    # A password with '/', '?', '#' or ':' in it splits the URI in the wrong place, so with
    # credentials present no parser detail is echoed: it could hold a piece of the password.
    secret = "@" in text
    hint = ("percent-encode special characters in the password" if secret
            else "use e.g. neo4j://host:7687")

    def bad(detail: str, why: str = hint) -> UsageError:
        return UsageError(f"invalid URI {shown!r}: {detail}", hint=why)

    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError as exc:
        raise bad("bad host or port" if secret else str(exc)) from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise UsageError(f"invalid URI {shown!r}: unknown scheme {scheme or 'none'!r}",
                         hint="use one of " + ", ".join(SCHEMES))
    if not parts.hostname:
        raise bad("no host")
    if parts.path not in ("", "/"):
        raise bad("unexpected path" if secret else f"unexpected path {parts.path!r}")
    if parts.fragment or (parts.query and not scheme.startswith("neo4j")):
        # Only neo4j:// takes a query (its routing context); a bolt:// one is a mistake.
        raise bad("unexpected query or fragment")
    if "@" in parts.query:
        # A password with a bare '?' puts its rest, and the '@', here: which '@' ends the
        # credentials cannot be told, so none of it is trusted or echoed, not even the host.
        raise UsageError(f"invalid URI '{scheme}://…': '@' after the host",
                         hint="percent-encode special characters in the password, and '@' in "
                         "the query as %40")
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    return Target(scheme, parts.hostname, port, parts.query), user, password


def redact(uri: str) -> str:
    """Remove any user:password@ part of a URI, even a malformed one."""
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return uri.split("@")[-1]
    return scheme + sep + rest.rpartition("@")[2]


# 30, 2.5, 1e3 (seconds) or units in the order h, m, s: 30s, 2m, 1m30s, 1h, 2.5m. Compiled on
# first use (re caches it): compiling it at import cost `statements` 0.3% of its instructions.
_DURATION = (r"(?:(?P<h>[0-9]+(?:\.[0-9]+)?)h)?(?:(?P<m>[0-9]+(?:\.[0-9]+)?)m)?"
             r"(?:(?P<s>[0-9]+(?:\.[0-9]+)?)s)?")
DURATION_FORMS = "use seconds (30, 2.5) or units: 30s, 2m, 1m30s"


def parse_duration(text: str, what: str) -> float:
    """Read a duration in seconds: '30', '2.5', '30s', '2m', '1m30s'; anything negative,
    infinite, not a number or otherwise spelt is a usage error naming `what`."""
    raw = text.strip().lower()
    try:
        value = float(raw)  # also reads inf, nan and 1e309, refused below
    except ValueError:
        match = re.fullmatch(_DURATION, raw)
        if not raw or match is None or not any(match.groups()):
            raise UsageError(f"{what}: {text!r} is not a number of seconds",
                             hint=DURATION_FORMS) from None
        value = sum(float(part) * unit for part, unit in
                    zip(match.group("h", "m", "s"), (3600, 60, 1), strict=True) if part)
    if not (math.isfinite(value) and value >= 0):
        raise UsageError(f"{what}: {text!r} must be a finite number of seconds >= 0")
    return value


def duration(flag: str | None, flag_name: str, env: Mapping[str, str], var: str,
             default: float) -> float:
    """A duration from its flag, else its environment variable, else the default."""
    if flag is not None:
        return parse_duration(flag, flag_name)
    if env.get(var):
        return parse_duration(env[var], var)
    return default


def termination_log(env: Mapping[str, str]) -> str:
    """Where a termination message goes: $NEO4J_TERMINATION_LOG (as the pod's
    terminationMessagePath says), else Kubernetes' default."""
    return env.get("NEO4J_TERMINATION_LOG") or TERMINATION_LOG


def read_secret_file(path: str, what: str) -> str:
    """Read a password file, removing one trailing newline; empty or unreadable is an error."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise UsageError(f"{what}: file {path!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageError(f"{what}: cannot read {path!r}: {reason}") from None
    text = text.removesuffix("\n").removesuffix("\r")
    if not text:
        raise UsageError(f"{what}: file {path!r} is empty")
    return text


def find_ca_bundle(env: Mapping[str, str]) -> str | None:
    """The host's CA bundle when OpenSSL's compiled-in default is missing, else None."""
    if env.get("SSL_CERT_FILE"):
        return env["SSL_CERT_FILE"]
    import ssl  # only encrypted connections pay for it

    defaults = ssl.get_default_verify_paths()
    if defaults.cafile or (defaults.capath and os.listdir(defaults.capath)):
        return None
    return next((path for path in CA_BUNDLES if os.path.isfile(path)), None)


@dataclass(frozen=True)
class _Password:
    value: str
    source: str


def resolve(
    options: ConnectionOptions,
    env: Mapping[str, str],
    *,
    interactive: bool,
    prompt: Callable[[str], str],
) -> ConnectionSettings:
    """Resolve flags over environment over defaults; conflicting secrets are a usage error."""
    warnings: list[str] = []
    uri_text = options.uri or env.get("NEO4J_URI") or env.get("NEO4J_ADDRESS") or DEFAULT_URI
    uri_from_flag = options.uri is not None
    target, uri_user, uri_password = parse_uri(uri_text)

    no_auth = False
    auth_user: str | None = None
    auth_password: str | None = None
    if env.get("NEO4J_AUTH"):
        auth = env["NEO4J_AUTH"]
        if auth.strip().lower() == "none":
            no_auth = True
        else:
            auth_user, sep, auth_password = auth.partition("/")
            if not sep or not auth_user or not auth_password:
                raise UsageError("NEO4J_AUTH must be 'user/password' or 'none'")

    flag_sources = [
        p for p in (
            _Password(options.password, "--password") if options.password is not None else None,
            _Password(read_secret_file(options.password_file, "--password-file"),
                      "--password-file") if options.password_file is not None else None,
            _Password(uri_password, "--uri") if uri_from_flag and uri_password else None,
        ) if p is not None
    ]
    env_sources = [
        p for p in (
            _Password(env["NEO4J_PASSWORD"], "NEO4J_PASSWORD") if env.get("NEO4J_PASSWORD")
            else None,
            _Password(read_secret_file(env["NEO4J_PASSWORD_FILE"], "NEO4J_PASSWORD_FILE"),
                      "NEO4J_PASSWORD_FILE") if env.get("NEO4J_PASSWORD_FILE") else None,
            _Password(auth_password, "NEO4J_AUTH") if auth_password else None,
            _Password(uri_password, "NEO4J_URI") if not uri_from_flag and uri_password else None,
        ) if p is not None
    ]
    for level in (flag_sources, env_sources):
        if len(level) > 1:
            names = " and ".join(p.source for p in level)
            raise UsageError(f"the password is given twice: {names}", hint="give exactly one")
    if options.password is not None:
        warnings.append("--password is visible in the process list; "
                        "prefer NEO4J_PASSWORD or --password-file")

    username = options.username
    if username is None and uri_from_flag:
        username = uri_user
    if username is None:
        env_users = {v for v in (env.get("NEO4J_USERNAME"), env.get("NEO4J_USER")) if v}
        if len(env_users) > 1:
            raise UsageError("NEO4J_USERNAME and NEO4J_USER disagree", hint="set only one")
        username = next(iter(env_users), None) or auth_user or uri_user or DEFAULT_USERNAME

    chosen = next(iter(flag_sources or env_sources), None)
    password = chosen.value if chosen is not None else None
    if no_auth and chosen is None:
        username = None
    elif password is None:
        if not interactive:
            raise UsageError(
                f"no password for user {username} at {target.shown}",
                hint="set NEO4J_PASSWORD or NEO4J_PASSWORD_FILE, or pass --password-file",
            )
        password = prompt(f"Password for {username} at {target.shown}: ")

    trusted_ca = options.trusted_ca or env.get("NEO4J_TRUSTED_CA")
    if trusted_ca is not None:
        if target.scheme.endswith("+ssc"):
            raise UsageError("--trusted-ca cannot be used with a +ssc URI, which trusts any "
                             "certificate", hint="use bolt+s:// or neo4j+s://")
        if not os.path.isfile(trusted_ca) or not os.access(trusted_ca, os.R_OK):
            raise UsageError(f"trusted CA file {trusted_ca!r} does not exist or is unreadable")
        if not target.scheme.endswith("+s"):
            raise UsageError("--trusted-ca needs an encrypted URI",
                             hint="use bolt+s:// or neo4j+s://")
        trust = Trust(ca_file=trusted_ca)
    elif target.scheme.endswith("+s"):
        trust = Trust(ca_file=find_ca_bundle(env))
    else:
        trust = Trust()

    wait = duration(options.wait, "--wait", env, "NEO4J_WAIT", 0.0)
    timeout = duration(options.timeout, "--timeout", env, "NEO4J_TIMEOUT", DEFAULT_TIMEOUT)
    if timeout == 0:
        raise UsageError("--timeout must be more than 0 seconds")

    return ConnectionSettings(
        target=target,
        username=username,
        password=password,
        database=options.database or env.get("NEO4J_DATABASE") or None,
        trust=trust,
        wait=wait,
        timeout=timeout,
        warnings=tuple(warnings),
    )
