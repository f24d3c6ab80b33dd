"""build/portable/pgo-task: the profile of the x86_64 CPython's profile-guided build runs the
tool's start-up paths, and writes its stamp only when every command exited as expected (CPython's
make ignores the task's exit status, so build-python trusts the stamp alone)."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TASK = ROOT / "build" / "portable" / "pgo-task"


def _profile_dir(tmp_path: Path, app: Path) -> Path:
    """A PROFILE_DIR as build/portable/build binds it at /nsr-profile."""
    profile = tmp_path / "profile"
    profile.mkdir()
    (profile / "app").symlink_to(app)
    (profile / "site-packages").symlink_to(sysconfig.get_paths()["purelib"])
    (profile / "tables").symlink_to(ROOT / "tests" / "tables")
    return profile


def _run(profile: Path, stamp: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(TASK), str(profile), str(stamp)],
                          capture_output=True, text=True, timeout=300, check=False)


def test_every_command_runs_three_times_and_the_stamp_counts_them(tmp_path: Path) -> None:
    """With the tool and its dependencies in place, all 12 commands run 3 times: stamp written."""
    stamp = tmp_path / "pgo-task.ok"
    result = _run(_profile_dir(tmp_path, ROOT / "app"), stamp)
    assert result.returncode == 0, result.stderr
    assert stamp.read_text(encoding="utf-8") == "36 runs\n"
    assert result.stderr == "pgo-task: 36 runs of the tool\n"


def test_a_command_that_fails_leaves_no_stamp(tmp_path: Path) -> None:
    """Without the tool the first command exits 1, not 0: exit 1, a stale stamp removed."""
    empty = tmp_path / "no-app"
    empty.mkdir()
    stamp = tmp_path / "pgo-task.ok"
    stamp.write_text("36 runs\n", encoding="utf-8")  # an earlier build's
    result = _run(_profile_dir(tmp_path, empty), stamp)
    assert result.returncode == 1
    assert not stamp.exists()
    assert result.stderr.startswith("pgo-task: --version exited 1, not 0:\n")
    assert "No module named neo4j_schema_rollback" in result.stderr
