"""Command line of the test bed: ``python -m testbed`` (wrapped by ``scripts/neo4j-testbed``).

    start   --line 4.4|5|calver [--name N] [--port P] [--tls] [--timeout S]
            prints ``export NEO4J_URI=...``, ``export NEO4J_USERNAME=...``,
            ``export NEO4J_PASSWORD=...`` (and ``export NEO4J_CA_CERT=...`` with --tls) on stdout,
            so that ``eval "$(scripts/neo4j-testbed start --line 5)"`` works. ``--name`` starts
            another instance of the line (own data dir, own free port unless --port)
    stop    --line L | --name N | --all      (--all: every instance)
    kill    --line L | --name N      SIGKILL the server (a crash); data, port, password are kept
    restart --line L | --name N [--timeout S]
            start it again on its kept data, port and password; prints the export lines
    status                           one line per instance
    fetch   --line L | --all
    env     --line L | --name N      the export lines of a running instance
    catalog --line L | --name N [--out FILE] [--cypher25] [--schema FILE]
            record SHOW CONSTRAINTS/INDEXES YIELD * on a running server as a JSON fixture

``--line L`` alone means the line's default instance (named ``L``).
"""

from __future__ import annotations

import argparse
import os
import sys

from .errors import TestbedError
from .lines import LINE_NAMES


def _target(c: argparse.ArgumentParser, *, all_too: bool = False) -> None:
    g = c.add_mutually_exclusive_group(required=True)
    g.add_argument("--line", choices=LINE_NAMES, help="the line's default instance")
    g.add_argument("--name", help="an instance by name")
    if all_too:
        g.add_argument("--all", action="store_true", help="every instance")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="neo4j-testbed",
        description="Start and stop real Neo4j servers (built from Maven Central) on 127.0.0.1.",
    )
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("start", help="start a line (or reuse it) and print export lines")
    s.add_argument("--line", required=True, choices=LINE_NAMES)
    s.add_argument("--name", default=None,
                   help="instance name (default: the line's); another name runs another server "
                        "of the line with its own data and port")
    s.add_argument("--port", type=int, default=None)
    s.add_argument("--tls", action="store_true", help="require Bolt TLS (private CA)")
    s.add_argument("--timeout", type=float, default=120.0, help="seconds to wait (default 120)")

    _target(sub.add_parser("stop", help="stop an instance and wait until it is gone"),
            all_too=True)
    _target(sub.add_parser("kill", help="SIGKILL an instance (a crash); its data are kept"))
    r = sub.add_parser("restart", help="start an instance again on its kept data, port and "
                                       "password; print export lines")
    _target(r)
    r.add_argument("--timeout", type=float, default=120.0, help="seconds to wait (default 120)")

    f = sub.add_parser("fetch", help="download what a line needs without starting it")
    g = f.add_mutually_exclusive_group(required=True)
    g.add_argument("--line", choices=LINE_NAMES)
    g.add_argument("--all", action="store_true")

    sub.add_parser("status", help="one line per instance")

    _target(sub.add_parser("env", help="print the export lines of a running instance"))

    c = sub.add_parser("catalog", help="record SHOW CONSTRAINTS/INDEXES YIELD * as JSON")
    _target(c)
    c.add_argument("--out", default=None, help="file to write (default: stdout)")
    c.add_argument("--cypher25", action="store_true", help="prefix the queries with CYPHER 25")
    c.add_argument("--schema", default=None, help="a file of statements to create instead of "
                                                 "the sample schema (one per line, ';' ended)")
    return p


def _what(name: str) -> str:
    return f"line {name}" if name in LINE_NAMES else f"instance {name}"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    import testbed as srv  # the package: the public operations of all its modules

    try:
        name: str | None = getattr(args, "name", None)
        if args.command != "start" and name is None and getattr(args, "line", None):
            name = args.line
        if name is not None:
            srv.check_name(name)
        if args.command == "start":
            s = srv.start(args.line, args.port, tls=args.tls, timeout=args.timeout, name=name)
            print("\n".join(s.export_lines()), flush=True)
        elif args.command == "stop":
            if args.all:
                for stopped in srv.stop_all():
                    print(f"neo4j-testbed: stopped {_what(stopped)}", file=sys.stderr)
            else:
                assert name is not None
                if args.name is not None and name not in srv.instances():
                    raise TestbedError(f"there is no instance named {name}")
                if srv.stop(name):
                    print(f"neo4j-testbed: stopped {_what(name)}", file=sys.stderr)
        elif args.command == "kill":
            assert name is not None
            if not srv.kill(name):
                raise TestbedError(f"{_what(name)} is not running")
        elif args.command == "restart":
            assert name is not None
            s = srv.restart(name, timeout=args.timeout)
            print("\n".join(s.export_lines()), flush=True)
        elif args.command == "status":
            rows = srv.status()
            width = max(7, *(len(st.name) for st in rows))
            for st in rows:
                print(st.describe(width))
        elif args.command == "fetch":
            for line in (LINE_NAMES if args.all else [args.line]):
                srv.fetch(line)
                print(f"neo4j-testbed: line {line} is fetched", file=sys.stderr)
        elif args.command == "env":
            assert name is not None
            current = srv.running(name)
            if current is None:
                raise TestbedError(f"{_what(name)} is not running")
            print("\n".join(current.export_lines()))
        elif args.command == "catalog":
            from .catalog import write_catalog

            assert name is not None
            write_catalog(name, args.out, cypher25=args.cypher25, schema_file=args.schema)
    except TestbedError as exc:
        print(f"neo4j-testbed: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("neo4j-testbed: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `status | head -1`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
