"""A test certificate authority made with the openssl command: server certificates for loopback."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def _openssl(*args: str, cwd: Path) -> None:
    """Run openssl; RuntimeError with its output when it fails."""
    binary = shutil.which("openssl")
    if binary is None:
        raise RuntimeError("openssl is not installed (.ci/setup installs it)")
    done = subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args[:2])} failed: {done.stderr.strip()}")


@dataclass(frozen=True)
class TestCA:
    """A CA key and certificate in folder; issue() signs server certificates with it."""

    __test__ = False  # not a pytest test class
    folder: Path
    name: str

    @property
    def cert(self) -> Path:
        """The CA certificate (PEM): what a client's ca_file points at."""
        return self.folder / f"{self.name}.pem"

    @classmethod
    def make(cls, folder: Path, name: str = "ca") -> TestCA:
        """A new CA valid for two days."""
        folder.mkdir(parents=True, exist_ok=True)
        _openssl("req", "-x509", *_EC, "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2",
                 "-subj", f"/CN=ticketgate test CA {name}",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                 "-addext", "subjectKeyIdentifier=hash", cwd=folder)
        return cls(folder, name)

    def issue(self, name: str, dns: tuple[str, ...] = (), ips: tuple[str, ...] = ()) -> tuple[Path, Path]:
        """(certificate, key) for a server known by these DNS names and IP addresses."""
        names = [f"DNS:{d}" for d in dns] + [f"IP:{i}" for i in ips]
        (self.folder / f"{name}.ext").write_text(
            f"subjectAltName={','.join(names)}\nbasicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
            "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n")
        _openssl("req", *_EC, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={(dns or ips)[0]}", cwd=self.folder)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", self.cert.name, "-CAkey",
                 f"{self.name}.key", "-CAcreateserial", "-out", f"{name}.pem", "-days", "2",
                 "-extfile", f"{name}.ext", cwd=self.folder)
        return self.folder / f"{name}.pem", self.folder / f"{name}.key"
