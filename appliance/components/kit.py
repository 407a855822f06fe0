"""The component kit: a component is a folder named as in the catalog holding `component.yaml` (description,
dependencies, options with defaults, the kinds users may use) and `manifests/*.yaml` (Jinja2 templates of
the objects), plus `hooks.py` only for what data cannot say. One engine renders, applies (server-side, one
field manager, a component label), prunes what the new manifests no longer hold, derives readiness from
what it applied and sums requests from the pod templates. See docs/components.md."""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, create_model

from appliance import certs, paths
from appliance.components import Component, ComponentImage, Options, Resources
from appliance.components import decl as declared
from appliance.components.access import user_roles
from appliance.components.decl import Go, Image, Option, Python
from appliance.images import builds
from appliance.images.delivery import CONTROL_PLANE_TAINT
from appliance.kube import secret_data
from appliance.runtime import HOST_IP, HostControllers, Workload
from appliance.util import wait, yamls

HERE = Path(__file__).resolve().parent
COMPONENT_LABEL = "appliance.dev/component"
#: where each component's inventory (the kinds it applied, for pruning) is kept
INVENTORY_NS = "kube-system"
#: an object annotated so is applied once the rest is ready (e.g. it goes through the component's own webhook)
LATE = "appliance.dev/apply-after-ready"
LATE_WAIT = 300
#: an object annotated so holds data (a user's namespace): not pruned when the manifests drop it, and kept by
#: `remove` unless it is told to delete data — as are volume claims, the namespaces holding any, and the CRDs
#: of the users' kinds (made or read by them)
KEEP = "appliance.dev/keep-on-prune"
#: how long `install` waits for a component with volumes to run before it marks them Retain
VOLUMES_WAIT = 600
#: how long `install` waits for a namespace of its own that is being deleted to be gone before making it again
NAMESPACE_GONE = 300
#: the priority class of the platform's own pods (platform-base makes it, above every user-level class):
#: given to each rendered workload that names none, so no tenant pod preempts the platform
PLATFORM_PRIORITY = "appliance-platform"
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "Job")
#: option `runtime`, which the kit adds to a component with host workloads (`host:`): where they run
RUNTIME = "auto: host where the provider runs no pods (the simulator), else in-cluster; in-cluster: {} as pods; host: as supervised host processes"
TYPES = {"string": str, "integer": int, "boolean": bool, "number": float}


def _option_model(name: str, spec: dict[str, Option]) -> type[Options]:
    """A pydantic model (unknown keys are errors) from the declared options."""
    fields: dict[str, Any] = {}
    for key, o in spec.items():
        t: Any = TYPES[o.type]
        if o.enum is not None:
            t = Literal[tuple(o.enum)]
        if o.or_ is not None:  # also these literal values, e.g. an integer or "auto"
            t = t | Literal[tuple(o.or_)]
        extra = o.model_dump(include={"pattern", "ge", "le", "min_length"}, exclude_none=True)
        if o.is_list:  # constraints on a list's items, min_length on the list
            item = {k: extra.pop(k) for k in ("pattern", "ge", "le") if k in extra}
            t = list[Annotated[t, Field(**item)]] if item else list[t]
            fields[key] = (t, Field(default_factory=lambda d=o.default: list(d or []), description=o.description, **extra))
        else:
            fields[key] = (t | None if o.default is None and not o.required else t,
                           Field(... if o.required else o.default, description=o.description, **extra))
    return create_model(f"{name.title().replace('-', '')}Opts", __base__=Options, **fields)


def _options(decl: declared.Decl) -> dict[str, Option]:
    """The declared options, after `runtime` for a component with host workloads."""
    if not decl.host:
        return decl.options
    runtime = Option(enum=["auto", "in-cluster", "host"], default="auto", description=RUNTIME.format(", ".join(h.workload for h in decl.host)))
    return {"runtime": runtime, **decl.options}


def node_cidrs(kube) -> list[str]:
    """Every node's InternalIP as a single-address CIDR (none without a cluster)."""
    import ipaddress

    return [str(ipaddress.ip_network(a)) for a in kube.internal_ips()] if kube is not None else []


def mapped(node_port: int, port_mappings: list[dict]) -> tuple[str, int] | None:
    """(host address, host port) a provider's port mapping (Provider.port_mappings) gives NodePort `node_port`, if one does."""
    for m in port_mappings:
        if int(m.get("container_port", m.get("containerPort", 0))) == node_port:
            return m.get("listen_address", m.get("listenAddress")) or "0.0.0.0", int(m.get("host_port", m.get("hostPort")))
    return None


def node_port_url(kube, node_port: int, port_mappings: list[dict]) -> str:
    """Where a person on the host reaches NodePort `node_port`: a port mapping of it, else a node's address."""
    if found := mapped(node_port, port_mappings):
        return f"http://{'127.0.0.1' if found[0] == '0.0.0.0' else found[0]}:{found[1]}/"
    return f"http://{kube.internal_ips()[0]}:{node_port}/"


def quantity_m(q: str | int | float) -> int:
    """CPU quantity → millicores."""
    s = str(q)
    return int(float(s[:-1])) if s.endswith("m") else int(float(s) * 1000)


def quantity_mi(q: str | int | float) -> int:
    """Memory quantity → MiB."""
    s = str(q)
    for unit, f in {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "Ti": 1024**2, "k": 1e3 / 2**20, "M": 1e6 / 2**20, "G": 1e9 / 2**20}.items():
        if s.endswith(unit):
            return int(float(s[: -len(unit)]) * f)
    return int(float(s) / 2**20)


def pod_templates(objs: list[dict]) -> list[tuple[dict, int]]:
    """(pod spec, pods) for every workload: Deployments/StatefulSets by replicas, DaemonSets and Jobs as one."""
    out = []
    for o in objs:
        spec = o.get("spec") or {}
        if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            n = spec.get("replicas", 1) if o["kind"] in ("Deployment", "StatefulSet") else 1
            out.append((spec["template"]["spec"], n))
        elif o["kind"] == "Pod":
            out.append((spec, 1))
    return out


def control_plane_free(objs: list[dict]) -> set[str]:
    """The images only pod templates that cannot run on a tainted control plane run (none of theirs tolerates
    its NoSchedule taint): the component's own controllers and servers. An image no template runs (a user's
    pods run it: the trainer, the notebook) or one a tolerating template runs is not among them."""
    runs: dict[str, bool] = {}  # image -> some template running it tolerates the control plane
    for pod, _ in pod_templates(objs):
        tolerates = any(_tolerates_control_plane(t) for t in pod.get("tolerations") or [])
        for c in [*pod.get("initContainers", []), *pod.get("containers", [])]:
            runs[c["image"]] = runs.get(c["image"], False) or tolerates
    return {image for image, anywhere in runs.items() if not anywhere}


def _tolerates_control_plane(t: dict) -> bool:
    effect = t.get("effect") or ""
    return effect in ("", "NoSchedule") and (t.get("key") == CONTROL_PLANE_TAINT or (not t.get("key") and t.get("operator") == "Exists"))


def requests_of(objs: list[dict]) -> Resources:
    total = Resources()
    for pod, n in pod_templates(objs):
        for c in pod.get("containers", []):
            r = (c.get("resources") or {}).get("requests") or {}
            total = total + Resources(quantity_m(r.get("cpu", 0)) * n, quantity_mi(r.get("memory", 0)) * n)
    return total



def tenant_cel(users) -> str:
    """The CEL test, for the admission policies, that a request comes from a tenant: one of the users (by name)
    or any service account of a user namespace."""
    return f"request.userInfo.username.startsWith('system:serviceaccount:user-') || request.userInfo.username in {json.dumps(list(users))}"

class Kit(Component):
    """A component declared by its folder; subclasses are made by `load()`, one per folder."""

    folder: ClassVar[Path]
    #: its hooks.py, if any (loaded with the declaration)
    hooks: ClassVar[ModuleType | None]
    #: what ready() checks: the objects install applied, and the host processes with the workloads they run
    _applied: tuple[list[dict], HostControllers, list[dict]] | None = None

    @classmethod
    def _hook(cls, fn: str):
        """The optional hook `fn` (a function of hooks.py, one of decl.HOOKS), or None."""
        return getattr(cls.hooks, fn, None)

    def offers(self) -> dict[str, Any]:
        """The hooks' `offers(options)`: what the components depending on it get as keyword arguments of their
        `context` and `after_apply` hooks."""
        return offers(self.options) if (offers := self._hook("offers")) else {}

    @classmethod
    def check_options(cls, options) -> None:
        """The hooks' `check(options)`, run with the profile's checks (before `up` starts anything)."""
        if check := cls._hook("check"):
            check(options)

    @property
    def on_host(self) -> bool:
        """The host runtime: the declared controller Deployment runs as a supervised host process (runtime
        `host`, or `auto` where the provider says pods cannot run)."""
        return bool(self.decl.host) and self.runtime.on_host(self.options.runtime)

    def _env(self):
        import jinja2

        env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
        env.filters["json"] = json.dumps
        env.filters["digest"] = lambda v: hashlib.sha256(json.dumps(v, sort_keys=True).encode()).hexdigest()[:16]
        env.filters["tenant"] = tenant_cel
        env.globals["crd"] = self._crd
        return env

    def _when(self, image: Image) -> bool:
        return image.when is None or bool(self._env().compile_expression(image.when)(options=self.options))

    # --- images: declared with their pinned upstream reference and how to build them here
    def images(self) -> list[ComponentImage]:
        if self.on_host or not self.runtime.pods_run:
            return []  # nothing pulls images where pods do not run
        return [ComponentImage(n, d.upstream, _builder(n, d, self.hooks), tuple(d.aliases))
                for n, d in self.decl.images.items() if self._when(d)]

    @classmethod
    def pins(cls) -> dict[str, list[str]]:
        """What this version of the component is made of: upstream images, Go modules, lock files of its images."""
        d = cls.decl
        go = {f"{i.go.module}@{i.go.version}" for i in d.images.values() if i.go} | ({f"{d.crds.module}@{d.crds.version}"} if d.crds else set())
        return {"images": sorted({i.upstream for i in d.images.values() if i.upstream}), "go": sorted(go),
                "locks": sorted({i.python.requirements for i in d.images.values() if i.python})}

    def go_programs(self) -> list[tuple[str, str, str]]:
        """The kit's own Go builds (a hook builds its image its own way)."""
        host = {h.image for h in self.decl.host} if self.on_host else set()
        out = [(d.go.module, d.go.version, builds.go_binary_name(d.go.binary or n, paths.shipped(d.go.main) if d.go.main else None))
               for n, d in self.decl.images.items() if d.go and not d.hook and (n in host or (not self.on_host and self._when(d)))]
        c = self.decl.crds
        return out + ([(*builds.CONTROLLER_TOOLS, "controller-gen")] if c and not builds.crds_cached(c.module, c.version, c.key) else [])

    def prebuild(self) -> int:
        """The images where pods run, the programs of the host runtime, and the generated CRDs (a render)."""
        made = super().prebuild()
        if self.on_host:
            for h in (h for h in self.decl.host if h.image):  # a `module:` is our own Python: nothing to build
                _host_program(h.image, self.decl.images[h.image])
                made += 1
        if self.decl.crds:
            self.objects()
            made += 1
        return made

    def revision(self) -> str:
        files = sorted(p for p in self.folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
        refs = sorted(_python(d.python).ref() for d in self.decl.images.values() if d.python)
        # what the engine adds to every component's objects is part of it too (a new platform priority re-applies)
        return hashlib.sha256(json.dumps([builds.file_hash(*files), refs, PLATFORM_PRIORITY]).encode()).hexdigest()[:16]

    def _image_refs(self, delivered: dict[str, str] | None) -> dict[str, str]:
        """name → reference: delivered, else known without building (ours), else a placeholder."""
        out = {}
        for n, d in self.decl.images.items():
            out[n] = (delivered or {}).get(n) or (_python(d.python).ref() if d.python else f"appliance.local/{n}:latest")
        return out

    def _crd(self, kind: str) -> str:
        """Template global: the CRD of `kind`, generated by controller-gen from the declared Go types (JSON)."""
        c = self.decl.crds
        folder = builds.generate_crds(c.module, c.version, c.paths, c.key, c.options)
        (crd,) = builds.load_crds(folder, {kind})
        if fix := self._hook("fix_crd"):
            crd = fix(crd)
        return json.dumps(crd)

    def _tls(self, kube) -> dict[str, str]:
        """The declared webhook certificate (base64): kept from the cluster's Secret while valid for the
        Service (and 127.0.0.1 on the host runtime), else made anew."""
        import base64

        c = {k: self._env().from_string(v).render(options=self.options) for k, v in self.decl.certificate.model_dump().items()}
        ips = [HOST_IP] if self.on_host else []
        got = {k: v.encode() for k, v in secret_data(kube, c["secret"], c["namespace"]).items() if k in ("ca.crt", "tls.crt", "tls.key")}
        if not (len(got) == 3 and certs.valid_for(got["tls.crt"], got["ca.crt"], f"{c['service']}.{c['namespace']}.svc", ips)):
            got = certs.service_certs(c["service"], c["namespace"], ips) if kube is not None else dict.fromkeys(got or ("ca.crt", "tls.crt", "tls.key"), b"")
        return {k: base64.b64encode(v).decode() for k, v in got.items()}

    def context(self, kube=None, images: dict[str, str] | None = None, ports: dict[str, int] | None = None) -> dict[str, Any]:
        """What templates see: `options`, `name`, `labels`, `images`, `ports` and `bind` (the address
        controllers listen on: all in a pod, loopback on the host), `tls` (a declared certificate),
        `node_cidrs` (for NetworkPolicies: what comes from the nodes, like the API server calling a webhook),
        and whatever the hooks' `context(options, kube, **given)` adds."""
        ctx = {"options": self.options, "name": self.name,
               "labels": {"app.kubernetes.io/managed-by": "appliance", "app.kubernetes.io/part-of": self.name},
               "images": self._image_refs(images), "ports": ports or dict(self.decl.ports),
               "on_host": self.on_host, "bind": HOST_IP if self.on_host else "", "host_ip": HOST_IP}
        ctx["node_cidrs"] = node_cidrs(kube)
        if self.decl.certificate:
            ctx["tls"] = self._tls(kube)
        if more := self._hook("context"):
            ctx.update(more(self.options, kube, **self.given))
        return ctx

    def objects(self, kube=None, images: dict[str, str] | None = None, ports: dict[str, int] | None = None,
                crds: bool = True) -> list[dict]:
        """The rendered manifests (file order), each labelled with its component, plus the user roles.
        `crds=False` leaves generated CRDs out (no controller-gen run: requests, plans)."""
        env = self._env()
        if not crds:
            env.globals["crd"] = lambda kind: ""
        ctx = self.context(kube, images, ports)
        objs: list[dict] = []
        for path in sorted((self.folder / "manifests").glob("*.yaml")):
            objs += [d for d in yamls.load_all(env.from_string(path.read_text()).render(ctx)) if d]
        for a in self.decl.access:
            objs += user_roles(self.name, a.group, a.resources, ctx["labels"], a.read)
        for o in objs:
            o.setdefault("metadata", {}).setdefault("labels", {})[COMPONENT_LABEL] = self.name
            if o["kind"] in WORKLOADS:
                o["spec"]["template"].setdefault("spec", {}).setdefault("priorityClassName", PLATFORM_PRIORITY)
        return objs

    def _split(self, objs: list[dict]) -> tuple[list[dict], list[dict], list[dict]]:
        """(applied now, applied once the rest is ready, the workloads run on the host instead, in `host:` order)."""
        names = [h.workload for h in self.decl.host] if self.on_host else []
        hosted = sorted((o for o in objs if o["kind"] in ("Deployment", "StatefulSet") and o["metadata"]["name"] in names),
                        key=lambda o: names.index(o["metadata"]["name"]))
        late = [o for o in objs if (o["metadata"].get("annotations") or {}).get(LATE) == "true"]
        now = [o for o in objs if not any(o is x for x in hosted) and o not in late]
        return now, late, hosted

    def requests(self) -> Resources:
        now, late, _ = self._split(self.objects(crds=False))
        return requests_of(now + late)

    def install(self, kube) -> str:
        o = self.options
        images = self.images()
        ready = self.delivery.prepare(images) if images else None  # built (cached) or upstream references
        refs = ready.refs if ready else {}
        controllers = self._controllers(kube)
        ports = controllers.ports(dict(self.decl.ports))
        now, late, hosted = self._split(self.objects(kube, refs, ports))
        if ready:
            ready.deliver(kube, workers_only=control_plane_free(now + late))
        first = [x for x in now if x["kind"] in ("CustomResourceDefinition", "Namespace")]
        for ns in (x["metadata"]["name"] for x in first if x["kind"] == "Namespace"):  # e.g. switched off and on again
            wait.until(lambda n=ns: (not _terminating(kube, n), f"namespace {n} is still being deleted"), NAMESPACE_GONE, self.name, 1.0)
        kube.apply(first)
        wait.until(lambda: (not (m := kube.missing(first)), ", ".join(m)), 60, f"{self.name} CRDs")
        kube.apply([x for x in now if x not in first])
        notes = [f"applied {len(now) + len(late)} objects", *controllers.run(hosted, now, ports, self._workload)]
        if late:
            wait.until(lambda: self._ready(kube, now, controllers, hosted), LATE_WAIT, self.name)
            wait.until(lambda: (kube.apply(late) > 0, ""), 120, ", ".join(f"{x['kind']}/{x['metadata']['name']}" for x in late))
        self._applied = (now + late, controllers, hosted)
        if _has_volumes(now + late):  # claims bind once their pods run: wait for that, then keep their data
            wait.until(lambda: self._ready(kube, now + late, controllers, hosted), VOLUMES_WAIT, self.name)
            if kept := [c for c in _claims(kube, now + late) if c["volume"] and kube.reclaim(c["volume"], "Retain")]:
                notes.append("volumes kept when their claims go (Retain): " + ", ".join(f"{c['namespace']}/{c['name']}" for c in kept))
        pruned, held = self._prune(kube, now + late)
        if pruned:
            notes.append(f"pruned {pruned}")
        if held:
            notes.append("left the manifests but kept, holding data: " + ", ".join(held))
        if refs:
            notes.append("images " + ", ".join(sorted(set(refs.values()))) + f" ({self.delivery.decision().source})")
        if after := self._hook("after_apply"):
            notes.append(after(o, kube, **self.given))
        return "; ".join(filter(None, notes))

    def _ready(self, kube, objs: list[dict], controllers: HostControllers, hosted: list[dict]) -> tuple[bool, str]:
        missing = kube.missing(objs) + controllers.missing(hosted)
        return (not missing, ", ".join(missing[:5]))

    def ready(self, kube) -> tuple[bool, str]:
        """Whether what `install` applied (in this process; else one render, kept) exists and runs: polled
        every second while `up` waits, so it renders nothing anew (hooks read the API, CRDs are megabytes)."""
        if self._applied is None:
            controllers = self._controllers(kube)
            now, late, hosted = self._split(self.objects(kube, ports=controllers.ports(dict(self.decl.ports))))
            self._applied = (now + late, controllers, hosted)
        return self._ready(kube, *self._applied)

    def notes(self, kube) -> list[str]:
        """Lines `status` shows under the component (the hooks' `notes(options, kube)`), e.g. firing alerts."""
        return notes(self.options, kube) if (notes := self._hook("notes")) else []

    def remove(self, kube, delete_data: bool = False) -> list[str]:
        """Stop its host processes and delete what it applied, except what holds data (volume claims, the CRDs
        of the users' kinds, objects marked KEEP, namespaces holding claims) unless `delete_data` (then its
        volumes go too, Retain or not); returns `Kind/name` of what was kept."""
        self._controllers(kube).stop()
        objs = list(reversed(self.objects(kube)))
        if delete_data:
            for c in _claims(kube, objs):
                if c["volume"]:
                    kube.reclaim(c["volume"], "Delete")
        kept = [] if delete_data else [o for o in objs if self._holds_data(kube, o["kind"], o["metadata"])]
        kube.delete([o for o in objs if not any(o is k for k in kept)])
        if after := self._hook("after_remove"):
            after(self.options, kube)  # e.g. finalizers the stopped controller will not take off
        _, held = self._prune(kube, [], delete_data)
        kept_names = sorted({f"{o['kind']}/{o['metadata']['name']}" for o in kept} | set(held))
        if not kept_names:  # else the inventory stays: a later removal with the data finds what was kept
            kube.delete([self._inventory({})])
        return kept_names

    def render(self, text: str) -> str:
        """A Jinja string of its declaration, with its options."""
        return self._env().from_string(text).render(options=self.options)

    def _holds_data(self, kube, kind: str, meta: dict) -> bool:
        """A volume claim, the CRD of a kind of the users' (`access`: made or read by them, as Katib's trials;
        deleting it deletes every user's objects of that kind), an object marked KEEP, or a namespace with a
        claim in it."""
        users = {f"{r}.{a.group}" for a in self.decl.access for r in (*a.resources, *a.read)}
        return (kind == "PersistentVolumeClaim" or (kind == "CustomResourceDefinition" and meta["name"] in users)
                or (meta.get("annotations") or {}).get(KEEP) == "true" or (kind == "Namespace" and bool(kube.claims(meta["name"]))))

    def claims(self, kube) -> list[dict[str, str]]:
        """The claims it renders and those in the namespaces it makes (a StatefulSet's, a user's homes)."""
        return _claims(kube, self.objects(kube))

    def dump(self, kube, kubectl) -> dict[str, bytes]:
        return dump(self.options, kube, kubectl) if (dump := self._hook("dump")) else {}

    def load(self, kube, kubectl, name: str, path) -> None:
        if load := self._hook("load"):
            load(self.options, kube, kubectl, name, path)

    # --- the host runtime: the workloads of `host:`, where the runtime puts them on the host
    def _controllers(self, kube) -> HostControllers:
        return self.runtime.controllers(kube, [h.workload for h in self.decl.host] if self.on_host else [])

    def _workload(self, name: str) -> Workload:
        """Host workload `name` in the runtime's terms: its program (our module, or its image's, built when it
        starts), the hooks' `host_env(options)`, its routes rendered."""
        h = next(x for x in self.decl.host if x.workload == name)
        if h.module:  # our own Python module, run with the appliance's Python
            program, image = (lambda: [sys.executable, "-m", h.module]), {"module": h.module}
            version = builds.file_hash(paths.shipped(h.module.replace(".", "/") + ".py"))
        else:  # the image as written in component.yaml: the signature of a process an older version started
            d = self.decl.images[h.image]
            program, image, version = (lambda: _host_program(h.image, d)), d.model_dump(exclude_unset=True), _sig_version(d)
        env = more(self.options) if (more := self._hook("host_env")) else {}
        routes = {self._env().from_string(pattern).render(options=self.options): port for pattern, port in h.routes.items()}
        return Workload(program, image, version, env, routes, h.unprivileged, tuple(h.fixed_paths), tuple(h.private_paths), h.ready_line)

    # --- pruning: objects labelled with this component whose kind it ever applied, no longer rendered
    def _inventory(self, kinds: dict[str, bool]) -> dict:
        return {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": f"appliance-inventory-{self.name}", "namespace": INVENTORY_NS,
                             "labels": {"app.kubernetes.io/managed-by": "appliance"}},
                "data": {"kinds": json.dumps(sorted(kinds))}}

    def _prune(self, kube, objs: list[dict], delete_data: bool = False) -> tuple[int, list[str]]:
        """Delete what carries this component's label, of a kind it ever applied, and is not in `objs`, except
        what holds data unless `delete_data`: (how many went, `Kind/name` of each kept for its data)."""
        live = kube.get("v1", "ConfigMap", f"appliance-inventory-{self.name}", INVENTORY_NS)
        before = json.loads(((live.to_dict().get("data") or {}) if live is not None else {}).get("kinds", "[]"))
        now = {f"{o['apiVersion']} {o['kind']}": True for o in objs}
        keep = {(o["kind"], (o["metadata"].get("namespace") or ""), o["metadata"]["name"]) for o in objs}
        gone, held = [], []
        for key in sorted(set(before) | set(now)):
            api_version, kind = key.split(" ")
            for item in kube.list_labelled(api_version, kind, f"{COMPONENT_LABEL}={self.name}"):
                m = item["metadata"]
                if (kind, m.get("namespace") or "", m["name"]) in keep:
                    continue
                if not delete_data and self._holds_data(kube, kind, m):
                    held.append(f"{kind}/{m['name']}")  # e.g. a user's namespace: their data outlives their entry
                    continue
                gone.append({"apiVersion": api_version, "kind": kind, "metadata": m})
        kube.delete(gone)
        if objs:
            kube.apply([self._inventory(now)])
        return len(gone), held


def _claims(kube, objs: list[dict]) -> list[dict[str, str]]:
    """The claims among `objs` and in the namespaces `objs` make."""
    mine = {(o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objs if o["kind"] == "PersistentVolumeClaim"}
    owned = {o["metadata"]["name"] for o in objs if o["kind"] == "Namespace"}
    return [c for c in kube.claims() if c["namespace"] in owned or (c["namespace"], c["name"]) in mine] if mine or owned else []


def _terminating(kube, namespace: str) -> bool:
    """Whether `namespace` is being deleted (it refuses new objects until it is gone)."""
    live = kube.get("v1", "Namespace", namespace)
    return live is not None and bool((live.to_dict().get("metadata") or {}).get("deletionTimestamp"))


def _has_volumes(objs: list[dict]) -> bool:
    """Whether `objs` claim volumes: a claim, or a StatefulSet with claim templates."""
    return any(o["kind"] == "PersistentVolumeClaim" or (o["kind"] == "StatefulSet" and o["spec"].get("volumeClaimTemplates")) for o in objs)


def _sig_version(image: Image) -> str:
    if image.python:
        return builds.file_hash(*(paths.shipped(src) for src in image.python.files.values()))
    g = image.go
    return f"{g.module}@{g.version}" + (f"+{builds.file_hash(paths.shipped(g.main))[:12]}" if g.main else "")


def _host_program(name: str, image: Image) -> list[str]:
    """The argv prefix of an image run on the host: a Go image's program, or a Python image's entrypoint
    with the appliance's own Python and the files at their place in this checkout."""
    if not image.python:
        return [str(_go_program(name, image.go))]
    files = {dst: str(paths.shipped(src)) for dst, src in image.python.files.items()}
    return [sys.executable if a == "python3" else files.get(a, a) for a in image.python.entrypoint]


def _go_program(name: str, g: Go) -> Path:
    return builds.go_binary(g.module, g.version, g.package, g.binary or name,
                            tags=g.tags, env=g.env, main=paths.shipped(g.main) if g.main else None)


def _python(p: Python) -> builds.PythonImage:
    return builds.PythonImage(p.repo, paths.shipped(p.requirements), tuple((dst, paths.shipped(src)) for dst, src in p.files.items()),
                              tuple(p.entrypoint), tuple(p.packages), (p.npm.path, paths.shipped(p.npm.package)) if p.npm else None,
                              suite=p.suite)


def _builder(name: str, d: Image, hooks: ModuleType | None):
    """How to build image `name` here: a Go program alone (at `go.path`), a Python service image, or a
    function of the component's hooks (`hook: name`) given the `go` declaration."""
    if d.hook:
        return functools.partial(getattr(hooks, d.hook), d.go)
    if d.python:
        return _python(d.python).build
    g = d.go
    return lambda: builds.binary_image(_go_program(name, g), g.repo or f"appliance.local/{name}", g.path)


def load(folder: Path) -> type[Kit]:
    """The Kit subclass declared by `folder/component.yaml`, its hooks checked against the declaration."""
    decl, origins = declared.load(folder / "component.yaml")
    name = decl.name
    if name.replace("-", "_") != folder.name:
        raise ValueError(f"{folder}: component '{name}' must live in a folder named {name.replace('-', '_')}")
    hooks = importlib.import_module(f"appliance.components.{folder.name}.hooks") if (HERE / folder.name / "hooks.py").exists() else None
    declared.check_hooks(decl, origins, hooks, folder / "component.yaml")
    return type(re.sub(r"\W", "", name.title()), (Kit,), {
        "name": name, "description": decl.description, "depends": decl.depends,
        "Opts": _option_model(name, _options(decl)), "folder": folder, "decl": decl, "hooks": hooks,
    })


def discover() -> list[type[Kit]]:
    """Every component folder under appliance/components/."""
    return [load(p.parent) for p in sorted(HERE.glob("*/component.yaml"))]
