"""scripts/release: every Linux asset in dist/release, SHA256SUMS of each, and a CycloneDX SBOM
per binary and per image that names exactly what the asset holds (read here from the asset
itself: the binary's PyInstaller archive, the image's layer)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from images import ARCHES, BINARY_ARCH, ROOT, SOURCE_LABEL, OciArchive, asset, version
from PyInstaller.archive.readers import CArchiveReader  # type: ignore[import-untyped]

PROPERTY = "neo4j-schema-rollback"
arches = pytest.mark.parametrize("arch", ARCHES)


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """scripts/release --no-build over the release binaries of both architectures."""
    for arch in ARCHES:
        asset(arch)
    out = tmp_path_factory.mktemp("release")
    proc = subprocess.run([str(ROOT / "scripts" / "release"), "--no-build", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, check=False, timeout=1800,
                          env={**os.environ, "NSR_SOURCE": SOURCE_LABEL})
    assert proc.returncode == 0, proc.stderr
    return out


def names(arch: str) -> tuple[str, str]:
    v = version()
    return (f"neo4j-schema-rollback-{v}-linux-{BINARY_ARCH[arch]}",
            f"neo4j-schema-rollback-{v}-oci-{arch}.tar")


def sbom(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text())
    assert (doc["bomFormat"], doc["specVersion"]) == ("CycloneDX", "1.5")
    return doc


def props(component: dict[str, Any], name: str) -> list[str]:
    return [p["value"] for p in component.get("properties", [])
            if p["name"] == f"{PROPERTY}:{name}"]


def test_release_holds_every_linux_asset_and_its_sums(release: Path) -> None:
    """Both binaries, both image archives, an SBOM for each, and SHA256SUMS with the right sum
    of every other file."""
    expected = {"SHA256SUMS"}
    for arch in ARCHES:
        for asset_name in names(arch):
            expected |= {asset_name, f"{asset_name}.cdx.json"}
    assert {p.name for p in release.iterdir()} == expected
    sums = dict(reversed(line.split("  ", 1)) for line in
                (release / "SHA256SUMS").read_text().splitlines())
    assert set(sums) == expected - {"SHA256SUMS"}
    for name, digest in sums.items():
        assert hashlib.sha256((release / name).read_bytes()).hexdigest() == digest, name


@arches
def test_binary_sbom_names_exactly_what_its_archive_holds(release: Path, arch: str) -> None:
    """Native libraries and extension modules as in the archive; a component for every Python
    package whose modules are in the PYZ, at the build environment's version; glibc only as a
    requirement."""
    binary = release / names(arch)[0]
    doc = sbom(release / f"{binary.name}.cdx.json")
    subject = doc["metadata"]["component"]
    assert subject["hashes"] == [{"alg": "SHA-256",
                                  "content": hashlib.sha256(binary.read_bytes()).hexdigest()}]
    glibc = subprocess.run([str(ROOT / "scripts" / "check-glibc"), str(binary)],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert props(subject, "requires") == [f"glibc>={glibc}"]
    components = doc["components"]
    assert not [c for c in components if c["name"] in ("glibc", "libc6", "libc.so.6")]

    reader = CArchiveReader(str(binary))
    entries = {name for name, entry in reader.toc.items() if entry[-1] == "b"}
    dynload = {e for e in entries if "/lib-dynload/" in e}
    [cpython] = [c for c in components if c["name"] == "cpython"]
    assert set(props(cpython, "archive-entry")) == dynload
    libs = [c for c in components if c["bom-ref"].startswith("lib:")]
    assert {e for c in libs for e in props(c, "archive-entry")} == entries - dynload
    record = json.loads(Path(f"{ROOT}/dist/{binary.name}.sources.json").read_text())
    for c in libs:
        source = record["libraries"][c["name"]]
        assert props(c, "debian-source") == [source["debian_source"]]
        assert c["version"] == source["upstream_version"]

    pyz = next(name for name, entry in reader.toc.items() if entry[-1] == "z")
    modules = {key.split(".")[0] for key in reader.open_embedded_archive(pyz).toc}
    third_party = {m for m in modules if m not in sys.stdlib_module_names
                   and m != "neo4j_schema_rollback" and not m.startswith("_nsr_")}
    dists = [c for c in components if c["bom-ref"].startswith("pypi:")]
    claimed = [m for c in dists for m in props(c, "module")]
    assert sorted(claimed) == sorted(third_party)
    build_env = ROOT / "build" / "work" / f"portable-{BINARY_ARCH[arch]}" / "venv"
    site = next((build_env / "lib").glob("python3.*/site-packages"))
    installed = {d.metadata["Name"]: d.version for d in metadata.distributions(path=[str(site)])}
    for c in dists:
        assert c["version"] == installed[c["name"]], c["name"]
        assert c["purl"] == f"pkg:pypi/{c['name'].lower()}@{c['version']}"
    assert any(c["name"].lower() == "pyinstaller" for c in dists)


@arches
def test_image_sbom_names_every_package_of_its_dpkg_status(release: Path, arch: str) -> None:
    """The image's SBOM: each Debian package of the layer's dpkg status at its version and
    architecture, and the binary it carries (the release binary, by hash)."""
    binary_name, archive_name = names(arch)
    archive = release / archive_name
    doc = sbom(release / f"{archive_name}.cdx.json")
    assert doc["metadata"]["component"]["hashes"][0]["content"] == \
        hashlib.sha256(archive.read_bytes()).hexdigest()
    image = OciArchive.read(archive)
    paragraphs = [p for p in image.text("var/lib/dpkg/status").split("\n\n") if p.strip()]
    binary = image.layer["usr/local/bin/neo4j-schema-rollback"][1]
    packages = set()
    for p in paragraphs:
        fields = dict(line.split(": ", 1) for line in p.splitlines()
                      if ": " in line and not line.startswith(" "))
        packages.add((fields["Package"], fields["Version"], fields["Architecture"]))
    debs = {(c["name"], c["version"], c["purl"].rsplit("arch=", 1)[1])
            for c in doc["components"] if c["bom-ref"].startswith("deb:")}
    assert debs == packages
    [app] = [c for c in doc["components"] if c["bom-ref"] == "binary"]
    assert app["hashes"][0]["content"] == hashlib.sha256(binary).hexdigest() == \
        hashlib.sha256((release / binary_name).read_bytes()).hexdigest()


def test_the_github_actions_steps_install_and_run_the_release_binary(release: Path,
                                                                     tmp_path: Path) -> None:
    """action/install on a Linux x86_64 runner, from this release folder: the x86_64 binary,
    checked against SHA256SUMS; action/run with it ends with the tool's exit code (3: nothing
    listens) and writes the JUnit report asked for."""
    from netutil import free_port

    output = tmp_path / "github-output"
    output.write_text("")
    runner = {"PATH": os.environ["PATH"], "RUNNER_OS": "Linux", "RUNNER_ARCH": "X64",
              "RUNNER_TEMP": str(tmp_path), "GITHUB_OUTPUT": str(output),
              "NSR_VERSION": version(), "NSR_RELEASE_URL": release.as_uri()}
    install = subprocess.run([str(ROOT / "action" / "install")], env=runner,
                             capture_output=True, text=True, check=False)
    assert install.returncode == 0, install.stdout + install.stderr
    [path] = [line.split("=", 1)[1] for line in output.read_text().splitlines()]
    assert Path(path).read_bytes() == (release / names("amd64")[0]).read_bytes()
    junit = tmp_path / "report.xml"
    run = subprocess.run([str(ROOT / "action" / "run")], env={
        **runner, "NSR_BINARY": path, "NSR_COMMAND": "status", "NSR_JUNIT": str(junit),
        "NSR_ARGS": f"--uri\nbolt://127.0.0.1:{free_port()}\n--password\nx"},
        capture_output=True, text=True, check=False)
    assert run.returncode == 3, run.stdout + run.stderr
    assert output.read_text().splitlines()[-1] == "exit-code=3"
    assert b'<testcase classname="neo4j-schema-rollback.status" name="run"' in junit.read_bytes()

def fresh_clone(tmp_path: Path, origin: str | None) -> Path:
    """A clone of this repository's HEAD whose origin remote is `origin` (fetched from here
    through a url.insteadOf rewrite, which is not kept in the clone), or has none."""
    clone = tmp_path / "clone"
    url = origin or str(ROOT)
    subprocess.run(["git", "-c", f"url.{ROOT}.insteadOf={url}", "clone", "--quiet",
                    "--no-checkout", url, str(clone)], check=True, capture_output=True)
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()
    subprocess.run(["git", "-C", str(clone), "checkout", "--quiet", head], check=True)
    if origin is None:
        subprocess.run(["git", "-C", str(clone), "remote", "remove", "origin"], check=True)
    return clone


def release_in(clone: Path) -> subprocess.CompletedProcess[str]:
    """scripts/release --no-build in the clone with no NSR_* or GITHUB_* variables."""
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"),
           "UV_PYTHON_DOWNLOADS": "never"}
    return subprocess.run([str(clone / "scripts" / "release"), "--no-build", "--out",
                           str(clone / "out")], cwd=clone, env=env, capture_output=True,
                          text=True, check=False, timeout=600)


@pytest.mark.parametrize("origin", ["https://github.com/example/neo4j-schema-rollback",
                                    "git@github.com:example/neo4j-schema-rollback.git"])
def test_release_in_a_fresh_clone_takes_the_source_from_origin(tmp_path: Path,
                                                               origin: str) -> None:
    """No NSR_SOURCE: the image's source label is the origin remote as an https URL; the run
    goes on to the binaries (none in a fresh clone, so it stops there, before anything slow)."""
    proc = release_in(fresh_clone(tmp_path, origin))
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        "release: source: https://github.com/example/neo4j-schema-rollback",
        f"release: error: no dist/neo4j-schema-rollback-{version()}-linux-x86_64 "
        "(scripts/build-binary --portable writes it)"]


def test_release_in_a_clone_without_origin_asks_for_nsr_source(tmp_path: Path) -> None:
    """No NSR_SOURCE and no origin remote: one line saying so, exit 1."""
    proc = release_in(fresh_clone(tmp_path, None))
    assert (proc.returncode, proc.stderr) == (1, (
        "source: error: no source URL for the image's label: the clone has no origin remote; "
        "set NSR_SOURCE\n"))

