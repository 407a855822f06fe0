"""Pinned versions of every binary the appliance runs, and where each comes from.

Kubernetes stays on v1.31.x: the last minor line whose kubelet still runs on
cgroup v1 hosts without opting in to deprecated behaviour (this host and CI are
cgroup v1). Bumping a pin here is the only change needed to move a version.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field

KUBERNETES = "v1.31.4"
ETCD = "v3.5.17"
KWOK = "v0.6.1"
KIND = "v0.25.0"  # default node image is v1.31.x
COREDNS = "v1.11.3"  # the CoreDNS Kubernetes 1.31 ships

#: One name for the whole pinned set; the cache folder is keyed by it.
SET_VERSION = f"k8s-{KUBERNETES}"


def goarch() -> str:
    m = platform.machine().lower()
    return {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(m, m)


@dataclass(frozen=True)
class Tool:
    """One binary: the Go package it is built from and the release it is downloaded from."""

    name: str
    version: str
    module: str  # Go module that holds it
    package: str  # Go main package
    group: str  # tools of one group are built in one wrapper module / one `go build`
    ldflags: tuple[str, ...] = ()
    # release download: URL template ({v} = version, {vn} = version without "v", {arch});
    # `archive_member` when the binary sits in a tarball; `checksum_url` where the
    # publisher's sha256 for that file lives (a ".sha256" file or a SHA256SUMS list).
    url: str = ""
    checksum_url: str = ""
    archive_member: str = ""
    sha256: dict[str, str] = field(default_factory=dict)  # arch -> known digest (optional pin)

    def fmt(self, s: str) -> str:
        return s.format(v=self.version, vn=self.version.lstrip("v"), arch=goarch(), name=self.name)


def _k8s_ldflags() -> tuple[str, ...]:
    major, minor = KUBERNETES.lstrip("v").split(".")[:2]
    flags = []
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={KUBERNETES}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.buildDate=1970-01-01T00:00:00Z",
        ]
    return tuple(flags)


_K8S_URL = "https://dl.k8s.io/release/{v}/bin/linux/{arch}/{name}"


def _k8s(name: str) -> Tool:
    return Tool(
        name=name,
        version=KUBERNETES,
        module="k8s.io/kubernetes",
        package=f"k8s.io/kubernetes/cmd/{name}",
        group="kubernetes",
        ldflags=_k8s_ldflags(),
        url=_K8S_URL,
        checksum_url=_K8S_URL + ".sha256",
    )


TOOLS: dict[str, Tool] = {
    t.name: t
    for t in [
        _k8s("kube-apiserver"),
        _k8s("kube-controller-manager"),
        _k8s("kube-scheduler"),
        _k8s("kubectl"),
        _k8s("kubelet"),
        _k8s("kubeadm"),
        _k8s("kube-proxy"),
        Tool(
            name="etcd",
            version=ETCD,
            module="go.etcd.io/etcd/server/v3",
            package="go.etcd.io/etcd/server/v3",
            group="etcd",
            url="https://github.com/etcd-io/etcd/releases/download/{v}/etcd-{v}-linux-{arch}.tar.gz",
            checksum_url="https://github.com/etcd-io/etcd/releases/download/{v}/SHA256SUMS",
            archive_member="etcd-{v}-linux-{arch}/etcd",
        ),
        *(Tool(
            name=prog,
            version=KWOK,
            module="sigs.k8s.io/kwok",
            package=f"sigs.k8s.io/kwok/cmd/{prog}",
            group="kwok",
            ldflags=(f"-X sigs.k8s.io/kwok/pkg/consts.Version={KWOK}", f"-X sigs.k8s.io/kwok/pkg/consts.KubeVersion={KUBERNETES}"),
            url=f"https://github.com/kubernetes-sigs/kwok/releases/download/{{v}}/{prog}-linux-{{arch}}",
            checksum_url="https://github.com/kubernetes-sigs/kwok/releases/download/{v}/checksums.txt",
        ) for prog in ("kwok", "kwokctl")),
        Tool(
            name="kind",
            version=KIND,
            module="sigs.k8s.io/kind",
            package="sigs.k8s.io/kind",
            group="kind",
            url="https://github.com/kubernetes-sigs/kind/releases/download/{v}/kind-linux-{arch}",
            checksum_url="https://github.com/kubernetes-sigs/kind/releases/download/{v}/kind-linux-{arch}.sha256sum",
        ),
        Tool(
            name="coredns",
            version=COREDNS,
            module="github.com/coredns/coredns",
            package="github.com/coredns/coredns",
            group="coredns",
            url="https://github.com/coredns/coredns/releases/download/{v}/coredns_{vn}_linux_{arch}.tgz",
            checksum_url="https://github.com/coredns/coredns/releases/download/{v}/coredns_{vn}_linux_{arch}.tgz.sha256",
            archive_member="coredns",
        ),
    ]
}

#: Build order: what the simulator needs first, the big shared k8s packages early.
ORDER = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "kubectl",
    "kubelet",
    "kubeadm",
    "kube-proxy",
    "kwokctl",
    "kind",
    "coredns",
]

#: What the simulator provider needs.
SIM_TOOLS = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"]

#: Staging modules of k8s.io/kubernetes v1.31 (used when the module's go.mod can't be read).
K8S_STAGING_FALLBACK = [
    "api", "apiextensions-apiserver", "apimachinery", "apiserver", "cli-runtime", "client-go",
    "cloud-provider", "cluster-bootstrap", "code-generator", "component-base", "component-helpers",
    "controller-manager", "cri-api", "cri-client", "csi-translation-lib", "dynamic-resource-allocation",
    "endpointslice", "kms", "kube-aggregator", "kube-controller-manager", "kube-proxy", "kube-scheduler",
    "kubectl", "kubelet", "metrics", "mount-utils", "pod-security-admission", "sample-apiserver",
    "sample-cli-plugin", "sample-controller",
]  # fmt: skip


def staging_version(k8s_version: str) -> str:
    """k8s.io/kubernetes v1.31.4 -> staging modules v0.31.4."""
    parts = k8s_version.lstrip("v").split(".")
    return "v0." + ".".join(parts[1:])
