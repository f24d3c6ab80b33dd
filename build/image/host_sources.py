"""Write <binary>.sources.json for a HOST build of the binary (scripts/build-binary without
--portable), from the machine's dpkg database: a development stand-in for the record the portable
build writes. usage: python build/image/host_sources.py BINARY"""

from __future__ import annotations

import json
import platform
import re
import subprocess
import sys
from pathlib import Path

from contents import archive_entries


def _query(package: str, fmt: str) -> str:
    return subprocess.run(["dpkg-query", "-W", "-f", fmt, package], capture_output=True,
                          text=True, check=True).stdout


def source_of(library: str) -> dict[str, str]:
    ldconfig = subprocess.run(["/sbin/ldconfig", "-p"], capture_output=True, text=True,
                              check=True).stdout
    match = re.search(rf"^\s+{re.escape(library)} \(.*\) => (\S+)$", ldconfig, re.MULTILINE)
    if match is None:
        raise SystemExit(f"host_sources: {library} is not a library of this machine")
    if library.startswith("libpython"):
        # a host build's interpreter may not be Debian's (pyenv): say so rather than guess
        version = platform.python_version()
        return {"debian_source": "python3.11", "debian_version": f"none (host {version})",
                "upstream_version": version}
    resolved = str(Path(match.group(1)).resolve())
    # merged /usr: dpkg knows the path a package shipped, /lib/... or /usr/lib/...
    candidates = [match.group(1), resolved, resolved.replace("/usr/lib/", "/lib/", 1)]
    package = ""
    for path in candidates:
        owner = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True,
                               check=False)
        if owner.returncode == 0:
            package = owner.stdout.split(":")[0]
            break
    if not package:
        raise SystemExit(f"host_sources: no package owns {resolved}")
    source, version, upstream = _query(
        package, "${source:Package} ${source:Version} ${source:Upstream-Version}").split()
    return {"debian_source": source, "debian_version": version, "upstream_version": upstream}


def main() -> None:
    binary = Path(sys.argv[1])
    binaries, _ = archive_entries(binary)
    libraries = {name: source_of(name) for name in binaries if "/lib-dynload/" not in name}
    pylib = next(name for name in libraries if name.startswith("libpython"))
    arch = {"x86_64": "x86_64", "aarch64": "arm64"}[platform.machine()]
    record = {"arch": arch,
              "python": {"version": platform.python_version(),
                         "debian_source": libraries[pylib]["debian_source"],
                         "debian_version": libraries[pylib]["debian_version"]},
              "libraries": libraries}
    Path(f"{binary}.sources.json").write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
