"""Merge single-platform OCI image archives into one OCI layout directory holding a multi-arch
image index that lists every platform's manifest unchanged (same bytes, same digests), named
REF in the layout, for `skopeo copy --all --preserve-digests oci:DIR:REF docker://…`. Prints
the image index's digest.

usage: python build/image/oci_index.py OUT_DIR REF ARCHIVE..."""

from __future__ import annotations

import json
import sys
import tarfile
from pathlib import Path

from oci import INDEX, canonical, sha256


def merge(out: Path, ref: str, archives: list[Path]) -> str:
    blobs = out / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    manifests = []
    for archive in archives:
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                if member.isfile() and member.name.startswith("blobs/sha256/"):
                    handle = tar.extractfile(member)
                    assert handle is not None
                    (blobs / member.name.rsplit("/", 1)[1]).write_bytes(handle.read())
            index_file = tar.extractfile("index.json")
            assert index_file is not None
            for descriptor in json.loads(index_file.read())["manifests"]:
                descriptor.pop("annotations", None)   # the per-archive ref name
                manifests.append(descriptor)
    platforms = [json.dumps(m["platform"], sort_keys=True) for m in manifests]
    if len(set(platforms)) != len(platforms):
        raise SystemExit(f"oci_index: two archives for one platform: {platforms}")
    index = canonical({"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests})
    (blobs / sha256(index).removeprefix("sha256:")).write_bytes(index)
    layout = {"schemaVersion": 2, "mediaType": INDEX,
              "manifests": [{"mediaType": INDEX, "digest": sha256(index), "size": len(index),
                             "annotations": {"org.opencontainers.image.ref.name": ref}}]}
    (out / "index.json").write_bytes(canonical(layout))
    (out / "oci-layout").write_bytes(canonical({"imageLayoutVersion": "1.0.0"}))
    return sha256(index)


if __name__ == "__main__":
    print(merge(Path(sys.argv[1]), sys.argv[2], [Path(a) for a in sys.argv[3:]]))
