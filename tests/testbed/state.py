"""What the test bed knows about an instance: its handle (``Server``), its name, its files
(``state.json``, ``instance.json``, the DBMS home) and the locks that guard them.

An instance keeps everything in ``<testbed dir>/<name>/``: ``state.json`` (port, password,
pid...), ``instance.json`` (its line and port, kept after a stop), ``neo4j.conf``, the server log
and the DBMS home ``data/``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shlex
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import TestbedError
from .lines import LINES, Line, get_line
from .paths import instance_dir, testbed_dir

if TYPE_CHECKING:
    import neo4j

USERNAME = "neo4j"
HOST = "127.0.0.1"
RESERVED_NAMES = frozenset({"cache", "launcher", "jdk", "m2", "maven", "rootfs"})
"""Directory names under the test-bed dir that are not instances."""
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class Server:
    """A running test-bed server (what ``start`` returns and ``state.json`` holds)."""

    line: str
    version: str
    port: int
    uri: str
    username: str
    password: str
    pid: int
    log_path: Path
    debug_log_path: Path
    data_dir: Path
    java: str
    tls: bool = False
    ca_cert: Path | None = None
    started_at: float = 0.0
    startup_seconds: float | None = None
    auto_stop: bool = False
    """Started by ``acquire`` (pytest): the last ``release`` stops it. ``start`` (the CLI)
    leaves it running until ``stop``."""
    name: str = ""
    """The instance name (its directory under the test-bed dir); defaults to ``line``."""
    killed_at: float | None = None
    """Set by ``kill`` (wall-clock time); None for a running server."""
    restarts: int = 0
    """How many times ``restart`` brought this instance back on its kept data."""
    started: bool = field(default=False, compare=False)
    """True if this very ``start`` call launched the process (False: it was already running)."""

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.line)

    @classmethod
    def external(cls, *, line: str, uri: str, username: str, password: str,
                 version: str) -> Server:
        """A server the test bed did not start (a CI service container): never stopped here."""
        port = int(uri.rsplit(":", 1)[1]) if uri.rsplit(":", 1)[1].isdigit() else 7687
        return cls(line=line, version=version, port=port, uri=uri, username=username,
                   password=password, pid=0, log_path=Path("/dev/null"),
                   debug_log_path=Path("/dev/null"), data_dir=Path("/dev/null"),
                   java="external", name=f"{line}-external")

    @property
    def auth(self) -> tuple[str, str]:
        return (self.username, self.password)

    def driver(self, **config: Any) -> neo4j.Driver:
        """A driver for this server (trusting the test-bed CA when TLS is on)."""
        import neo4j

        if self.tls:
            config.setdefault("encrypted", True)
            config.setdefault("trusted_certificates", neo4j.TrustCustomCAs(str(self.ca_cert)))
            uri = f"bolt://{HOST}:{self.port}"
        else:
            uri = self.uri
        return neo4j.GraphDatabase.driver(uri, auth=self.auth, **config)

    def env(self) -> dict[str, str]:
        env = {
            "NEO4J_URI": self.uri,
            "NEO4J_USERNAME": self.username,
            "NEO4J_PASSWORD": self.password,
        }
        if self.tls and self.ca_cert is not None:
            env["NEO4J_CA_CERT"] = str(self.ca_cert)
        return env

    def export_lines(self) -> list[str]:
        return [f"export {k}={shlex.quote(v)}" for k, v in self.env().items()]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("started")
        for k, v in data.items():
            if isinstance(v, Path):
                data[k] = str(v)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Server:
        kw = dict(data)
        for k in ("log_path", "debug_log_path", "data_dir"):
            kw[k] = Path(kw[k])
        kw["ca_cert"] = Path(kw["ca_cert"]) if kw.get("ca_cert") else None
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in kw.items() if k in known})

@dataclass(frozen=True)
class LineStatus:
    """One instance in ``status()`` (the default instance of a line is named like the line)."""

    line: str
    version: str
    running: bool
    port: int
    pid: int | None
    uri: str | None
    note: str = ""
    name: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.line)

    def describe(self, width: int = 7) -> str:
        """One line of ``status``; ``width``: of the name column."""
        state = "running" if self.running else "stopped"
        text = (f"{self.name:<{width}} {state:<8} version={self.version:<10} port={self.port:<5} "
                f"pid={self.pid if self.pid else '-'}")
        if self.name != self.line:
            text += f" line={self.line}"
        if self.running and self.uri:
            text += f" uri={self.uri}"
        if self.note:
            text += f" ({self.note})"
        return text


def check_name(name: str) -> str:
    """An instance name: letters, digits, ``.``, ``_``, ``-`` (at most 64; not a cache dir)."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name) or name in RESERVED_NAMES:
        raise TestbedError(
            f"invalid instance name {name!r}: use letters, digits, '.', '_' and '-' "
            f"(at most 64 characters, starting with a letter or digit; not "
            f"{', '.join(sorted(RESERVED_NAMES))})"
        )
    return name


def resolve(line_name: str, name: str | None) -> tuple[Line, str]:
    """The line and the instance name of a start (default name: the line's)."""
    line = get_line(line_name)
    if name is None:
        return line, line.name
    check_name(name)
    if name in LINES and name != line.name:
        raise TestbedError(f"the name {name} belongs to the default instance of line {name}; "
                           f"choose another name for an instance of line {line.name}")
    return line, name


def stop_hint(name: str) -> str:
    flag = f"--line {name}" if name in LINES else f"--name {name}"
    return f"scripts/neo4j-testbed stop {flag}"


def label_of(line: Line, name: str) -> str:
    if name == line.name:
        return f"Neo4j {line.version} (line {line.name})"
    return f"Neo4j {line.version} (instance {name} of line {line.name})"


def progress(msg: str) -> None:
    print(f"neo4j-testbed: {msg}", file=sys.stderr, flush=True)


def state_path(name: str) -> Path:
    return instance_dir(name) / "state.json"


def meta_path(name: str) -> Path:
    return instance_dir(name) / "instance.json"


def home_dir(name: str) -> Path:
    """The DBMS home of the embedded server (``data/`` and ``logs/`` below it); wiped on start,
    kept by ``kill`` and ``restart``."""
    return instance_dir(name) / "data"


def marker_prefix() -> str:
    return f"-Dneo4j.testbed.home={testbed_dir()}{os.sep}"


def pid_marker(name: str) -> str:
    return f"-Dneo4j.testbed.home={home_dir(name)}"


def read_state(name: str) -> Server | None:
    path = state_path(name)
    try:
        return Server.from_json(json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError, KeyError):
        return None


def write_state(server: Server) -> None:
    _write_json(state_path(server.name), server.to_json(), private=True)


def _write_json(path: Path, data: dict[str, Any], *, private: bool = False) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
        fh.write("\n")
    tmp.replace(path)


def read_meta(name: str) -> tuple[str, int] | None:
    """(line, port) of an instance, kept after a stop (its port reservation)."""
    try:
        data = json.loads(meta_path(name).read_text())
        return str(data["line"]), int(data["port"])
    except (OSError, ValueError, TypeError, KeyError):
        return None


def write_meta(name: str, line: str, port: int) -> None:
    _write_json(meta_path(name), {"name": name, "line": line, "port": port})


@contextlib.contextmanager
def _flocked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def locked(name: str) -> contextlib.AbstractContextManager[None]:
    """The lock of one instance (start, stop, kill, restart, leases)."""
    return _flocked(instance_dir(name) / ".lock")


def ports_locked() -> contextlib.AbstractContextManager[None]:
    """The lock of port choices in this test-bed dir (taken inside an instance lock)."""
    return _flocked(testbed_dir() / ".ports.lock")
