"""The GitHub Action (action.yml): its steps are action/install and action/run, run here as the
runner would, against a release folder laid out as scripts/release lays it out (asset names,
SHA256SUMS by sha256sum) with stand-in binaries; every shell step passes shellcheck. The real
release binaries go through the same steps in tests/integration/test_release.py."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ACTION = yaml.safe_load((ROOT / "action.yml").read_text())
VERSION = "0.1.0"
ASSETS = [f"neo4j-schema-rollback-{VERSION}-{name}" for name in
          ("linux-x86_64", "linux-arm64", "macos-arm64", "macos-x86_64", "windows-x86_64.exe")]
# Stands in for a release binary: says what it was given, exits with $STUB_EXIT.
STUB = "#!/bin/sh\necho \"$0 $*\"\nexit \"${STUB_EXIT:-0}\"\n"


def release_folder(folder: Path) -> Path:
    """A release folder as scripts/release writes it: the assets and SHA256SUMS of them."""
    folder.mkdir()
    for name in ASSETS:
        (folder / name).write_text(STUB.replace("$0", name))
    lines = [f"{hashlib.sha256((folder / n).read_bytes()).hexdigest()}  {n}"
             for n in sorted(ASSETS)]
    (folder / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    return folder


def step(name: str, tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess[str],
                                                          dict[str, str]]:
    """Run one of the action's scripts with the runner's variables; return it and the
    outputs it wrote to $GITHUB_OUTPUT."""
    output = tmp_path / f"output-{name}"
    output.write_text("")
    runner = {"PATH": os.environ["PATH"], "RUNNER_TEMP": str(tmp_path / "runner-temp"),
              "GITHUB_OUTPUT": str(output), "GITHUB_SERVER_URL": "https://github.invalid",
              "NSR_REPOSITORY": "owner/neo4j-schema-rollback"}
    (tmp_path / "runner-temp").mkdir(exist_ok=True)
    proc = subprocess.run([str(ROOT / "action" / name)], env={**runner, **env},
                          capture_output=True, text=True, check=False, timeout=60)
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines())
    return proc, outputs


@pytest.fixture
def release(tmp_path: Path) -> Path:
    return release_folder(tmp_path / "release")


@pytest.mark.parametrize(("runner_os", "arch", "asset"), [
    ("Linux", "X64", ASSETS[0]), ("Linux", "ARM64", ASSETS[1]), ("macOS", "ARM64", ASSETS[2]),
    ("macOS", "X64", ASSETS[3]), ("Windows", "X64", ASSETS[4])])
def test_install_picks_the_runners_binary_and_checks_it(release: Path, tmp_path: Path,
                                                        runner_os: str, arch: str,
                                                        asset: str) -> None:
    """Each OS and architecture gets its own asset, checked against SHA256SUMS, executable,
    its path the step's `path` output."""
    proc, outputs = step("install", tmp_path, RUNNER_OS=runner_os, RUNNER_ARCH=arch,
                         NSR_VERSION=VERSION, NSR_RELEASE_URL=release.as_uri())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    path = Path(outputs["path"])
    assert path == tmp_path / "runner-temp" / f"neo4j-schema-rollback-{VERSION}" / asset
    assert path.read_bytes() == (release / asset).read_bytes()
    assert os.access(path, os.X_OK)
    assert proc.stderr == f"neo4j-schema-rollback: {asset} checked against SHA256SUMS\n"


def test_install_takes_the_version_of_the_actions_tag(release: Path, tmp_path: Path) -> None:
    """Used as owner/repo@v0.1.0 without a version input: version 0.1.0."""
    proc, outputs = step("install", tmp_path, RUNNER_OS="Linux", RUNNER_ARCH="X64",
                         NSR_ACTION_REF="v0.1.0", NSR_RELEASE_URL=release.as_uri())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert outputs["path"].endswith(ASSETS[0])


def test_install_refuses_a_binary_that_does_not_match_its_sum(release: Path,
                                                               tmp_path: Path) -> None:
    """A changed byte: the step fails with an ::error and gives no path."""
    (release / ASSETS[0]).write_text(STUB + "# changed\n")
    proc, outputs = step("install", tmp_path, RUNNER_OS="Linux", RUNNER_ARCH="X64",
                         NSR_VERSION=VERSION, NSR_RELEASE_URL=release.as_uri())
    assert proc.returncode == 1
    assert proc.stdout.endswith(f"::error title=neo4j-schema-rollback action::{ASSETS[0]} does "
                                "not match its SHA256SUMS line: not used\n")
    assert outputs == {}


@pytest.mark.parametrize(("change", "message"), [
    ("no-sum", f"{ASSETS[0]} is not in RELEASE/SHA256SUMS"),
    ("no-asset", f"cannot download RELEASE/{ASSETS[0]}"),
    ("no-version", "no version: set the action's version input, or use the action at a "
                   "release tag (@v0.1.0), not at 'main'"),
])
def test_install_fails_clearly(release: Path, tmp_path: Path, change: str,
                               message: str) -> None:
    """No line in SHA256SUMS, no asset, no version to download: one ::error, exit 1."""
    env = {"RUNNER_OS": "Linux", "RUNNER_ARCH": "X64", "NSR_VERSION": VERSION,
           "NSR_RELEASE_URL": release.as_uri()}
    if change == "no-sum":
        sums = release / "SHA256SUMS"
        sums.write_text("".join(line + "\n" for line in sums.read_text().splitlines()
                                if not line.endswith(ASSETS[0])))
    elif change == "no-asset":
        (release / ASSETS[0]).unlink()
    else:
        env.update(NSR_VERSION="", NSR_ACTION_REF="main")
    proc, outputs = step("install", tmp_path, **env)
    assert proc.returncode == 1
    expected = message.replace("RELEASE", release.as_uri())
    assert proc.stdout.endswith(f"::error title=neo4j-schema-rollback action::{expected}\n")
    assert outputs == {}


@pytest.mark.parametrize("code", [0, 1, 4])
def test_run_passes_the_arguments_and_ends_with_the_tools_exit_code(tmp_path: Path,
                                                                    code: int) -> None:
    """One argument per line (blank lines and a Windows line end dropped), --report junit
    from the junit input, the tool's exit code as the step's and as `exit-code`."""
    stub = release_folder(tmp_path / "release") / ASSETS[0]
    stub.chmod(0o755)
    proc, outputs = step("run", tmp_path, NSR_BINARY=str(stub), NSR_COMMAND="rollback",
                         NSR_ARGS="--yes\n\n--to\r\n1\n--log-format\njson\n",
                         NSR_JUNIT="out dir/report.xml", STUB_EXIT=str(code))
    assert proc.returncode == code
    assert proc.stdout == (f"{ASSETS[0]} rollback --yes --to 1 --log-format json "
                           "--report junit=out dir/report.xml\n")
    assert outputs == {"exit-code": str(code)}


def test_run_writes_the_log_to_the_log_file(tmp_path: Path) -> None:
    """With log-file, stdout goes to that file."""
    stub = release_folder(tmp_path / "release") / ASSETS[0]
    stub.chmod(0o755)
    log = tmp_path / "log.jsonl"
    proc, outputs = step("run", tmp_path, NSR_BINARY=str(stub), NSR_COMMAND="status",
                         NSR_LOG_FILE=str(log))
    assert (proc.returncode, proc.stdout, outputs) == (0, "", {"exit-code": "0"})
    assert log.read_text() == f"{ASSETS[0]} status\n"


def test_run_refuses_another_command(tmp_path: Path) -> None:
    """Only apply, rollback and status: anything else is exit 2 before the binary runs."""
    proc, outputs = step("run", tmp_path, NSR_BINARY="/nonexistent", NSR_COMMAND="statements")
    assert (proc.returncode, outputs) == (2, {})
    assert proc.stdout == ("::error title=neo4j-schema-rollback action::command must be "
                           "apply, rollback or status, not 'statements'\n")


def test_the_action_runs_its_two_scripts_with_their_inputs() -> None:
    """action.yml: a composite of the install and run steps, each given its inputs by env,
    every input documented and used."""
    assert ACTION["runs"]["using"] == "composite"
    install, run = ACTION["runs"]["steps"]
    assert (install["id"], install["run"]) == ("install", '"$GITHUB_ACTION_PATH/action/install"')
    assert (run["id"], run["run"]) == ("run", '"$GITHUB_ACTION_PATH/action/run"')
    used = " ".join(str(v) for s in (install, run) for v in s["env"].values())
    for name, spec in ACTION["inputs"].items():
        assert spec["description"]
        assert f"inputs.{name}" in used, name
    assert run["env"]["NSR_BINARY"] == "${{ steps.install.outputs.path }}"


def test_every_shell_step_passes_shellcheck(tmp_path: Path) -> None:
    """The scripts, and each run: of action.yml as bash, pass shellcheck (style level)."""
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is missing: scripts/install-deps installs it"
    files = [ROOT / "action" / "install", ROOT / "action" / "run"]
    for index, spec in enumerate(ACTION["runs"]["steps"]):
        assert spec["shell"] == "bash"
        extracted = tmp_path / f"step-{index}.sh"
        extracted.write_text(f"#!/usr/bin/env bash\n{spec['run']}\n")
        files.append(extracted)
    proc = subprocess.run([shellcheck, "-S", "style", *map(str, files)], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stdout
