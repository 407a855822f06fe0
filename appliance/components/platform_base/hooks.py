"""platform-base: CoreDNS sized to the cluster (kubeadm's two replicas only add requests on one node)."""

from __future__ import annotations


def _dns_target(setting: int | str, nodes: int) -> int:
    if setting != "auto":
        return int(setting)
    return 1 if nodes <= 1 else 2


def after_apply(options, kube) -> str:
    """Scale kube-system/coredns, where the cluster has one (the simulator has none)."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    apps = client.AppsV1Api(kube.api)
    try:
        scale = apps.read_namespaced_deployment_scale("coredns", "kube-system")
    except ApiException as e:
        if e.status == 404:
            return ""
        raise
    want = _dns_target(options.dns_replicas, len(client.CoreV1Api(kube.api).list_node().items))
    if scale.spec.replicas == want:
        return ""
    apps.patch_namespaced_deployment_scale("coredns", "kube-system", {"spec": {"replicas": want}})
    return f"CoreDNS {scale.spec.replicas} -> {want} replicas"
