"""The admission webhook's TLS: a self-signed serving certificate made with ``cryptography``.

The apiserver learns the certificate through ``caBundle`` in the ValidatingWebhookConfiguration
that kopf manages (``settings.admission.managed``), so no cert-manager is needed.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def self_signed(hostnames: Iterable[str], days: int = 3650) -> tuple[bytes, bytes]:
    """A serving certificate (PEM) and its key for ``hostnames`` (DNS names or IPs)."""
    names = [h for h in dict.fromkeys(hostnames) if h and h not in ("0.0.0.0", "::")]
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for host in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0] if names else "jobline-webhook")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), pem_key


def write_pair(directory: Path, hostnames: Iterable[str]) -> tuple[Path, Path, bytes]:
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = self_signed(hostnames)
    certfile, keyfile = directory / "webhook.crt", directory / "webhook.key"
    certfile.write_bytes(cert)
    keyfile.write_bytes(key)
    keyfile.chmod(0o600)
    return certfile, keyfile, cert
