"""A small PKI for the simulator: one CA, the apiserver's serving cert, client certs, SA keys."""

from __future__ import annotations

import base64
from pathlib import Path

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from appliance import certs

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
        ca = certs.new_ca("appliance-sim-ca", days)
        _write(self.p("ca.crt"), ca.cert_pem())
        _write(self.p("ca.key"), ca.key_pem(), private=True)
        leaves = {"apiserver": certs.issue(ca, "kube-apiserver", server=True, dns=API_SANS_DNS, ips=API_SANS_IP, days=days)}
        for stem, (cn, o) in CLIENTS.items():
            leaves[stem] = certs.issue(ca, cn, o, days=days)
        for stem, pair in leaves.items():
            _write(self.p(f"{stem}.crt"), pair.cert_pem())
            _write(self.p(f"{stem}.key"), pair.key_pem(), private=True)
        sa = ec.generate_private_key(ec.SECP256R1())
        _write(self.p("sa.key"), certs.key_pem(sa), private=True)
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
