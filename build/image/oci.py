"""An OCI image archive (an OCI image layout in a tar, as `podman load`, `skopeo copy
oci-archive:` and registries take it) written from one layer, byte for byte reproducible."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time
from dataclasses import dataclass
from typing import Any

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def rfc3339(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


@dataclass(frozen=True)
class ImageSpec:
    """What the image config says: platform, process and labels."""

    arch: str               # OCI name: amd64, arm64
    entrypoint: list[str]
    cmd: list[str]
    user: str
    env: list[str]
    labels: dict[str, str]
    created: int            # SOURCE_DATE_EPOCH

    @property
    def platform(self) -> dict[str, str]:
        platform = {"architecture": self.arch, "os": "linux"}
        if self.arch == "arm64":
            platform["variant"] = "v8"
        return platform


@dataclass(frozen=True)
class Image:
    """The blobs of one image, by digest, and the manifest's descriptor."""

    blobs: dict[str, bytes]
    manifest_digest: str
    manifest_size: int
    config_digest: str
    spec: ImageSpec


def build(spec: ImageSpec, layer: bytes, layer_gz: bytes, history: str) -> Image:
    """Config and manifest for the one layer (`layer` uncompressed, `layer_gz` its gzip)."""
    config = {
        "created": rfc3339(spec.created),
        **spec.platform,
        "config": {"User": spec.user, "Env": spec.env, "Entrypoint": spec.entrypoint,
                   "Cmd": spec.cmd, "WorkingDir": "/", "Labels": spec.labels},
        "rootfs": {"type": "layers", "diff_ids": [sha256(layer)]},
        "history": [{"created": rfc3339(spec.created), "created_by": history}],
    }
    config_raw = canonical(config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": CONFIG, "digest": sha256(config_raw), "size": len(config_raw)},
        "layers": [{"mediaType": LAYER, "digest": sha256(layer_gz), "size": len(layer_gz)}],
        "annotations": {k: v for k, v in spec.labels.items()
                        if k.startswith("org.opencontainers.image.")},
    }
    manifest_raw = canonical(manifest)
    blobs = {sha256(config_raw): config_raw, sha256(layer_gz): layer_gz,
             sha256(manifest_raw): manifest_raw}
    return Image(blobs, sha256(manifest_raw), len(manifest_raw), sha256(config_raw), spec)


def index(image: Image, ref_name: str) -> bytes:
    return canonical({
        "schemaVersion": 2,
        "mediaType": INDEX,
        "manifests": [{"mediaType": MANIFEST, "digest": image.manifest_digest,
                       "size": image.manifest_size, "platform": image.spec.platform,
                       "annotations": {"org.opencontainers.image.ref.name": ref_name}}],
    })


def archive(image: Image, ref_name: str) -> bytes:
    """The OCI layout as a tar: oci-layout, index.json, blobs/sha256/*; fixed order and times."""
    files = {"oci-layout": canonical({"imageLayoutVersion": "1.0.0"}),
             "index.json": index(image, ref_name)}
    for digest, blob in image.blobs.items():
        files["blobs/sha256/" + digest.removeprefix("sha256:")] = blob
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as out:
        for directory in ("blobs", "blobs/sha256"):
            info = tarfile.TarInfo(directory)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, image.spec.created
            out.addfile(info)
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(files[name]), 0o644, image.spec.created
            out.addfile(info, io.BytesIO(files[name]))
    return buffer.getvalue()
