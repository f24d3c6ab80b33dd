"""The init-container images under test: built by scripts/build-image from the release binaries
(one per architecture, once per pytest process), read back as OCI archives, and run with rootful
podman under the project's own containers.conf and storage."""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import json
import os
import resource
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tool import ensure_binary, version

ROOT = Path(__file__).resolve().parents[2]
ARCHES = ("amd64", "arm64")
BINARY_ARCH = {"amd64": "x86_64", "arm64": "arm64"}
SOURCE_LABEL = f"file://{ROOT}"
CONTAINERS_CONF = Path(__file__).resolve().parent / "containers" / "containers.conf"
CACHE = Path(os.environ.get("NSR_CACHE_DIR") or "/var/cache/neo4j-schema-rollback")
WORK = ROOT / ".testbed" / "image"


def asset(arch: str) -> Path:
    """dist/neo4j-schema-rollback-<version>-linux-<arch>, the release binary the image carries
    (tool.ensure_binary: rebuilt with scripts/build-binary --portable when older than its
    sources; a failure fails the test)."""
    path = ensure_binary(arch=BINARY_ARCH[arch])
    assert Path(f"{path}.sources.json").exists(), f"{path.name}.sources.json is missing"
    return path


def build_image(arch: str, output: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """scripts/build-image for `arch` into `output`."""
    return subprocess.run(
        [str(ROOT / "scripts" / "build-image"), "--arch", arch, "--binary", str(asset(arch)),
         "--output", str(output)],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=900,
        env={**os.environ, "NSR_SOURCE": SOURCE_LABEL, **env})


@functools.cache
def archive(arch: str) -> Path:
    """The image archive of `arch`, built once per pytest process."""
    output = WORK / f"{os.getpid()}" / f"neo4j-schema-rollback-{version()}-oci-{arch}.tar"
    proc = build_image(arch, output)
    assert proc.returncode == 0, f"scripts/build-image --arch {arch} failed:\n{proc.stderr}"
    return output


@dataclass
class OciArchive:
    """An OCI image archive read into memory: index, manifest, config and the one layer."""

    index: dict[str, Any]
    manifest: dict[str, Any]
    config: dict[str, Any]
    blobs: dict[str, bytes]
    layer: dict[str, tuple[tarfile.TarInfo, bytes]]   # path -> (member, content)

    @classmethod
    def read(cls, path: Path) -> OciArchive:
        files = {}
        with tarfile.open(path) as outer:
            for member in outer.getmembers():
                handle = outer.extractfile(member)
                if handle is not None:
                    files[member.name] = handle.read()
        blobs = {"sha256:" + name.rsplit("/", 1)[1]: data for name, data in files.items()
                 if name.startswith("blobs/sha256/")}
        for digest, data in blobs.items():
            assert "sha256:" + hashlib.sha256(data).hexdigest() == digest, digest
        index = json.loads(files["index.json"])
        [descriptor] = index["manifests"]
        manifest = json.loads(blobs[descriptor["digest"]])
        config = json.loads(blobs[manifest["config"]["digest"]])
        [layer_descriptor] = manifest["layers"]
        raw = gzip.decompress(blobs[layer_descriptor["digest"]])
        assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(raw).hexdigest()]
        layer = {}
        with tarfile.open(fileobj=io.BytesIO(raw)) as inner:
            for member in inner.getmembers():
                handle = inner.extractfile(member) if member.isreg() else None
                layer[member.name] = (member, handle.read() if handle is not None else b"")
        return cls(index, manifest, config, blobs, layer)

    @property
    def digest(self) -> str:
        return str(self.index["manifests"][0]["digest"])

    def text(self, path: str) -> str:
        return self.layer[path][1].decode()


@functools.cache
def container_tools() -> None:
    """podman, runc, skopeo and qemu-aarch64 (binfmt) ready: scripts/container-tools."""
    proc = subprocess.run([str(ROOT / "scripts" / "container-tools")], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, f"scripts/container-tools failed:\n{proc.stderr}"
    wanted = {"nofile": 1024, "nproc": 4096}   # tests/integration/containers/containers.conf
    hard = {"nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[1],
            "nproc": resource.getrlimit(resource.RLIMIT_NPROC)[1]}
    for name, value in wanted.items():
        assert hard[name] == resource.RLIM_INFINITY or hard[name] >= value, (
            f"containers.conf asks for {name}={value}, above this machine's hard limit "
            f"{hard[name]}")


def podman_command(*args: str) -> list[str]:
    """podman with the project's containers.conf (via env, see podman_env) and its own storage
    under the cache, so the host's podman state is neither used nor changed."""
    return ["podman", "--root", str(CACHE / "podman" / "storage"),
            "--runroot", "/run/neo4j-schema-rollback/podman", "--storage-driver", "overlay",
            *args]


def podman_env() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}


def podman(*args: str, timeout: float = 300, stdin: str = "") -> subprocess.CompletedProcess[str]:
    container_tools()
    return subprocess.run(podman_command(*args), capture_output=True, text=True, input=stdin,
                          timeout=timeout, check=False, env=podman_env())


@functools.cache
def loaded(arch: str) -> str:
    """The image of `arch` loaded into podman's storage; returns its image ID (the config's
    digest)."""
    path = archive(arch)
    proc = podman("load", "--quiet", "--input", str(path))
    assert proc.returncode == 0, proc.stderr
    image_id = OciArchive.read(path).manifest["config"]["digest"].removeprefix("sha256:")
    inspect = podman("image", "inspect", "--format", "{{.Id}}", image_id)
    assert inspect.stdout.strip() == image_id, inspect.stdout + inspect.stderr
    return image_id
