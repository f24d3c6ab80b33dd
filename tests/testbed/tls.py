"""A private CA and a server certificate for Bolt TLS (generated with ``openssl``)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from .errors import TestbedError

_EXT = """basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost
"""


def _run(cmd: list[str], cwd: Path) -> None:
    res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise TestbedError(f"openssl failed ({' '.join(cmd[:3])}): {res.stderr.strip()[:300]}")


def make_certificates(tls_dir: Path) -> tuple[Path, Path]:
    """Create ``ca.crt``/``ca.key`` and ``bolt/{private.key,public.crt}`` (an RSA key in PKCS#8
    PEM, as Neo4j wants it; SAN ``IP:127.0.0.1, DNS:localhost``). Returns (CA cert, bolt dir)."""
    openssl = shutil.which("openssl")
    if not openssl:
        raise TestbedError("--tls needs openssl on PATH, but it was not found")
    shutil.rmtree(tls_dir, ignore_errors=True)
    bolt = tls_dir / "bolt"
    (bolt / "trusted").mkdir(parents=True)
    (bolt / "revoked").mkdir()
    (tls_dir / "server.ext").write_text(_EXT)
    _run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
          "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=neo4j-testbed CA",
          "-addext", "basicConstraints=critical,CA:TRUE",
          "-addext", "keyUsage=critical,keyCertSign,cRLSign"], tls_dir)
    _run([openssl, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "bolt/private.key",
          "-out", "server.csr", "-subj", "/CN=127.0.0.1"], tls_dir)
    _run([openssl, "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
          "-CAcreateserial", "-days", "30", "-extfile", "server.ext",
          "-out", "bolt/public.crt"], tls_dir)
    shutil.copy(tls_dir / "ca.crt", bolt / "trusted" / "ca.crt")
    return tls_dir / "ca.crt", bolt
