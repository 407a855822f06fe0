"""X.509 for the appliance's own TLS: a CA, certificates it issues (ECDSA P-256, PEM), and a validity check.
Used by the simulator's PKI and by components that serve webhooks without cert-manager."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Pair:
    """A certificate and its private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return key_pem(self.key)


def key_pem(key) -> bytes:
    """A private key as unencrypted PKCS#8 PEM."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _name(cn: str, o: str = "") -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if o:
        attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, o))
    return x509.Name(attrs)


def _window(days: int) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)  # tolerate small clock skew
    return start, start + dt.timedelta(days=days)


def new_ca(cn: str, days: int = 3650) -> Pair:
    key = ec.generate_private_key(ec.SECP256R1())
    start, until = _window(days)
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn)).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(until)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return Pair(cert, key)


def issue(ca: Pair, cn: str, o: str = "", server: bool = False, dns: list[str] | None = None,
          ips: list[str] | None = None, days: int = 3650) -> Pair:
    """A leaf certificate signed by `ca`: server auth with SANs `dns`/`ips`, else client auth."""
    key = ec.generate_private_key(ec.SECP256R1())
    start, until = _window(days)
    b = (x509.CertificateBuilder().subject_name(_name(cn, o)).issuer_name(ca.cert.subject).public_key(key.public_key())
         .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(until)
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(x509.KeyUsage(True, False, True, False, False, False, False, False, False), critical=True)
         .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False))
    sans = [x509.DNSName(d) for d in dns or []] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips or []]
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return Pair(b.sign(ca.key, hashes.SHA256()), key)


def service_certs(service: str, namespace: str, ips: list[str] | None = None, days: int = 3650) -> dict[str, bytes]:
    """A fresh CA and a serving certificate for `<service>.<namespace>.svc` (and `ips`) (PEM), as a
    webhook Secret holds them: ca.crt (also the webhooks' caBundle), tls.crt, tls.key."""
    ca = new_ca(f"{service}-ca", days)
    dns = [service, f"{service}.{namespace}", f"{service}.{namespace}.svc", f"{service}.{namespace}.svc.cluster.local"]
    leaf = issue(ca, dns[2], server=True, dns=dns, ips=ips, days=days)
    return {"ca.crt": ca.cert_pem(), "tls.crt": leaf.cert_pem(), "tls.key": leaf.key_pem()}


def valid_for(tls_crt: bytes, ca_crt: bytes, dns: str, ips: list[str] | None = None, min_days: int = 30) -> bool:
    """Whether a serving cert names `dns` (and `ips`), is signed by `ca_crt`'s key and is valid for `min_days` more."""
    try:
        cert, ca = x509.load_pem_x509_certificate(tls_crt), x509.load_pem_x509_certificate(ca_crt)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        have_ips = {str(i) for i in san.get_values_for_type(x509.IPAddress)}
        cert.verify_directly_issued_by(ca)
        left = cert.not_valid_after_utc - dt.datetime.now(dt.timezone.utc)
        return dns in san.get_values_for_type(x509.DNSName) and set(ips or []) <= have_ips and left > dt.timedelta(days=min_days)
    except Exception:  # noqa: BLE001 - anything unreadable is simply not valid
        return False
