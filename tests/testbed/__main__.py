"""Command line of the test bed: ``python -m testbed`` (wrapped by ``scripts/neo4j-testbed``).

    start  --line 4.4|5|calver [--port P] [--tls] [--timeout S]
           prints ``export NEO4J_URI=...``, ``export NEO4J_USERNAME=...``,
           ``export NEO4J_PASSWORD=...`` (and ``export NEO4J_CA_CERT=...`` with --tls) on stdout,
           so that ``eval "$(scripts/neo4j-testbed start --line 5)"`` works
    stop   --line L | --all
    status
    fetch  --line L | --all
    env    --line L       the export lines of a running server
    catalog --line L [--out FILE] [--cypher25]
           record SHOW CONSTRAINTS/INDEXES YIELD * on a running server as a JSON fixture
"""

from __future__ import annotations

import argparse
import os
import sys

from .errors import TestbedError
from .lines import LINE_NAMES


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="neo4j-testbed",
        description="Start and stop real Neo4j servers (built from Maven Central) on 127.0.0.1.",
    )
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("start", help="start a line (or reuse it) and print export lines")
    s.add_argument("--line", required=True, choices=LINE_NAMES)
    s.add_argument("--port", type=int, default=None)
    s.add_argument("--tls", action="store_true", help="require Bolt TLS (private CA)")
    s.add_argument("--timeout", type=float, default=120.0, help="seconds to wait (default 120)")

    for name, helptext in (("stop", "stop a line and wait until it is gone"),
                           ("fetch", "download what a line needs without starting it")):
        c = sub.add_parser(name, help=helptext)
        g = c.add_mutually_exclusive_group(required=True)
        g.add_argument("--line", choices=LINE_NAMES)
        g.add_argument("--all", action="store_true")

    sub.add_parser("status", help="one line per Neo4j line")

    e = sub.add_parser("env", help="print the export lines of a running line")
    e.add_argument("--line", required=True, choices=LINE_NAMES)

    c = sub.add_parser("catalog", help="record SHOW CONSTRAINTS/INDEXES YIELD * as JSON")
    c.add_argument("--line", required=True, choices=LINE_NAMES)
    c.add_argument("--out", default=None, help="file to write (default: stdout)")
    c.add_argument("--cypher25", action="store_true", help="prefix the queries with CYPHER 25")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from . import server as srv

    try:
        if args.command == "start":
            s = srv.start(args.line, args.port, tls=args.tls, timeout=args.timeout)
            print("\n".join(s.export_lines()), flush=True)
        elif args.command == "stop":
            for line in (LINE_NAMES if args.all else [args.line]):
                if srv.stop(line):
                    print(f"neo4j-testbed: stopped line {line}", file=sys.stderr)
        elif args.command == "status":
            for st in srv.status():
                print(st.describe())
        elif args.command == "fetch":
            for line in (LINE_NAMES if args.all else [args.line]):
                srv.fetch(line)
                print(f"neo4j-testbed: line {line} is fetched", file=sys.stderr)
        elif args.command == "env":
            current = srv.running(args.line)
            if current is None:
                raise TestbedError(f"line {args.line} is not running")
            print("\n".join(current.export_lines()))
        elif args.command == "catalog":
            from .catalog import write_catalog

            write_catalog(args.line, args.out, cypher25=args.cypher25)
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
