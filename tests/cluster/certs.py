"""Certificates for the local control plane, made with ``cryptography``.

One CA signs everything: the apiserver's serving cert (127.0.0.1, localhost and the in-cluster
names), client certs for the admin (``system:masters``), the controller-manager, the scheduler and
the apiserver's kubelet client, and the local node's serving cert. The service-account token
signing key is a separate EC key pair. Keys are P-256 EC: fast to make, accepted everywhere.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = dt.timedelta(days=365)


@dataclass(frozen=True)
class Pair:
    cert: Path
    key: Path


@dataclass(frozen=True)
class PKI:
    dir: Path
    ca: Pair
    apiserver: Pair
    admin: Pair
    controller_manager: Pair
    scheduler: Pair
    kubelet_client: Pair
    node_serving: Pair
    sa_key: Path
    sa_pub: Path


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    path.chmod(0o600)


def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _issue(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    cn: str,
    *,
    org: str | None = None,
    server: bool = False,
    client: bool = False,
    sans: tuple[str, ...] = (),
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    now = dt.datetime.now(dt.UTC)
    usages = []
    if server:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    if client:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn, org))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_encipherment=False,
                content_commitment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    )
    if sans:
        names: list[x509.GeneralName] = []
        for san in sans:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(san)))
            except ValueError:
                names.append(x509.DNSName(san))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def _save(dir: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> Pair:
    pair = Pair(dir / f"{stem}.crt", dir / f"{stem}.key")
    pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(pair.key, key)
    return pair


def ensure_pki(dir: Path) -> PKI:
    """Create the PKI in ``dir`` unless it is already complete there, and describe it."""
    dir.mkdir(parents=True, exist_ok=True)
    p = lambda stem: Pair(dir / f"{stem}.crt", dir / f"{stem}.key")  # noqa: E731
    pki = PKI(
        dir=dir,
        ca=p("ca"),
        apiserver=p("apiserver"),
        admin=p("admin"),
        controller_manager=p("controller-manager"),
        scheduler=p("scheduler"),
        kubelet_client=p("apiserver-kubelet-client"),
        node_serving=p("node-serving"),
        sa_key=dir / "sa.key",
        sa_pub=dir / "sa.pub",
    )
    files = [
        f
        for pair in (
            pki.ca,
            pki.apiserver,
            pki.admin,
            pki.controller_manager,
            pki.scheduler,
            pki.kubelet_client,
            pki.node_serving,
        )
        for f in (pair.cert, pair.key)
    ]
    if all(f.exists() for f in [*files, pki.sa_key, pki.sa_pub]):
        return pki

    ca_key = _key()
    now = dt.datetime.now(dt.UTC)
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("jobline-test-ca"))
        .issuer_name(_name("jobline-test-ca"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_encipherment=False,
                content_commitment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    _save(dir, "ca", ca_cert, ca_key)
    api_sans = (
        "127.0.0.1",
        "localhost",
        "10.96.0.1",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    )
    _save(dir, "apiserver", *_issue(ca_cert, ca_key, "kube-apiserver", server=True, sans=api_sans))
    _save(dir, "admin", *_issue(ca_cert, ca_key, "jobline-admin", org="system:masters", client=True))
    _save(dir, "controller-manager", *_issue(ca_cert, ca_key, "system:kube-controller-manager", client=True))
    _save(dir, "scheduler", *_issue(ca_cert, ca_key, "system:kube-scheduler", client=True))
    _save(
        dir,
        "apiserver-kubelet-client",
        *_issue(ca_cert, ca_key, "kube-apiserver-kubelet-client", org="system:masters", client=True),
    )
    _save(
        dir,
        "node-serving",
        *_issue(
            ca_cert, ca_key, "jobline-local", server=True, sans=("127.0.0.1", "localhost", "jobline-local")
        ),
    )
    sa = _key()
    _write_key(pki.sa_key, sa)
    pki.sa_pub.write_bytes(
        sa.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return pki


def issue_pair(
    pki: PKI,
    stem: str,
    cn: str,
    *,
    org: str | None = None,
    server: bool = False,
    client: bool = False,
    sans: tuple[str, ...] = (),
) -> Pair:
    """Sign one more certificate with the cluster's CA (the real node's, made when its IP is known)."""
    ca_cert = x509.load_pem_x509_certificate(pki.ca.cert.read_bytes())
    ca_key = serialization.load_pem_private_key(pki.ca.key.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    return _save(
        pki.dir, stem, *_issue(ca_cert, ca_key, cn, org=org, server=server, client=client, sans=sans)
    )


def write_kubeconfig(
    path: Path, server: str, ca: Path, pair: Pair, user: str, tls_server_name: str = ""
) -> None:
    """Write a self-contained kubeconfig (certificates embedded, so it can be copied anywhere)."""
    b64 = lambda p: base64.b64encode(p.read_bytes()).decode()  # noqa: E731
    cluster: dict[str, str] = {"server": server, "certificate-authority-data": b64(ca)}
    if tls_server_name:
        cluster["tls-server-name"] = tls_server_name
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "jobline-test", "cluster": cluster}],
        "users": [
            {
                "name": user,
                "user": {"client-certificate-data": b64(pair.cert), "client-key-data": b64(pair.key)},
            }
        ],
        "contexts": [
            {
                "name": "jobline-test",
                "context": {"cluster": "jobline-test", "user": user, "namespace": "default"},
            }
        ],
        "current-context": "jobline-test",
    }
    path.write_text(json.dumps(config, indent=2))
    path.chmod(0o600)
