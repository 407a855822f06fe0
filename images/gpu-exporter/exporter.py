"""GPU metrics under dcgm-exporter's names and labels, plus the few cluster-state series the alert rules
need under kube-state-metrics' names. One HTTP endpoint, `/metrics`, collected every `--refresh` seconds.

    python3 exporter.py --gpus nvml|simulated|none [--cluster-state] [--port 9400]

GPU sources (one interface, `gpus() -> list[GPU]`):
- `nvml`: this node's GPUs read through NVML (nvidia-ml-py); the pod owning each GPU from the kubelet's
  pod-resources API (a DaemonSet on GPU nodes, env NODE_NAME);
- `simulated`: every node's `nvidia.com/gpu` capacity as simulated GPUs (the simulator, kind without
  GPUs), each attributed to the pod the scheduler bound there (device indices in pod creation order);
  utilization and memory follow the pod's annotation `appliance.dev/gpu-pattern` (`util=70-95/120s,mem=75`:
  a number or a sine between two numbers over a period; mem in % of the framebuffer), faults from the node's
  annotation `appliance.dev/gpu-xid` (`3=79`: GPU 3 reports XID 79); a node cut into MIG instances (the
  simulator's annotation `appliance.dev/sim-mig`, `8x1g.10gb=2,3g.40gb=1`) has a series per instance, labelled
  `GPU_I_ID` and `GPU_I_PROFILE` as dcgm-exporter labels them, each attributed to the pod holding it (the
  profile's `nvidia.com/mig-<profile>`, or `nvidia.com/gpu` on a single-strategy node); plus, where no kubelet runs (the
  simulator's nodes), cAdvisor's memory and CPU series of the pods at their requests. Series carry
  `simulated="true"`.
Talks to the API server in-cluster (service account) or through $KUBECONFIG (a host process).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import math
import os
import ssl
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GPU_RESOURCE = "nvidia.com/gpu"
PATTERN = "appliance.dev/gpu-pattern"
XID = "appliance.dev/gpu-xid"
MIG = "appliance.dev/sim-mig"
DEFAULT_PATTERN = "util=70-95/120s,mem=75"
#: name → (type, help), as dcgm-exporter's default counters
FIELDS = {
    "DCGM_FI_DEV_GPU_UTIL": ("gauge", "GPU utilization (in %)."),
    "DCGM_FI_DEV_FB_USED": ("gauge", "Framebuffer memory used (in MiB)."),
    "DCGM_FI_DEV_FB_FREE": ("gauge", "Framebuffer memory free (in MiB)."),
    "DCGM_FI_DEV_POWER_USAGE": ("gauge", "Power draw (in W)."),
    "DCGM_FI_DEV_GPU_TEMP": ("gauge", "GPU temperature (in C)."),
    "DCGM_FI_DEV_XID_ERRORS": ("gauge", "Value of the last XID error encountered."),
}


@dataclass
class GPU:
    index: int
    uuid: str
    model: str
    host: str
    util: float = 0.0
    fb_used: float = 0.0
    fb_free: float = 0.0
    power: float = 0.0
    temp: float = 0.0
    xid: int = 0
    owner: tuple[str, str, str] = ("", "", "")  # namespace, pod, container
    simulated: bool = False
    instance: tuple[str, str] = ("", "")  # a MIG instance of this GPU: GPU_I_ID, GPU_I_PROFILE

    def values(self) -> dict[str, float]:
        return {"DCGM_FI_DEV_GPU_UTIL": self.util, "DCGM_FI_DEV_FB_USED": self.fb_used, "DCGM_FI_DEV_FB_FREE": self.fb_free,
                "DCGM_FI_DEV_POWER_USAGE": self.power, "DCGM_FI_DEV_GPU_TEMP": self.temp, "DCGM_FI_DEV_XID_ERRORS": self.xid}

    def labels(self) -> dict[str, str]:
        ns, pod, container = self.owner
        out = {"gpu": str(self.index), "UUID": self.uuid, "device": f"nvidia{self.index}", "modelName": self.model,
               "Hostname": self.host, "namespace": ns, "pod": pod, "container": container}
        if self.instance[1]:
            out["GPU_I_ID"], out["GPU_I_PROFILE"] = self.instance
        if self.simulated:
            out["simulated"] = "true"
        return out


# ----------------------------------------------------------------------------- exposition

def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def series(name: str, labels: dict[str, str], value: float) -> str:
    inner = ",".join(f'{k}="{_esc(str(v))}"' for k, v in labels.items())
    v = float(value)
    return f"{name}{{{inner}}} {int(v) if v.is_integer() else repr(v)}"  # exact: 64 GiB is 68719476736, not 6.87195e+10


def render(gpus: list[GPU], state: dict[str, tuple[str, str, list[tuple[dict, float]]]] | None = None) -> str:
    """The text exposition format: every GPU field, then the cluster-state families (name → (type, help, samples))."""
    fams = {name: (t, h, [(g.labels(), g.values()[name]) for g in gpus]) for name, (t, h) in FIELDS.items()}
    fams.update(state or {})
    out = []
    for name, (t, h, samples) in fams.items():
        out += [f"# HELP {name} {h}", f"# TYPE {name} {t}", *(series(name, lb, v) for lb, v in samples)]
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------- the API server

class Kube:
    """GET JSON from the API server: in-cluster (service account) or the current context of $KUBECONFIG."""

    def __init__(self):
        sa = "/var/run/secrets/kubernetes.io/serviceaccount"
        self.headers: dict[str, str] = {}
        if os.environ.get("KUBERNETES_SERVICE_HOST") and os.path.exists(f"{sa}/token"):
            self.server = f"https://{os.environ['KUBERNETES_SERVICE_HOST']}:{os.environ.get('KUBERNETES_SERVICE_PORT', '443')}"
            self.ctx = ssl.create_default_context(cafile=f"{sa}/ca.crt")
            self.token_file = f"{sa}/token"
            return
        import yaml  # a host process: the appliance's own Python has PyYAML

        kc = yaml.safe_load(open(os.environ["KUBECONFIG"]))
        ctx = next(c["context"] for c in kc["contexts"] if c["name"] == kc.get("current-context", kc["contexts"][0]["name"]))
        cluster = next(c["cluster"] for c in kc["clusters"] if c["name"] == ctx["cluster"])
        user = next(u["user"] for u in kc["users"] if u["name"] == ctx["user"])
        self.server, self.token_file = cluster["server"], ""
        self.ctx = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
        if "token" in user:
            self.headers["Authorization"] = f"Bearer {user['token']}"
        if "client-certificate-data" in user:
            d = tempfile.mkdtemp(prefix="gpu-exporter-")
            for key, name in (("client-certificate-data", "crt"), ("client-key-data", "key")):
                with open(os.open(f"{d}/{name}", os.O_WRONLY | os.O_CREAT, 0o600), "wb") as f:
                    f.write(base64.b64decode(user[key]))
            self.ctx.load_cert_chain(f"{d}/crt", f"{d}/key")

    def get(self, path: str) -> dict:
        headers = dict(self.headers)
        if self.token_file:  # projected tokens rotate: read it each time
            headers["Authorization"] = "Bearer " + open(self.token_file).read().strip()
        req = urllib.request.Request(self.server + path, headers=headers)
        with urllib.request.urlopen(req, context=self.ctx, timeout=20) as r:
            return json.load(r)


def _gpus_of(container: dict, resource: str = GPU_RESOURCE) -> int:
    res = container.get("resources") or {}
    return int((res.get("limits") or {}).get(resource) or (res.get("requests") or {}).get(resource) or 0)


def holds_gpus(pod: dict) -> bool:
    """Bound to a node and not finished: its GPUs are taken."""
    return bool(pod["spec"].get("nodeName")) and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def attribute(gpus: int, pods: list[dict], resource: str = GPU_RESOURCE) -> dict[int, tuple[str, str, str]]:
    """Device index → (namespace, pod, container) on one node: pods in creation order (then name), each
    container's devices of `resource` in turn, the next free indices. Deterministic for a given set of pods."""
    owners: dict[int, tuple[str, str, str]] = {}
    nxt = 0
    order = sorted((p for p in pods if holds_gpus(p)),
                   key=lambda p: (p["metadata"].get("creationTimestamp") or "", p["metadata"]["namespace"], p["metadata"]["name"]))
    for p in order:
        for c in p["spec"].get("containers") or []:
            for _ in range(_gpus_of(c, resource)):
                if nxt < gpus:
                    owners[nxt] = (p["metadata"]["namespace"], p["metadata"]["name"], c["name"])
                    nxt += 1
    return owners


def parse_pattern(text: str) -> dict[str, tuple[float, float, float]]:
    """`util=70-95/120s,mem=75` → {key: (low, high, period s)}; a plain number is (v, v, 0). Raises ValueError."""
    out: dict[str, tuple[float, float, float]] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, _, val = part.partition("=")
        if key not in ("util", "mem") or not val:
            raise ValueError(f"'{part}': expected util=V or mem=V")
        rng, _, period = val.partition("/")
        low, _, high = rng.partition("-")
        lo, hi = float(low), float(high or low)
        per = float(period.rstrip("s")) if period else 0.0
        if not (0 <= lo <= 100 and 0 <= hi <= 100) or per < 0:
            raise ValueError(f"'{part}': values are 0..100 and the period is seconds")
        out[key] = (lo, hi, per)
    return out


def level(spec: tuple[float, float, float], t: float, phase: float) -> float:
    lo, hi, per = spec
    if per <= 0 or lo == hi:
        return lo
    return lo + (hi - lo) * (0.5 + 0.5 * math.sin(2 * math.pi * (t / per + phase)))


def parse_xids(text: str) -> dict[int, int]:
    """`3=79,5=48` → {3: 79, 5: 48} (bad parts are skipped: an annotation must not stop the exporter)."""
    out = {}
    for part in (text or "").split(","):
        idx, _, code = part.strip().partition("=")
        if idx.isdigit() and code.isdigit():
            out[int(idx)] = int(code)
    return out


def sim_uuid(node: str, index: int) -> str:
    return "GPU-" + str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{node}/{index}"))


def parse_mig(text: str) -> tuple[int, list[tuple[str, int]]]:
    """`8x1g.10gb=2,3g.40gb=1` → (8, [("1g.10gb", 2), ("3g.40gb", 1)]): GPUs, instances of each per GPU; (0, [])
    when absent or malformed (an annotation must not stop the exporter)."""
    gpus, _, layout = (text or "").partition("x")
    try:
        return int(gpus), [(p, int(n)) for p, _, n in (part.partition("=") for part in layout.split(","))]
    except ValueError:
        return 0, []


def _devices(meta: dict, labels: dict, capacity: dict) -> list[tuple[int, tuple[str, str], float, str, int]]:
    """(GPU index, (GPU_I_ID, GPU_I_PROFILE), framebuffer MiB, resource, its device index) of one node: whole
    GPUs, or the MIG instances of each GPU."""
    gpus, layout = parse_mig((meta.get("annotations") or {}).get(MIG, ""))
    if not layout:
        memory = float(labels.get("nvidia.com/gpu.memory") or 81920)
        return [(i, ("", ""), memory, GPU_RESOURCE, i) for i in range(int(capacity.get(GPU_RESOURCE) or 0))]
    single = labels.get("nvidia.com/mig.strategy") == "single"
    out, seen = [], {}
    for i in range(gpus):
        gi = 0
        for profile, n in layout:
            memory = float(labels.get("nvidia.com/gpu.memory" if single else f"nvidia.com/mig-{profile}.memory") or 0)
            resource = GPU_RESOURCE if single else f"nvidia.com/mig-{profile}"
            for _ in range(n):
                gi += 1
                out.append((i, (str(gi), profile), memory, resource, seen.get(resource, 0)))
                seen[resource] = seen.get(resource, 0) + 1
    return out


def simulate(node: dict, pods: list[dict], t: float) -> list[GPU]:
    """The simulated GPUs (or MIG instances) of one node at time `t`."""
    meta, status = node["metadata"], node.get("status") or {}
    labels = meta.get("labels") or {}
    model = labels.get("nvidia.com/gpu.product", "simulated-gpu").replace("-", " ")
    xids = parse_xids((meta.get("annotations") or {}).get(XID, ""))
    by_name = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in pods}
    devices = _devices(meta, labels, status.get("capacity") or {})
    counts: dict[str, int] = {}
    for _, _, _, resource, _ in devices:
        counts[resource] = counts.get(resource, 0) + 1
    owned = {r: attribute(n, pods, r) for r, n in counts.items()}
    out = []
    for i, instance, memory, resource, k in devices:
        owner = owned[resource].get(k)
        g = GPU(i, sim_uuid(meta["name"], i), model, meta["name"], owner=owner or ("", "", ""), simulated=True, instance=instance)
        util = mem = 0.0
        if owner:
            pod = by_name[owner[:2]]
            try:
                pat = parse_pattern((pod["metadata"].get("annotations") or {}).get(PATTERN) or DEFAULT_PATTERN)
            except ValueError:
                pat = parse_pattern(DEFAULT_PATTERN)
            phase = int(hashlib.sha256((g.uuid + g.instance[0]).encode()).hexdigest()[:8], 16) / 2**32
            util = level(pat.get("util", (0, 0, 0)), t, phase)
            mem = level(pat.get("mem", (0, 0, 0)), t, phase)
        g.util, g.fb_used = round(util), round(memory * mem / 100)
        g.fb_free = memory - g.fb_used
        g.power, g.temp, g.xid = round(70 + 6.3 * util, 1), round(32 + 0.45 * util), xids.get(i, 0)
        out.append(g)
    return out


class SimulatedSource:
    """Every node's GPU capacity as simulated GPUs, attributed to the pods bound there."""

    def __init__(self, kube: Kube):
        self.kube = kube

    def gpus(self, nodes: list[dict] | None = None, pods: list[dict] | None = None) -> list[GPU]:
        nodes = nodes if nodes is not None else self.kube.get("/api/v1/nodes")["items"]
        pods = pods if pods is not None else self.kube.get("/api/v1/pods")["items"]
        by_node: dict[str, list[dict]] = {}
        for p in pods:
            if p["spec"].get("nodeName"):
                by_node.setdefault(p["spec"]["nodeName"], []).append(p)
        t = time.time()
        return [g for n in nodes for g in simulate(n, by_node.get(n["metadata"]["name"], []), t)]


# ----------------------------------------------------------------------------- real GPUs: NVML + pod resources

def _varint(b: bytes, i: int) -> tuple[int, int]:
    shift = val = 0
    while True:
        c = b[i]
        i += 1
        val |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return val, i


def fields(b: bytes) -> list[tuple[int, bytes | int]]:
    """Protobuf wire format → [(field number, bytes of a length-delimited field | an integer)]."""
    out, i = [], 0
    while i < len(b):
        key, i = _varint(b, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(b, i)
        elif wt == 2:
            n, i = _varint(b, i)
            v, i = b[i:i + n], i + n
        elif wt == 1:
            v, i = int.from_bytes(b[i:i + 8], "little"), i + 8
        elif wt == 5:
            v, i = int.from_bytes(b[i:i + 4], "little"), i + 4
        else:
            raise ValueError(f"wire type {wt}")
        out.append((num, v))
    return out


def device_owners(list_response: bytes, resource: str = GPU_RESOURCE) -> dict[str, tuple[str, str, str]]:
    """A kubelet pod-resources v1 ListPodResourcesResponse → device id (the GPU's UUID) → (namespace, pod, container)."""
    owners = {}
    for num, pr in fields(list_response):
        if num != 1:
            continue
        pf = fields(pr)
        name = next((v.decode() for n, v in pf if n == 1), "")
        ns = next((v.decode() for n, v in pf if n == 2), "")
        for cnum, cr in pf:
            if cnum != 3:
                continue
            cf = fields(cr)
            cname = next((v.decode() for n, v in cf if n == 1), "")
            for dnum, dev in cf:
                if dnum != 2:
                    continue
                df = fields(dev)
                if next((v.decode() for n, v in df if n == 1), "") == resource:
                    for n, v in df:
                        if n == 2:
                            owners[v.decode()] = (ns, name, cname)
    return owners


def list_pod_resources(socket: str) -> bytes:
    """Call v1.PodResourcesLister/List on the kubelet's socket (raw bytes: decoded by `device_owners`)."""
    import grpc

    with grpc.insecure_channel(f"unix://{socket}") as ch:
        call = ch.unary_unary("/v1.PodResourcesLister/List", request_serializer=lambda _: b"", response_deserializer=lambda b: b)
        return call(None, timeout=5)


class NvmlSource:
    """This node's GPUs through NVML; owners from the pod-resources API; XIDs from an NVML event set."""

    def __init__(self, nvml, host: str, owners=lambda: {}):
        self.nvml, self.host, self.owners = nvml, host, owners
        nvml.nvmlInit()
        self.handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())]
        self.xid: dict[str, int] = {}
        self.events = nvml.nvmlEventSetCreate()
        for h in self.handles:
            try:
                nvml.nvmlDeviceRegisterEvents(h, nvml.nvmlEventTypeXidCriticalError, self.events)
            except nvml.NVMLError:
                pass  # not every GPU supports events; its XIDs stay 0

    def _drain_events(self) -> None:
        nvml = self.nvml
        while True:
            try:
                e = nvml.nvmlEventSetWait(self.events, 0)
            except nvml.NVMLError:
                return  # timeout: no more events
            self.xid[_text(nvml.nvmlDeviceGetUUID(e.device))] = int(e.eventData)

    def gpus(self) -> list[GPU]:
        nvml = self.nvml
        self._drain_events()
        owners = self.owners()
        out = []
        for i, h in enumerate(self.handles):
            uid = _text(nvml.nvmlDeviceGetUUID(h))
            mem = nvml.nvmlDeviceGetMemoryInfo(h)
            out.append(GPU(i, uid, _text(nvml.nvmlDeviceGetName(h)), self.host,
                           util=nvml.nvmlDeviceGetUtilizationRates(h).gpu,
                           fb_used=mem.used // 2**20, fb_free=mem.free // 2**20,
                           power=nvml.nvmlDeviceGetPowerUsage(h) / 1000,
                           temp=nvml.nvmlDeviceGetTemperature(h, nvml.NVML_TEMPERATURE_GPU),
                           xid=self.xid.get(uid, 0), owner=owners.get(uid, ("", "", ""))))
        return out


def _text(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


# ----------------------------------------------------------------------------- kubelet-style usage where no kubelet runs

FAKE_NODE = ("kwok.x-k8s.io/node", "fake")
_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "m": 1e-3}


def quantity(q: str | int | float) -> float:
    """A Kubernetes quantity (`64Gi`, `500m`, `2`) as a number (bytes, cores)."""
    q = str(q)
    for unit in sorted(_UNITS, key=len, reverse=True):
        if q.endswith(unit):
            return float(q[: -len(unit)]) * _UNITS[unit]
    return float(q)


def _parse_time(stamp: str) -> float:
    return time.mktime(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone


def simulated_usage(nodes: list[dict], pods: list[dict], t: float) -> dict[str, tuple[str, str, list[tuple[dict, float]]]]:
    """cAdvisor's names for the running pods of the simulator's nodes (no kubelet measures them): memory at
    the container's request, CPU time at its request since the pod started; labelled simulated."""
    fake = {n["metadata"]["name"] for n in nodes if (n["metadata"].get("annotations") or {}).get(FAKE_NODE[0]) == FAKE_NODE[1]}
    mem, cpu = [], []
    for p in pods:
        st = p.get("status") or {}
        if p["spec"].get("nodeName") not in fake or st.get("phase") != "Running":
            continue
        started = _parse_time(st["startTime"]) if st.get("startTime") else t
        for c in p["spec"].get("containers") or []:
            req = (c.get("resources") or {}).get("requests") or {}
            lb = {"namespace": p["metadata"]["namespace"], "pod": p["metadata"]["name"], "container": c["name"],
                  "node": p["spec"]["nodeName"], "simulated": "true"}
            mem.append((lb, quantity(req.get("memory", 0))))
            cpu.append((lb, round(quantity(req.get("cpu", 0)) * max(t - started, 0.0), 3)))
    return {
        "container_memory_working_set_bytes": ("gauge", "Current working set of the container in bytes (simulated: its request).", mem),
        "container_cpu_usage_seconds_total": ("counter", "Cumulative cpu time consumed in core-seconds (simulated: its request).", cpu),
    }


# ----------------------------------------------------------------------------- cluster state (kube-state-metrics names)

def cluster_state(nodes: list[dict], pods: list[dict]) -> dict[str, tuple[str, str, list[tuple[dict, float]]]]:
    """Node readiness, GPU capacity and requests, container restarts and waiting reasons."""
    ready, cap, req, restarts, waiting = [], [], [], [], []
    for n in nodes:
        name = n["metadata"]["name"]
        cond = next((c.get("status", "Unknown") for c in (n.get("status") or {}).get("conditions") or [] if c["type"] == "Ready"), "Unknown")
        for s in ("true", "false", "unknown"):
            ready.append(({"node": name, "condition": "Ready", "status": s}, float(cond.lower() == s)))
        if gpus := int(((n.get("status") or {}).get("capacity") or {}).get(GPU_RESOURCE) or 0):
            cap.append(({"node": name, "resource": "nvidia_com_gpu", "unit": "integer"}, float(gpus)))
    for p in pods:
        m = p["metadata"]
        base = {"namespace": m["namespace"], "pod": m["name"]}
        if holds_gpus(p):
            for c in p["spec"].get("containers") or []:
                if g := _gpus_of(c):
                    req.append(({**base, "container": c["name"], "node": p["spec"]["nodeName"], "resource": "nvidia_com_gpu",
                                 "unit": "integer"}, float(g)))
        for cs in (p.get("status") or {}).get("containerStatuses") or []:
            lb = {**base, "container": cs["name"]}
            restarts.append((lb, float(cs.get("restartCount", 0))))
            if reason := ((cs.get("state") or {}).get("waiting") or {}).get("reason"):
                waiting.append(({**lb, "reason": reason}, 1.0))
    return {
        "kube_node_status_condition": ("gauge", "The condition of a cluster node.", ready),
        "kube_node_status_capacity": ("gauge", "The capacity for different resources of a node.", cap),
        "kube_pod_container_resource_requests": ("gauge", "The number of requested resource by a container.", req),
        "kube_pod_container_status_restarts_total": ("counter", "The number of container restarts per container.", restarts),
        "kube_pod_container_status_waiting_reason": ("gauge", "Describes the reason the container is waiting.", waiting),
    }


# ----------------------------------------------------------------------------- the server

@dataclass
class Exporter:
    """A thread collects every `refresh` seconds (the API server's nodes and pods, the GPUs) and renders the
    page; a scrape sends the last page, so scraping thousands of GPUs costs no more than sending them."""

    source: object | None
    kube: Kube | None
    state: bool
    refresh: float = 5.0
    lists: tuple[list[dict], list[dict]] | None = None
    page: str = ""
    error: str = ""
    ready: threading.Event = field(default_factory=threading.Event)

    def update(self) -> None:
        """One round: list (keeping the last lists when the API server is away), collect, render."""
        try:
            if self.kube is not None and (self.state or isinstance(self.source, SimulatedSource)):
                try:
                    self.lists = (self.kube.get("/api/v1/nodes")["items"], self.kube.get("/api/v1/pods")["items"])
                except Exception as e:  # noqa: BLE001 - the API server may be briefly away
                    if self.lists is None:
                        raise
                    print(f"gpu-exporter: listing nodes and pods: {str(e)[:200]}; serving the last lists", flush=True)
                nodes, pods = self.lists
            else:
                nodes = pods = []
            if isinstance(self.source, SimulatedSource):
                gpus = self.source.gpus(nodes, pods)
            else:
                gpus = self.source.gpus() if self.source is not None else []
            families = cluster_state(nodes, pods) if self.state else {}
            if isinstance(self.source, SimulatedSource):
                families.update(simulated_usage(nodes, pods, time.time()))
            self.page, self.error = render(gpus, families), ""
        except Exception as e:  # noqa: BLE001 - said on the page's 503 and in the log; the next round tries again
            self.error = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
            print(f"gpu-exporter: {self.error}", flush=True)
        self.ready.set()

    def start(self) -> None:
        def loop():
            while True:
                self.update()
                time.sleep(self.refresh)

        threading.Thread(target=loop, daemon=True).start()

    def collect(self) -> str:
        self.ready.wait(30)
        if not self.page:
            raise RuntimeError(f"nothing collected yet ({self.error or 'starting'})")
        return self.page


def serve(exp: Exporter, host: str, port: int) -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the http.server API
            if self.path.split("?")[0] not in ("/metrics", "/healthz"):
                self.send_error(404)
                return
            try:
                body = (exp.collect() if self.path.startswith("/metrics") else "ok\n").encode()
                code = 200
            except Exception as e:  # noqa: BLE001 - one failed collection is a 503 for Prometheus to see, not a crash
                body, code = f"collect failed: {e}\n".encode(), 503
            self.send_response(code)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    ThreadingHTTPServer((host, port), Handler).serve_forever()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpus", choices=["nvml", "simulated", "none"], default="simulated")
    ap.add_argument("--cluster-state", action="store_true", help="also export node readiness, GPU requests, restarts")
    ap.add_argument("--host", default="")
    ap.add_argument("--port", type=int, default=9400)
    ap.add_argument("--pod-resources", default="/var/lib/kubelet/pod-resources/kubelet.sock")
    ap.add_argument("--refresh", type=float, default=5.0, help="seconds between collections")
    a = ap.parse_args(argv)
    kube = Kube() if a.cluster_state or a.gpus == "simulated" else None
    source: object | None = None
    if a.gpus == "simulated":
        source = SimulatedSource(kube)
    elif a.gpus == "nvml":
        import pynvml

        source = NvmlSource(pynvml, os.environ.get("NODE_NAME", os.uname().nodename),
                            lambda: device_owners(list_pod_resources(a.pod_resources)))
    print(f"gpu-exporter: gpus={a.gpus} cluster-state={a.cluster_state} on {a.host or '*'}:{a.port}", flush=True)
    exp = Exporter(source, kube, a.cluster_state, a.refresh)
    exp.start()
    serve(exp, a.host, a.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
