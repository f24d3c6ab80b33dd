"""The CLI without a database: statements, --version, parse errors, and what gets imported."""

from __future__ import annotations

import inspect
import json
import os
import platform
import pty
import signal
import subprocess
import sys
from collections.abc import Callable

import pytest

PROG = [sys.executable, "-m", "neo4j_schema_rollback"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PROG, *args], capture_output=True, text=True, check=False,
                          env={"PATH": "/usr/bin:/bin"}, stdin=subprocess.DEVNULL)


def test_statements_apply_default() -> None:
    """statements prints every create, one per line ending in ';'."""
    r = run("statements")
    assert r.returncode == 0
    assert r.stdout.splitlines() == [
        "CREATE CONSTRAINT compute_pk IF NOT EXISTS FOR (c:ComputeNode) REQUIRE c.node_id "
        "IS UNIQUE;",
        "CREATE INDEX kafka_topic IF NOT EXISTS FOR (q:Queue) ON (q.topic);",
        "CREATE INDEX compute_tags IF NOT EXISTS FOR (c:ComputeNode) ON (c.tags);",
        "CREATE INDEX queue_interval IF NOT EXISTS FOR (q:Queue) ON (q.interval);",
        "CREATE INDEX compute_buffering_since IF NOT EXISTS FOR (c:ComputeNode) "
        "ON (c.buffering_since);",
    ]
    assert r.stderr == ""


def test_statements_rollback_to_1_for_4_4() -> None:
    """Rollback statements drop newest first and keep --to."""
    r = run("statements", "--action", "rollback", "--server-version", "4.4", "--to", "1")
    assert r.returncode == 0
    assert r.stdout == ("DROP INDEX compute_buffering_since IF EXISTS;\n"
                        "DROP INDEX queue_interval IF EXISTS;\n"
                        "DROP INDEX compute_tags IF EXISTS;\n")


@pytest.mark.parametrize(("args", "code", "message"), [
    (("statements", "--server-version", "4.3"), 3, "needs Neo4j 4.4 or later"),
    (("statements", "--server-version", "latest"), 2, "not a Neo4j version"),
    (("statements", "--to", "7"), 2, "--to 7 is out of range"),
    (("statements", "--action", "drop"), 2, "Invalid value"),
    (("apply", "--bogus"), 2, "Unknown option"),
    (("nosuchcommand",), 2, "nosuchcommand"),
    (("apply", "--to", "x"), 2, "--to"),
    (("rollback", "--to", "-1"), 2, "out of range"),
    # cyclopts alone would round these (-0.5 to 0: drop everything) instead of refusing them.
    (("statements", "--to", "1.5"), 2, "Invalid value for --to: '1.5' is not a whole number"),
    (("statements", "--action", "rollback", "--to=1.9"), 2, "'1.9' is not a whole number"),
    (("statements", "--to", "0x1"), 2, "'0x1' is not a whole number"),
    (("apply", "--to", "1.0"), 2, "'1.0' is not a whole number"),
    (("rollback", "--to", "-0.5"), 2, "'-0.5' is not a whole number"),
    (("status", "--to", "1.5"), 2, "'1.5' is not a whole number"),
    (("apply", "--index-timeout", "inf"), 2,
     "--index-timeout: 'inf' must be a finite number of seconds >= 0"),
    (("apply", "--index-timeout", "1e309"), 2, "'1e309' must be a finite number of seconds"),
    (("apply", "--index-timeout", "nan"), 2, "'nan' must be a finite number of seconds >= 0"),
    (("apply", "--index-timeout", "-1"), 2, "'-1' must be a finite number of seconds >= 0"),
    (("apply", "--index-timeout", "soon"), 2, "'soon' is not a number of seconds"),
])
def test_bad_input_is_one_line_with_documented_code(args: tuple[str, ...], code: int,
                                                     message: str) -> None:
    """Bad input gets one stderr line and its exit code; never a traceback."""
    r = run(*args)
    assert r.returncode == code
    assert r.stderr.startswith("neo4j-schema-rollback: error: ")
    assert r.stderr.count("\n") == 1
    assert message in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("args", [
    ("apply", "--bogus"),  # found by the argument parser
    ("rollback", "--to", "-0.5"),  # by a converter
    ("status", "--to", "9"),  # by the command
    ("apply", "--index-timeout", "soon"),  # by the duration parser
    ("status", "--timeout", "-1"),  # by the settings
    ("--log-format=json", "--yes", "--timeout", "nan"),  # no command: rollback
])
def test_usage_errors_behave_alike_wherever_found(args: tuple[str, ...]) -> None:
    """Every usage error of a connected command is the stderr line, and in JSON mode (stdout
    not a terminal) an error and a run.end event, exit 2."""
    r = run(*args)
    assert r.returncode == 2
    assert r.stderr.startswith("neo4j-schema-rollback: error: ")
    assert r.stderr.count("\n") == 1
    events = [json.loads(line) for line in r.stdout.splitlines()]
    assert [e["event"] for e in events] == ["error", "run.end"]
    assert events[0]["message"] == r.stderr.removeprefix("neo4j-schema-rollback: error: ").strip()
    assert (events[1]["outcome"], events[1]["exit_code"]) == ("usage_error", 2)


def test_usage_errors_of_statements_are_one_line() -> None:
    """statements prints Cypher, not events: its usage errors are the stderr line alone."""
    r = run("statements", "--bogus")
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == "neo4j-schema-rollback: error: Unknown option: --bogus. (see --help)\n"


@pytest.mark.parametrize("command", ["apply", "rollback", "status"])
def test_connected_commands_share_one_flag_declaration(command: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """apply, rollback and status declare the ten connection and output flags once, as one
    flattened dataclass, and pass them on unchanged."""
    from neo4j_schema_rollback import cli, session
    from neo4j_schema_rollback.settings import ConnectionOptions

    function = getattr(cli, command)
    annotations = [p.annotation for p in inspect.signature(function).parameters.values()]
    assert annotations.count(cli.CommonFlags) == 1
    seen: list[session.Common] = []
    monkeypatch.setattr(session, "connected", lambda _, common, *a, **k: seen.append(common) or 0)
    assert cli.dispatch([command, "--uri", "bolt://h:1", "-u", "bob", "--password", "pw",
                         "--password-file", "/pw", "-d", "db", "--trusted-ca", "/ca.pem",
                         "--wait", "5", "--timeout", "9s", "--log-format", "json",
                         "--debug"]) == 0
    assert cli.dispatch([command]) == 0
    assert seen == [
        session.Common(ConnectionOptions(uri="bolt://h:1", username="bob", password="pw",
                                         password_file="/pw", database="db",
                                         trusted_ca="/ca.pem", wait="5", timeout="9s"),
                       log_format="json", debug=True),
        session.Common(ConnectionOptions(), log_format="auto", debug=False),
    ]


def test_version() -> None:
    """--version prints the tool, commit, build date, Python and driver versions."""
    r = run("--version")
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert lines[0] == "neo4j-schema-rollback 0.1.0"
    assert [line.split(":")[0] for line in lines[1:]] == ["commit", "built", "python",
                                                          "neo4j driver"]


def test_version_imports_nothing_but_its_own_modules() -> None:
    """The --version fast path, as in the binary (driver version baked in), loads only the
    tool's entry modules: not even typing, re or enum (each is a cost on every probe)."""
    code = ("import sys; before = set(sys.modules)\n"
            "import neo4j_schema_rollback.build_info as info; info.DRIVER_VERSION = '6'\n"
            "from neo4j_schema_rollback.main import run; run(['--version'])\n"
            "print(' '.join(sorted(set(sys.modules) - before)), file=sys.stderr)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert set(r.stderr.split()) == {"__future__", "neo4j_schema_rollback",
                                     "neo4j_schema_rollback.build_info",
                                     "neo4j_schema_rollback.main"}


def test_version_of_a_portable_build_names_its_cpython_source_and_openssl() -> None:
    """With the values a portable build records, --version adds the Debian source of its
    CPython to the python line and an `openssl:` line, still without importing ssl."""
    code = ("import sys\n"
            "import neo4j_schema_rollback.build_info as info\n"
            "info.DRIVER_VERSION = '6.4.1'\n"
            "info.OPENSSL_VERSION = 'OpenSSL 3.5.7 28 Oct 2025'\n"
            "info.PYTHON_SOURCE = 'Debian python3.11 3.11.2-6+deb12u8'\n"
            "from neo4j_schema_rollback.main import run; run(['--version'])\n"
            "print('ssl' in sys.modules, file=sys.stderr)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    lines = r.stdout.splitlines()
    assert lines[3] == (f"python: {platform.python_version()} "
                        f"({sys.platform}; Debian python3.11 3.11.2-6+deb12u8)")
    assert lines[4:] == ["neo4j driver: 6.4.1", "openssl: OpenSSL 3.5.7 28 Oct 2025"]
    assert r.stderr.strip() == "False"


@pytest.mark.parametrize(("args", "forbidden"), [
    (("--version",), ("neo4j", "structlog", "rich", "cyclopts")),
    (("statements",), ("neo4j", "structlog", "rich")),
    (("--help",), ("neo4j", "structlog")),
])
def test_offline_commands_import_no_heavy_module(args: tuple[str, ...],
                                                 forbidden: tuple[str, ...]) -> None:
    """Commands that need no database import neither the driver nor structlog nor rich, nor
    the progress line (a terminal's, imported only by a run that has something to show)."""
    code = ("import sys, runpy; sys.argv = ['x', *sys.argv[1:]]\n"
            "try:\n    runpy.run_module('neo4j_schema_rollback', run_name='__main__')\n"
            "except SystemExit: pass\n"
            "print(' '.join(sorted(sys.modules)), file=sys.stderr)")
    r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                       check=True)
    modules = set(r.stderr.split())
    loaded = {name.split(".")[0] for name in modules}
    assert loaded.isdisjoint(forbidden), loaded & set(forbidden)
    assert "neo4j_schema_rollback.session" in modules or args == ("--version",)
    assert "neo4j_schema_rollback.progress_line" not in modules


def test_closed_stdout_is_a_quiet_exit_1() -> None:
    """A reader that went away (`| head`) gets no traceback and a documented code."""
    read, write = os.pipe()
    os.close(read)
    r = subprocess.run([*PROG, "statements"], stdout=write, stderr=subprocess.PIPE, text=True,
                       check=False, env={"PATH": "/usr/bin:/bin"})
    os.close(write)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert r.stderr == ""


def test_closed_stderr_changes_nothing() -> None:
    """Started with stderr closed (`2>&-`), a run succeeds and prints all it would print."""
    normal = subprocess.run([*PROG, "statements"], capture_output=True, text=True, check=True,
                            env={"PATH": "/usr/bin:/bin"})
    r = subprocess.run([*PROG, "statements"], stdout=subprocess.PIPE, text=True, check=False,
                       env={"PATH": "/usr/bin:/bin"}, preexec_fn=lambda: os.close(2))
    assert r.returncode == 0
    assert r.stdout == normal.stdout != ""


def test_a_query_the_driver_rejects_is_a_usage_error() -> None:
    """A routing context the driver refuses is exit 2 with one line, not an internal error."""
    r = subprocess.run([*PROG, "status", "--uri", "neo4j://127.0.0.1:1?address=x"],
                       capture_output=True, text=True, check=False,
                       env={"PATH": "/usr/bin:/bin", "NEO4J_AUTH": "none"},
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 2
    assert "the driver rejects the settings" in r.stderr
    assert "internal error" not in r.stdout + r.stderr


def test_control_characters_in_a_rejected_query_are_escaped() -> None:
    """The driver's message quotes the query: an escape sequence in it is printed escaped."""
    r = subprocess.run([*PROG, "status", "--uri", "neo4j://127.0.0.1:1?a=\x1b[31mRED&a=2",
                        "--log-format", "json"], capture_output=True, text=True, check=False,
                       env={"PATH": "/usr/bin:/bin", "NEO4J_AUTH": "none"},
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 2
    assert "\\x1b" in r.stderr
    assert "\x1b" not in r.stdout + r.stderr


def at_password_prompt(action: Callable[[subprocess.Popen[bytes], int], None]) -> tuple[int, str]:
    """Start `status` with a terminal and no password, act at the prompt, return the result."""
    main, secondary = pty.openpty()
    proc = subprocess.Popen([*PROG, "status", "--uri", "bolt://127.0.0.1:1", "--log-format",
                             "json"], stdin=secondary, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={"PATH": "/usr/bin:/bin"},
                            start_new_session=True)
    os.close(secondary)
    assert proc.stderr is not None
    seen = b""
    while b"Password for" not in seen:  # without a controlling terminal getpass uses stderr
        chunk = proc.stderr.read1(1024)  # type: ignore[attr-defined]
        assert chunk, seen
        seen += chunk
    action(proc, main)
    out, _ = proc.communicate(timeout=30)
    os.close(main)
    return proc.returncode, out.decode()


def test_ctrl_d_at_the_password_prompt_is_a_usage_error() -> None:
    """End of input at the prompt is exit 2, not an internal error."""
    code, out = at_password_prompt(lambda proc, main: os.write(main, b"\x04"))
    assert code == 2
    assert '"message":"no password entered"' in out


def test_ctrl_c_at_the_password_prompt_stops_at_once() -> None:
    """One Ctrl-C at a prompt ends the run with 130 and run.end (nothing is in flight)."""
    code, out = at_password_prompt(lambda proc, main: proc.send_signal(signal.SIGINT))
    assert code == 130
    assert '"event":"run.end"' in out.splitlines()[-1]
