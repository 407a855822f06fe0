"""`doctor`: host checks (pass / warn / fail, each with a one-line fix) and the profile's resource budget."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from appliance import components, prereqs, providers
from appliance.schema import Profile

INOTIFY_MIN = {"max_user_watches": 524288, "max_user_instances": 512}
KERNEL_MODULE = {"overlay": "overlay", "br_netfilter": "br_netfilter", "iptables": "ip_tables", "nf_conntrack": "nf_conntrack"}
KERNEL_FATAL = {"overlay", "br_netfilter"}  # kind and kubelet cannot run without these; the others degrade


@dataclass
class Check:
    name: str
    status: str  # pass | warn | fail
    detail: str
    fix: str = ""


def host_checks(f: dict[str, Any], provider: str) -> list[Check]:
    """Turn host facts into checks; `provider` decides which problems are fatal."""
    out: list[Check] = []
    needs_docker, needs_kernel = providers.get(provider).needs_docker, providers.get(provider).needs_kernel

    out.append(Check("cpu", "pass" if f["cpus"] >= 2 else "warn", f"{f['cpus']} logical CPUs", "" if f["cpus"] >= 2 else "use a host with at least 2 CPUs"))
    mem_ok = f["memory_mib"] >= 4096
    out.append(Check("memory", "pass" if mem_ok else "warn", f"{f['memory_mib'] / 1024:.1f} GiB total, {f['memory_available_mib'] / 1024:.1f} GiB available", "" if mem_ok else "close programs or use a host with ≥ 4 GiB"))
    disk_ok = f["disk_free_gib"] >= 10
    out.append(Check("disk", "pass" if disk_ok else "warn", f"{f['disk_free_gib']} GiB free at {f['disk_path']}", "" if disk_ok else f"free space under {f['disk_path']} (≥ 10 GiB for images and the toolchain)"))

    low = {k: v for k, v in f["inotify"].items() if v is not None and v < INOTIFY_MIN[k]}
    out.append(Check(
        "inotify", "warn" if low and needs_docker else "pass",
        ", ".join(f"{k}={v}" for k, v in f["inotify"].items()),
        " ; ".join(f"sysctl -w fs.inotify.{k}={INOTIFY_MIN[k]}" for k in low) if low else "",
    ))
    cg = f["cgroup_version"]
    out.append(Check("cgroup", "pass" if cg == 2 else "warn", f"cgroup v{cg}", "" if cg == 2 else "cgroup v1 works with the pinned Kubernetes 1.31; newer Kubernetes needs cgroup v2 (boot with systemd.unified_cgroup_hierarchy=1)"))

    d = f["docker"]
    if d["daemon"]:
        out.append(Check("docker", "pass", f"daemon {d['version']}, default runtime {d.get('default_runtime', '')}"))
    else:
        fix = "install Docker (Debian: apt-get install docker.io) and start dockerd" if not d["client"] else "start the Docker daemon (systemctl start docker) or use --provider sim"
        out.append(Check("docker", "fail" if needs_docker else "warn", d["error"] or "no daemon", fix))

    kernel = f["kernel"]
    missing = [k for k, proof in kernel.items() if not proof]
    present = "present: " + (", ".join(k for k, proof in kernel.items() if proof) or "none")
    if missing:
        status = "fail" if needs_kernel and KERNEL_FATAL & set(missing) else "warn"
        out.append(Check("kernel-modules", status, f"missing: {', '.join(missing)}; {present}",
                         f"modprobe {' '.join(KERNEL_MODULE[k] for k in missing)}"))
    else:
        out.append(Check("kernel-modules", "pass", present))

    caps = f["caps"]
    if not caps.get("CAP_SYS_RESOURCE", True):
        wrapped = d["daemon"] and d.get("default_runtime", "runc") != "runc"
        out.append(Check(
            "capabilities", "pass" if wrapped or not needs_docker else "fail",
            "CAP_SYS_RESOURCE is not in the bounding set" + ("; Docker uses runtime " + d.get("default_runtime", "") if wrapped else ""),
            "" if wrapped else "privileged containers fail here: make dockerd's default runtime a runc wrapper that drops CAP_SYS_RESOURCE from the container spec (default-runtime in /etc/docker/daemon.json)",
        ))
    else:
        out.append(Check("capabilities", "pass", "bounding set has " + ", ".join(k for k, v in caps.items() if v)))

    g = f["gpus"]
    if g["nvml"] and g["gpus"]:
        names = sorted({x["name"] for x in g["gpus"]})
        mig = sum(1 for x in g["gpus"] if x["mig_mode"] == "enabled")
        out.append(Check("gpus", "pass", f"{len(g['gpus'])}× {'/'.join(names)}, {g['gpus'][0]['memory_mib']} MiB each, driver {g['driver']} (CUDA {g['cuda_driver']}), MIG enabled on {mig}"))
    elif g["nvml"]:
        out.append(Check("gpus", "warn", "NVML loaded but reports no GPU", "check `nvidia-smi`; GPUs may be held by a VM passthrough or hidden by CUDA_VISIBLE_DEVICES"))
    else:
        out.append(Check("gpus", "pass", f"no NVIDIA GPU ({g['error']}); CPU-only and simulated GPUs still work"))

    out.append(Check("go", "pass" if f["go"] else "warn", f["go"] or "not found",
                     "" if f["go"] else "install Go ≥ 1.22 (apt-get install golang or https://go.dev/dl) — needed only where official Kubernetes downloads are unreachable"))
    return out


def budget(profile: Profile, provider: str, f: dict[str, Any]) -> Check:
    """Sum the cluster's footprint and the components' requests; compare with the host."""
    cpu_m, mem_mi = providers.get(provider).footprint(profile.cluster)
    total = components.Resources(cpu_m, mem_mi)
    for comp in components.enabled(profile, providers.get(provider).runtime()).values():
        total = total + comp.requests()
    host_cpu_m, host_mem = f["cpus"] * 1000, f["memory_mib"]
    detail = (f"profile '{profile.name}' on {provider} needs {total.cpu_m / 1000:.2f} CPU and {total.memory_mi / 1024:.2f} GiB; "
              f"host has {f['cpus']} CPU and {host_mem / 1024:.1f} GiB")
    if total.cpu_m > host_cpu_m or total.memory_mi > host_mem:
        return Check("budget", "fail", detail, "choose a smaller profile, disable components (--set components.X.enabled=false), or use a bigger host")
    if total.memory_mi > f["memory_available_mib"]:
        return Check("budget", "warn", detail, "free memory before `up`: less is available than the profile needs")
    return Check("budget", "pass", detail)


def host_programs(profile: Profile, provider: str) -> Check:
    """The programs `up` will run for this plan (debootstrap, gcc, ...); `up` refuses to start without them."""
    what, fix = prereqs.missing(profile, provider)
    if what:
        return Check("host-programs", "fail", f"missing: {what}", fix)
    return Check("host-programs", "pass", ", ".join(n.program for n, _ in prereqs.needs(profile, provider)) or "no host program needed beyond Python and Go")


def images(profile: Profile, provider: str, f: dict[str, Any]) -> Check:
    """Where the components' images will come from (auto probes the registries), and whether a local
    build can happen here."""
    comps = components.enabled(profile, providers.get(provider).runtime())
    if not any(c.images() for c in comps.values()):
        return Check("images", "pass", "no component image to deliver")
    d = next(iter(comps.values())).delivery.decision()
    if d.source == "upstream":
        return Check("images", "pass", f"upstream: {d.why}")
    if not f["go"]:
        return Check("images", "fail", f"local builds: {d.why}, and no Go toolchain to build with",
                     "install Go ≥ 1.22, or give a registry mirror (--set 'cluster.images.mirrors.\"docker.io\"=URL')")
    return Check("images", "pass", f"local builds: {d.why}")


def as_json(checks: list[Check]) -> list[dict[str, Any]]:
    return [asdict(c) for c in checks]


#: the user namespaces' defaults (user-profiles) doctor expects: kind → names
USER_DEFAULTS = {"NetworkPolicy": {"default-ingress", "default-egress"}, "ResourceQuota": {"user-quota"}, "LimitRange": {"user-limits"}}
USER_POLICIES = ("appliance-user-service-exposure", "appliance-user-priority", "appliance-user-networkpolicies")


def isolation(kube, enforced: bool) -> list[Check]:
    """What a running cluster enforces between tenants, read (and, for externalIPs, tried as a dry run) from
    its API: Service externalIPs, the admission policies, each user namespace's defaults and Pod Security,
    the departed users' namespaces, the kubelets' default seccomp. `enforced`: NetworkPolicies have a data plane."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    core = client.CoreV1Api(kube.api)
    out: list[Check] = []
    svc = {"metadata": {"generateName": "doctor-"}, "spec": {"ports": [{"port": 1}], "externalIPs": ["192.0.2.1"]}}
    try:
        core.create_namespaced_service("default", svc, dry_run="All")
        out.append(Check("external-ips", "fail", "a Service may set externalIPs (CVE-2020-8554: it takes that address's traffic)",
                         "enable the API server's DenyServiceExternalIPs admission plugin (`appliance up` on a new cluster does)"))
    except ApiException as e:
        ok = e.status == 403 and "external IPs" in (e.body or "")
        out.append(Check("external-ips", "pass" if ok else "warn", "Services may not set externalIPs" if ok else f"dry run failed otherwise: {e.status}"))
    have = {p.metadata.name for p in client.AdmissionregistrationV1Api(kube.api).list_validating_admission_policy_binding().items}
    lost = [p for p in USER_POLICIES if p not in have]
    out.append(Check("tenant-policies", "fail" if lost else "pass",
                     f"missing: {', '.join(lost)}" if lost else "user namespaces: no NodePort/LoadBalancer, user-level priority classes only, NetworkPolicies the platform's",
                     "run `appliance up` (user-profiles)" if lost else ""))
    for ns in core.list_namespace(label_selector="appliance.dev/owner").items:
        out.append(_user_namespace(kube, ns, enforced))
    out.append(_seccomp_default(core))
    out.append(_controller_rights(kube))
    return out


def _controller_rights(kube) -> Check:
    """Each service account's dangerous rights against its component's allow list (rbac_audit); rights of
    accounts no component made (the cluster's own add-ons) are named, not failed."""
    from appliance.components import rbac_audit

    found = rbac_audit.audit_cluster(kube)
    ours = rbac_audit.failures(f for f in found if f["component"])
    theirs = sorted({f["account"] for f in found if not f["component"]})
    allowed = sum(f["allowed"] for f in found)
    if ours:
        return Check("controller-rights", "fail", f"{len(ours)} right(s) no component allows; first: {ours[0]}",
                     "narrow the role, or allow the right with its reason in the component's `rights:`")
    return Check("controller-rights", "pass", f"{allowed} dangerous right(s), each allowed by its component with a reason"
                 + (f"; not the appliance's: {', '.join(theirs)}" if theirs else ""))


def _user_namespace(kube, ns, enforced: bool) -> Check:
    labels, name = ns.metadata.labels or {}, ns.metadata.name
    level = labels.get("pod-security.kubernetes.io/enforce", "none")
    if labels.get("appliance.dev/departed") == "true":
        closed = kube.get("networking.k8s.io/v1", "NetworkPolicy", "departed-deny-all", name) is not None
        return Check(f"ns/{name}", "pass" if closed else "fail", "departed user: closed (deny-all, zero quota)" if closed else "departed user's namespace is open",
                     "" if closed else "run `appliance up`, or delete the namespace")
    missing = [f"{kind} {n}" for kind, names in USER_DEFAULTS.items() for n in sorted(names)
               if kube.get("networking.k8s.io/v1" if kind == "NetworkPolicy" else "v1", kind, n, name) is None]
    detail = f"Pod Security {level}, quota, limits, ingress and egress defaults" + ("" if enforced else " (policies are objects only: no data plane)")
    if missing:
        return Check(f"ns/{name}", "fail", "missing: " + ", ".join(missing), "run `appliance up` (user-profiles)")
    return Check(f"ns/{name}", "pass" if level in ("baseline", "restricted") else "fail", detail)


def _seccomp_default(core) -> Check:
    """Each kubelet's seccompDefault (its /configz through the API server); none to read on the simulator."""
    import json

    nodes = core.list_node().items
    off, unread = [], []
    for n in nodes:
        try:
            raw = core.connect_get_node_proxy_with_path(n.metadata.name, "configz", _preload_content=False).data
            if not json.loads(raw)["kubeletconfig"].get("seccompDefault"):
                off.append(n.metadata.name)
        except Exception:  # noqa: BLE001 — simulated nodes have no kubelet to ask
            unread.append(n.metadata.name)
    if off:
        return Check("seccomp-default", "warn", f"containers without a seccomp profile run unconfined on {', '.join(off)}",
                     "set the kubelet's seccompDefault: true (kind and bare-metal clusters `up` makes have it)")
    if unread == [n.metadata.name for n in nodes]:
        return Check("seccomp-default", "pass", "no kubelet to ask (simulated nodes run no containers)")
    return Check("seccomp-default", "pass", "every kubelet gives containers the runtime's default seccomp profile")
