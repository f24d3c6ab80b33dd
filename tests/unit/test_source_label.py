"""The image's source label: NSR_SOURCE, GitHub Actions' repository, or the origin remote as
an https URL (build/image/source_label.py)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def source_label() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "source_label", ROOT / "build" / "image" / "source_label.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["source_label"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("remote", "url"), [
    ("https://github.com/o/r.git", "https://github.com/o/r"),
    ("https://user:token@github.com/o/r", "https://github.com/o/r"),
    ("http://git.example.org:8080/group/sub/r.git/", "https://git.example.org/group/sub/r"),
    ("git@github.com:o/r.git", "https://github.com/o/r"),
    ("github.com:o/r", "https://github.com/o/r"),
    ("ssh://git@gitlab.example.org:2222/o/r.git", "https://gitlab.example.org/o/r"),
    ("git://example.org/o/r", "https://example.org/o/r"),
    ("/srv/git/r.git", None),
    ("file:///srv/git/r.git", None),
    ("../r", None),
])
def test_remotes_as_web_addresses(remote: str, url: str | None) -> None:
    """scp-like, ssh, git and http(s) remotes become https URLs without credentials or .git;
    a path does not."""
    assert source_label().https_url(remote) == url


def test_nsr_source_then_github_then_origin(tmp_path: Path) -> None:
    """NSR_SOURCE wins, then GitHub Actions' variables, then the origin remote."""
    module = source_label()
    subprocess.run(["git", "init", "--quiet", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "remote", "add", "origin",
                    "git@github.com:o/r.git"], check=True)
    github = {"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "g/h"}
    assert module.source_url({"NSR_SOURCE": "https://x/y", **github}, tmp_path) == "https://x/y"
    assert module.source_url(github, tmp_path) == "https://github.com/g/h"
    assert module.source_url({}, tmp_path) == "https://github.com/o/r"
    subprocess.run(["git", "-C", str(tmp_path), "remote", "set-url", "origin", "/srv/r"],
                   check=True)
    with pytest.raises(module.NoSource, match="origin remote '/srv/r' is not a web address"):
        module.source_url({}, tmp_path)
