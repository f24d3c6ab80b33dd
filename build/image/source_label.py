"""Where the source is, for the image's `org.opencontainers.image.source` label: NSR_SOURCE,
else GitHub Actions' repository URL, else the clone's `origin` remote as an https URL.

Standard library only: scripts/release runs it before the project's environment exists.
`python build/image/source_label.py` prints the URL, or one line on stderr and exit 1.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class NoSource(Exception):
    """No source URL can be told."""


def https_url(remote: str) -> str | None:
    """A remote's URL as a web address (https, no credentials, no .git); None for a path."""
    remote = remote.strip()
    scp = re.fullmatch(r"(?:[^@/:]+@)?([^/:]+):(?!/)(.+)", remote)  # git@github.com:o/r.git
    if scp and "://" not in remote:
        host, path = scp[1], scp[2]
    else:
        url = re.fullmatch(r"(?:https?|ssh|git|git\+ssh)://(?:[^@/]*@)?([^/:]+)(?::\d+)?/(.+)",
                           remote)
        if not url:
            return None  # a local path, file:// or something else
        host, path = url[1], url[2]
    path = path.strip("/").removesuffix(".git")
    return f"https://{host}/{path}" if path else None


def source_url(env: Mapping[str, str], root: Path = ROOT) -> str:
    """NSR_SOURCE, else GitHub Actions' repository URL, else the origin remote as https."""
    if env.get("NSR_SOURCE"):
        return env["NSR_SOURCE"]
    server, repo = env.get("GITHUB_SERVER_URL"), env.get("GITHUB_REPOSITORY")
    if server and repo:
        return f"{server}/{repo}"
    proc = subprocess.run(["git", "-C", str(root), "remote", "get-url", "origin"],
                          capture_output=True, text=True, check=False)
    origin = proc.stdout.strip()
    if proc.returncode != 0 or not origin:
        raise NoSource("no source URL for the image's label: the clone has no origin remote; "
                       "set NSR_SOURCE")
    url = https_url(origin)
    if url is None:
        raise NoSource(f"no source URL for the image's label: the origin remote {origin!r} is "
                       "not a web address; set NSR_SOURCE")
    return url


def main() -> int:
    try:
        print(source_url(os.environ))
    except NoSource as exc:
        print(f"source: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
