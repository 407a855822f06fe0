"""A small PKI for the simulator: one CA, the apiserver's serving cert, client certs, SA keys."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVICE_IP = "10.96.0.1"
API_SANS_DNS = ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"]
API_SANS_IP = ["127.0.0.1", SERVICE_IP]

#: client identities: file stem -> (CN, O)
CLIENTS = {
    "admin": ("kubernetes-admin", "system:masters"),
    "controller-manager": ("system:kube-controller-manager", ""),
    "scheduler": ("system:kube-scheduler", ""),
    "kwok": ("kwok-controller", "system:masters"),
    "apiserver-kubelet-client": ("kube-apiserver-kubelet-client", "system:masters"),
    "front-proxy-client": ("front-proxy-client", ""),
}


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(k) -> bytes:
    return k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _pem_cert(c: x509.Certificate) -> bytes:
    return c.public_bytes(serialization.Encoding.PEM)


def _name(cn: str, o: str = "") -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if o:
        attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, o))
    return x509.Name(attrs)


def _write(path: Path, data: bytes, private: bool = False) -> None:
    path.write_bytes(data)
    if private:
        path.chmod(0o600)


class PKI:
    """Files under `root`: ca.{crt,key}, apiserver.{crt,key}, <client>.{crt,key}, sa.{key,pub}."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def p(self, name: str) -> Path:
        return self.root / name

    def exists(self) -> bool:
        need = ["ca.crt", "ca.key", "apiserver.crt", "apiserver.key", "sa.key", "sa.pub"]
        need += [f"{c}.crt" for c in CLIENTS] + [f"{c}.key" for c in CLIENTS]
        return all(self.p(n).exists() for n in need)

    def create(self, days: int = 3650) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o700)
        now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
        until = now + dt.timedelta(days=days)

        ca_key = _key()
        ca_name = _name("appliance-sim-ca")
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(until)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        _write(self.p("ca.crt"), _pem_cert(ca))
        _write(self.p("ca.key"), _pem_key(ca_key), private=True)

        def leaf(stem: str, cn: str, o: str, server: bool) -> None:
            k = _key()
            b = (
                x509.CertificateBuilder()
                .subject_name(_name(cn, o))
                .issuer_name(ca_name)
                .public_key(k.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now)
                .not_valid_after(until)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(True, False, True, False, False, False, False, False, False), critical=True)
                .add_extension(
                    x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH] if server else [ExtendedKeyUsageOID.CLIENT_AUTH]),
                    critical=False,
                )
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            )
            if server:
                sans = [x509.DNSName(d) for d in API_SANS_DNS] + [x509.IPAddress(ipaddress.ip_address(i)) for i in API_SANS_IP]
                b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
            c = b.sign(ca_key, hashes.SHA256())
            _write(self.p(f"{stem}.crt"), _pem_cert(c))
            _write(self.p(f"{stem}.key"), _pem_key(k), private=True)

        leaf("apiserver", "kube-apiserver", "", server=True)
        for stem, (cn, o) in CLIENTS.items():
            leaf(stem, cn, o, server=False)

        sa = _key()
        _write(self.p("sa.key"), _pem_key(sa), private=True)
        _write(self.p("sa.pub"), sa.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))

    def kubeconfig(self, client: str, server: str, cluster: str, context: str, user: str) -> str:
        b64 = lambda p: base64.b64encode(self.p(p).read_bytes()).decode()  # noqa: E731
        cfg = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": cluster, "cluster": {"server": server, "certificate-authority-data": b64("ca.crt")}}],
            "users": [{"name": user, "user": {"client-certificate-data": b64(f"{client}.crt"), "client-key-data": b64(f"{client}.key")}}],
            "contexts": [{"name": context, "context": {"cluster": cluster, "user": user}}],
            "current-context": context,
            "preferences": {},
        }
        return yaml.safe_dump(cfg, sort_keys=False)
