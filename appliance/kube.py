"""Thin layer over the official kubernetes client: server-side apply and readiness checks."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any, Iterable

FIELD_MANAGER = "appliance"


def api_client(kubeconfig: str | Path | dict | None = None, context: str | None = None):
    """A kubernetes ApiClient for a kubeconfig file (None: the default one) or dict. The official client takes
    HTTPS_PROXY from the environment but loses NO_PROXY on this path (kubernetes-client/python#2460): it is put
    back before the connection pool is made, so a host behind a proxy still reaches its own clusters directly."""
    import os

    from kubernetes import client, config

    cfg = client.Configuration()
    if isinstance(kubeconfig, dict):
        config.load_kube_config_from_dict(kubeconfig, context=context or None, client_configuration=cfg)
    else:
        config.load_kube_config(config_file=str(kubeconfig) if kubeconfig else None, context=context or None, client_configuration=cfg)
    cfg.no_proxy = cfg.no_proxy or os.environ.get("NO_PROXY") or os.environ.get("no_proxy")
    return client.ApiClient(configuration=cfg)


class Kube:
    """A connection to one cluster, built from a kubeconfig file."""

    def __init__(self, kubeconfig: str | Path, context: str | None = None):
        from kubernetes import dynamic

        self.kubeconfig, self.context = str(kubeconfig), context
        self.api = api_client(self.kubeconfig, context)
        self.dynamic = dynamic.DynamicClient(self.api)

    def impersonating(self, user: str) -> "Kube":
        """The same connection acting as `user` (the cluster's admin may impersonate)."""
        from kubernetes import dynamic

        other = Kube.__new__(Kube)
        other.kubeconfig, other.context = self.kubeconfig, self.context
        other.api = api_client(self.kubeconfig, self.context)
        other.api.set_default_header("Impersonate-User", user)
        other.dynamic = dynamic.DynamicClient(other.api)
        return other

    def _resource(self, obj: dict):
        return self.dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])

    def apply(self, objs: Iterable[dict], dry_run: bool = False) -> int:
        """Server-side apply each object (create or update, owned by `appliance`); returns how many. A dry
        run goes through authorization and admission and stores nothing."""
        n = 0
        for obj in objs:
            res = self._resource(obj)
            meta = obj["metadata"]
            res.server_side_apply(
                body=obj, name=meta["name"], namespace=meta.get("namespace") if res.namespaced else None,
                field_manager=FIELD_MANAGER, force_conflicts=True, **({"dry_run": "All"} if dry_run else {}),
            )
            n += 1
        return n

    def delete(self, objs: Iterable[dict]) -> None:
        """Delete objects, ignoring ones already gone."""
        from kubernetes.dynamic.exceptions import NotFoundError

        for obj in objs:
            res = self._resource(obj)
            meta = obj["metadata"]
            try:
                res.delete(name=meta["name"], namespace=meta.get("namespace") if res.namespaced else None,
                           body={"propagationPolicy": "Background"})
            except NotFoundError:
                pass

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Any | None:
        """One object, or None when it does not exist."""
        from kubernetes.dynamic.exceptions import NotFoundError

        try:
            return self.dynamic.resources.get(api_version=api_version, kind=kind).get(name=name, namespace=namespace)
        except NotFoundError:
            return None

    def kubeconfig_for(self, namespace: str, account: str, seconds: int, name: str = "cluster") -> dict[str, Any]:
        """A kubeconfig holding the API server's address and CA and a fresh token (TokenRequest, valid
        `seconds`) of service account `namespace/account`: nothing of this connection's own credentials."""
        import base64

        from kubernetes import client

        req = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=seconds))
        token = client.CoreV1Api(self.api).create_namespaced_service_account_token(account, namespace, req).status.token
        base = self.api.configuration
        server: dict[str, Any] = {"server": base.host}
        if base.ssl_ca_cert:
            server["certificate-authority-data"] = base64.b64encode(Path(base.ssl_ca_cert).read_bytes()).decode()
        return {"apiVersion": "v1", "kind": "Config", "current-context": account,
                "clusters": [{"name": name, "cluster": server}],
                "users": [{"name": account, "user": {"token": token}}],
                "contexts": [{"name": account, "context": {"cluster": name, "user": account, "namespace": namespace}}]}

    def internal_ips(self) -> list[str]:
        """Every node's InternalIP address, sorted."""
        from kubernetes import client

        nodes = client.CoreV1Api(self.api).list_node().items
        return sorted({a.address for n in nodes for a in n.status.addresses or [] if a.type == "InternalIP"})

    def list_labelled(self, api_version: str, kind: str, selector: str) -> list[dict]:
        """Objects of a kind carrying these labels, in every namespace; none when the kind is no longer
        served (its CRD is gone)."""
        from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError

        try:
            res = self.dynamic.resources.get(api_version=api_version, kind=kind)
            return [i.to_dict() for i in res.get(label_selector=selector).items]
        except (ResourceNotFoundError, NotFoundError):  # not served, or its CRD went since discovery was cached
            return []

    def claims(self, namespace: str | None = None) -> list[dict[str, str]]:
        """Each PersistentVolumeClaim in `namespace` (else in all): its namespace, name and bound volume ("" if none)."""
        from kubernetes import client

        core = client.CoreV1Api(self.api)
        items = (core.list_namespaced_persistent_volume_claim(namespace) if namespace else core.list_persistent_volume_claim_for_all_namespaces()).items
        return [{"namespace": c.metadata.namespace, "name": c.metadata.name, "volume": c.spec.volume_name or ""} for c in items]

    def storage_classes(self) -> list[dict]:
        """Every StorageClass, as dicts."""
        return [c.to_dict() for c in self.dynamic.resources.get(api_version="storage.k8s.io/v1", kind="StorageClass").get().items]

    def reclaim(self, volume: str, policy: str) -> bool:
        """Set PersistentVolume `volume`'s reclaim policy (Retain: its data outlives its claim; Delete); True
        when that changed it."""
        from kubernetes import client

        core = client.CoreV1Api(self.api)
        if core.read_persistent_volume(volume).spec.persistent_volume_reclaim_policy == policy:
            return False
        core.patch_persistent_volume(volume, {"spec": {"persistentVolumeReclaimPolicy": policy}})
        return True

    def missing(self, objs: Iterable[dict]) -> list[str]:
        """`Kind/name` of each object that does not exist (or is not ready, for workloads and CRDs)."""
        out = []
        for obj in objs:
            meta = obj["metadata"]
            live = self.get(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))
            if live is None or not _is_ready(obj["kind"], live):
                why = self.pod_problems(meta.get("namespace"), live) if live is not None and obj["kind"] in ("Deployment", "DaemonSet", "StatefulSet") else ""
                out.append(f"{obj['kind']}/{meta['name']}" + (f" ({why})" if why else ""))
        return out

    def pod_problems(self, namespace: str, workload: Any) -> str:
        """Why a workload's pods are not ready, from their containers' waiting/terminated reasons
        (ErrImagePull, CrashLoopBackOff with the runtime's message, ...); "" when nothing says."""
        from kubernetes import client

        labels = ((workload.to_dict().get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        if not labels:
            return ""
        pods = client.CoreV1Api(self.api).list_namespaced_pod(namespace, label_selector=",".join(f"{k}={v}" for k, v in labels.items()))
        seen = []
        for pod in pods.items:
            for cs in (pod.status.init_container_statuses or []) + (pod.status.container_statuses or []):
                w, t = cs.state.waiting, (cs.last_state.terminated if cs.last_state else None)
                if w and w.reason not in (None, "ContainerCreating", "PodInitializing"):
                    msg = w.message or ""
                    if t and (w.reason == "CrashLoopBackOff" or not msg):
                        msg = f"last run: {t.reason} (exit code {t.exit_code})" + (f": {t.message}" if t.message else "")
                    seen.append(f"pod {pod.metadata.name}: {w.reason}: {' '.join((msg or '').split())[:240]}".rstrip(": "))
        return "; ".join(dict.fromkeys(seen))[:600]


def decoded(secret: dict) -> dict[str, str]:
    """A Secret's values as text: its base64 `data`, `stringData` over it (as the API server merges them)."""
    return {**{k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}, **(secret.get("stringData") or {})}


def secret_data(kube: Kube | None, name: str, namespace: str) -> dict[str, str]:
    """The values of Secret `namespace/name` as text; {} where it is missing, or the cluster is (`kube` None)."""
    live = kube.get("v1", "Secret", name, namespace) if kube is not None else None
    return decoded(live.to_dict()) if live is not None else {}


def _is_ready(kind: str, live: Any) -> bool:
    """CRD Established; Deployment/StatefulSet/DaemonSet rolled out: the controller has seen the current spec
    (observedGeneration) and every wanted pod is updated and ready/available."""
    obj = live.to_dict()
    status = obj.get("status") or {}
    conds = {c["type"]: c["status"] for c in status.get("conditions") or []}
    if kind == "CustomResourceDefinition":
        return conds.get("Established") == "True"
    seen = status.get("observedGeneration", 0) >= (obj.get("metadata") or {}).get("generation", 1)
    if kind == "Deployment":  # as `kubectl rollout status`: every pod updated, no old one left, the updated ones available
        want = (obj.get("spec") or {}).get("replicas", 1)
        updated = status.get("updatedReplicas", 0)
        return (seen and conds.get("Available") == "True" and updated >= want and status.get("replicas", 0) <= updated
                and status.get("availableReplicas", 0) >= updated)
    if kind == "StatefulSet":
        want = (obj.get("spec") or {}).get("replicas", 1)
        return seen and status.get("readyReplicas", 0) >= want and status.get("updatedReplicas", 0) >= want
    if kind == "DaemonSet":
        want = status.get("desiredNumberScheduled", 0)
        return seen and status.get("numberReady", 0) >= want and status.get("updatedNumberScheduled", 0) >= want
    return True
