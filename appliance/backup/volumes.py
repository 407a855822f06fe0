"""A backup's volumes: which claims hold data, and a short-lived pod in the claim's namespace that mounts one
(the node's storage helper image, as the user of the workloads mounting it) for `kubectl exec tar`; the
workloads writing a volume are stopped while it is restored."""

from __future__ import annotations

import contextlib
import hashlib
import tarfile
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from appliance.errors import UserError

if TYPE_CHECKING:
    from appliance.backup import Target

HELPER = "appliance-backup"
#: the storage provisioner whose image (a Debian userland: sh, tar) the helper pods run
STORAGE = ("local-path-storage", "local-path-provisioner")
#: a volume's files back from the tar on stdin; as a user who does not own a directory already there (a subPath
#: mount point the kubelet made), tar cannot set its mode or time: those errors alone are no failure
UNTAR = """err=$(tar -C /data --numeric-owner -xpf - 2>&1) && exit 0
rc=$?
if printf '%s\\n' "$err" | grep -v -e 'Cannot utime' -e 'Cannot change mode' -e 'Cannot change ownership' -e 'Exiting with failure' | grep -q .; then
  printf '%s\\n' "$err" >&2; exit $rc
fi"""
USER_NS = "user-{user}"


def claims(target: Target, users: list[str], whole: bool) -> list[dict]:
    """The claims to copy: every claim in the users' namespaces, and (a whole backup) those of the components
    whose data is files (`data.volumes`), each with its component and the paths of one user's part."""
    out = []
    for u in users:
        out += [{**c, "component": "user-profiles", "user": u, "per_user": []} for c in target.kube.claims(USER_NS.format(user=u))]
    for n, comp in target.comps.items():
        d = comp.decl.data
        if n == "user-profiles" or not (d and d.volumes):
            continue
        for c in comp.claims(target.kube):
            if whole or d.per_user:
                out.append({**c, "component": n, "user": "", "per_user": d.per_user})
    return out


def consumers(target: Target, ns: str, claim: str) -> list[dict]:
    """The Deployments and StatefulSets of `ns` whose pods mount `claim`."""
    out = []
    for kind in ("Deployment", "StatefulSet"):
        for w in target.kube.dynamic.resources.get(api_version="apps/v1", kind=kind).get(namespace=ns).items:
            w = {**w.to_dict(), "kind": kind}  # a list's items carry no kind
            vols = w["spec"]["template"]["spec"].get("volumes") or []
            if any((v.get("persistentVolumeClaim") or {}).get("claimName") == claim for v in vols):
                out.append(w)
    return out


def _helper_image(target: Target) -> str:
    dep = target.kube.get("apps/v1", "Deployment", STORAGE[1], STORAGE[0])
    if dep is None:
        raise UserError("the cluster has no local-path provisioner, whose image the backup's pods run", f"cluster '{target.name}'",
                        "back up a cluster `up` made with its default storage")
    return dep.to_dict()["spec"]["template"]["spec"]["containers"][0]["image"]


@contextlib.contextmanager
def helper(target: Target, ns: str, claim: str, writable: bool) -> Iterator[str]:
    """A pod in `ns` with `claim` at /data (as the user of the workloads mounting it, else root); its name."""
    owners = consumers(target, ns, claim)
    sc = (owners[0]["spec"]["template"]["spec"].get("securityContext") or {}) if owners else {}
    pod_sc = {k: sc[k] for k in ("runAsUser", "runAsGroup", "fsGroup", "runAsNonRoot") if k in sc}
    name = f"{HELPER}-{hashlib.sha256(claim.encode()).hexdigest()[:10]}"
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": ns, "labels": {"app.kubernetes.io/managed-by": "appliance", HELPER: "true"}},
           "spec": {"restartPolicy": "Never", "automountServiceAccountToken": False, "terminationGracePeriodSeconds": 1,
                    "securityContext": {**pod_sc, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{"name": "copy", "image": _helper_image(target), "imagePullPolicy": "IfNotPresent",
                                    "command": ["sleep", "3600"],
                                    "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"cpu": "1", "memory": "256Mi"}},
                                    "securityContext": {"allowPrivilegeEscalation": False,
                                                        **({"capabilities": {"drop": ["ALL"]}} if pod_sc.get("runAsNonRoot") else {})},
                                    "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": not writable}]}],
                    "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]}}
    target.kube.delete([pod])
    _gone(target, ns, name)
    target.kube.dynamic.resources.get(api_version="v1", kind="Pod").create(body=pod, namespace=ns)
    try:
        deadline = time.monotonic() + 180
        while (live := target.kube.get("v1", "Pod", name, ns)) is None or live.status.phase != "Running":
            if time.monotonic() > deadline:
                raise UserError(f"the copy pod for claim {ns}/{claim} did not start in 180 s ({live.status.phase if live else 'not made'})",
                                f"cluster '{target.name}'", f"see `kubectl -n {ns} describe pod {name}`; run the same command again")
            time.sleep(1)
        yield name
    finally:
        target.kube.delete([pod])


def _gone(target: Target, ns: str, name: str) -> None:
    deadline = time.monotonic() + 60
    while target.kube.get("v1", "Pod", name, ns) is not None and time.monotonic() < deadline:
        time.sleep(0.5)


def scale(target: Target, workloads: list[dict], stop: bool) -> None:
    """Stop the workloads (0 replicas, waiting for their pods to go), or start them again (the replicas they had)."""
    for w in workloads:
        res = target.kube.dynamic.resources.get(api_version="apps/v1", kind=w["kind"])
        res.patch(body={"spec": {"replicas": 0 if stop else w["spec"].get("replicas", 1)}}, name=w["metadata"]["name"],
                  namespace=w["metadata"]["namespace"], content_type="application/merge-patch+json")
    deadline = time.monotonic() + 120
    for w in workloads if stop else []:
        while (live := target.kube.get("apps/v1", w["kind"], w["metadata"]["name"], w["metadata"]["namespace"])) is not None \
                and (live.status.replicas or 0) > 0 and time.monotonic() < deadline:
            time.sleep(1)


@contextlib.contextmanager
def part(path: Path, prefixes: list[str]) -> Iterator[Any]:
    """The volume's tar file, or (a user's part) a tar of only its members under `prefixes`."""
    if prefixes == ["."]:
        with open(path, "rb") as f:
            yield f
        return
    with tempfile.TemporaryFile() as out:
        with tarfile.open(path, "r|") as src, tarfile.open(fileobj=out, mode="w|") as dst:
            for m in src:
                if any(m.name == p or m.name.startswith(p + "/") for p in prefixes):
                    dst.addfile(m, src.extractfile(m) if m.isfile() else None)
        out.seek(0)
        yield out
