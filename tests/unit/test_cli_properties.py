"""Property test of the configuration and CLI layer over argv and environment: whatever the
input, no traceback, an exit code from the documented set, valid JSON events, no password."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neo4j_schema_rollback.cli import dispatch

SCHEMA = json.loads((Path(__file__).parents[2] / "docs" / "events.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
DOCUMENTED = {0, 1, 2, 3, 4, 130, 143}  # never 70: no input may reach a bug
SECRET = "S3cr3t ü $HOME %s 'q\" pw"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


PORT = closed_port()
SECRET_URI = f"bolt://neo4j:{SECRET}@127.0.0.1:{PORT}"
# Only loopback hosts: a random host name would wait on DNS, which is not what is under test.
URIS = [f"bolt://127.0.0.1:{PORT}", f"neo4j://127.0.0.1:{PORT}", f"bolt+s://127.0.0.1:{PORT}",
        "http://127.0.0.1", "bolt://", "::::", "bolt://127.0.0.1:99999", "neo4j+ssc://[::1]:1",
        ""]
COMMANDS = ["apply", "rollback", "status", "statements"]
FLAGS = ["--to", "--yes", "-y", "--dry-run", "--index-timeout", "--uri", "--username", "-u",
         "--password", "--password-file", "--database", "-d", "--trusted-ca", "--timeout",
         "--log-format", "--debug", "--action", "--server-version", "--expect", "--help",
         "--version", "--"]
WORDS = ["json", "console", "auto", "apply", "rollback", "4.4", "5.26", "2026.08", "3.5", "-1",
         "0", "1", "2", "3", "nan", "1e309", "x", "/nonexistent", "/dev/null", "applied",
         "absent"]
VALUES = st.one_of(st.sampled_from(URIS + WORDS), st.text(max_size=12),
                   st.integers(-3, 5).map(str))
TOKENS = st.one_of(st.sampled_from(COMMANDS), st.sampled_from(FLAGS), VALUES)
ENV_KEYS = ["NEO4J_URI", "NEO4J_USERNAME", "NEO4J_USER", "NEO4J_PASSWORD_FILE", "NEO4J_AUTH",
            "NEO4J_DATABASE", "NEO4J_TRUSTED_CA", "NEO4J_TIMEOUT", "SSL_CERT_FILE"]
ENV_VALUES = st.one_of(st.sampled_from([*URIS, "none", "/nonexistent", "1", "-5", "abc"]),
                       st.text(max_size=8))
# The password goes only where a password belongs, so finding it in the output is a leak.
SECRET_ARGV = st.sampled_from([[], ["--password", SECRET], ["--uri", SECRET_URI],
                               [f"--password={SECRET}"]])
SECRET_ENV = st.sets(st.sampled_from([("NEO4J_PASSWORD", SECRET),
                                      ("NEO4J_AUTH", f"neo4j/{SECRET}"),
                                      ("NEO4J_URI", SECRET_URI)])).map(dict)


@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(argv=st.lists(TOKENS, max_size=7), secret_argv=SECRET_ARGV,
       at=st.integers(0, 7), env=st.dictionaries(st.sampled_from(ENV_KEYS), ENV_VALUES,
                                                  max_size=5), secret_env=SECRET_ENV)
def test_any_argv_and_env(argv: list[str], secret_argv: list[str], at: int,
                          env: dict[str, str], secret_env: dict[str, str], monkeypatch: Any,
                          capsys: Any) -> None:
    """Every input ends in a documented exit code with valid, password-free output."""
    # A wait would only make the example slow; every other setting is fair game.
    argv = [token for token in argv if token != "--wait"]
    argv[at:at] = secret_argv
    with monkeypatch.context() as patch:
        for key in [*ENV_KEYS, "NEO4J_PASSWORD", "NEO4J_WAIT", "NEO4J_ADDRESS"]:
            patch.delenv(key, raising=False)
        patch.setenv("NEO4J_URI", f"bolt://127.0.0.1:{PORT}")
        for key, value in {**env, **secret_env}.items():
            if "\x00" not in value:
                patch.setenv(key, value)
        code = dispatch(argv)
    out, err = capsys.readouterr()
    assert code in DOCUMENTED
    assert "Traceback" not in out + err
    assert SECRET not in out + err
    assert "'q\"" not in out + err
    if out.startswith("{"):
        parsed = [json.loads(line) for line in out.splitlines()]
        for event in parsed:
            VALIDATOR.validate(event)
        assert parsed[-1]["event"] == "run.end"
        assert parsed[-1]["exit_code"] == code
    elif code != 0 and "run.end" in out:  # --log-format console: the log is for a human
        assert out.splitlines()[-1].split()[2] == "run.end"
    elif code != 0:
        assert err.startswith("neo4j-schema-rollback: error: ")
        assert err.count("\n") == 1


@pytest.mark.parametrize("argv", [["status", "--password", SECRET],
                                  ["apply", "--uri", SECRET_URI],
                                  ["statements", f"--password={SECRET}"]])
def test_passwords_are_never_printed(argv: list[str], capsys: Any) -> None:
    """A password from a flag or inside the URI is absent from every line, even when the
    parser rejects the command line."""
    code = dispatch(argv)
    out, err = capsys.readouterr()
    assert code in (2, 3)
    assert SECRET not in out + err
