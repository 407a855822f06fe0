"""The component kit: a component is a folder named as in the catalog holding `component.yaml` (description,
dependencies, options with defaults, the kinds users may use) and `manifests/*.yaml` (Jinja2 templates of
the objects), plus `hooks.py` only for what data cannot say. One engine renders, applies (server-side, one
field manager, a component label), prunes what the new manifests no longer hold, derives readiness from
what it applied and sums requests from the pod templates. See docs/components.md."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import Field, create_model

from appliance.components import Component, Options, Resources
from appliance.components.access import user_roles

HERE = Path(__file__).resolve().parent
COMPONENT_LABEL = "appliance.dev/component"
#: where each component's inventory (the kinds it applied, for pruning) is kept
INVENTORY_NS = "kube-system"
#: an object annotated so is not pruned when the manifests drop it (only `remove` deletes it)
KEEP = "appliance.dev/keep-on-prune"
TYPES = {"string": str, "integer": int, "boolean": bool, "number": float}


def _option_model(name: str, spec: dict[str, dict]) -> type[Options]:
    """A pydantic model (unknown keys are errors) from the declared options."""
    fields: dict[str, Any] = {}
    for key, o in spec.items():
        t: Any = TYPES[o.get("type", "string")]
        if "enum" in o:
            t = Literal[tuple(o["enum"])]
        if "or" in o:  # also these literal values, e.g. an integer or "auto"
            t = t | Literal[tuple(o["or"])]
        if o.get("list"):
            t = list[t]
        default = o.get("default")
        extra = {k: o[k] for k in ("pattern", "ge", "le", "min_length") if k in o}
        if o.get("list"):
            fields[key] = (t, Field(default_factory=lambda d=default: list(d or []), description=o.get("description", ""), **extra))
        else:
            fields[key] = (t | None if default is None and not o.get("required") else t,
                           Field(... if o.get("required") else default, description=o.get("description", ""), **extra))
    return create_model(f"{name.title().replace('-', '')}Opts", __base__=Options, **fields)


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


def requests_of(objs: list[dict]) -> Resources:
    total = Resources()
    for pod, n in pod_templates(objs):
        for c in pod.get("containers", []):
            r = (c.get("resources") or {}).get("requests") or {}
            total = total + Resources(quantity_m(r.get("cpu", 0)) * n, quantity_mi(r.get("memory", 0)) * n)
    return total


class Kit(Component):
    """A component declared by its folder; subclasses are made by `load()`, one per folder."""

    folder: ClassVar[Path]
    decl: ClassVar[dict]

    @property
    def hooks(self):
        return _hooks(self.name)

    def context(self, kube=None) -> dict[str, Any]:
        """What templates see: `options`, `name`, `labels` (and whatever the hooks add)."""
        ctx = {"options": self.options, "name": self.name,
               "labels": {"app.kubernetes.io/managed-by": "appliance", "app.kubernetes.io/part-of": self.name}}
        if self.hooks and hasattr(self.hooks, "context"):
            ctx.update(self.hooks.context(self.options, kube))
        return ctx

    def objects(self, kube=None) -> list[dict]:
        """The rendered manifests (file order), each labelled with its component, plus the user roles."""
        import jinja2

        env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
        env.filters["json"] = json.dumps
        ctx = self.context(kube)
        objs: list[dict] = []
        for path in sorted((self.folder / "manifests").glob("*.yaml")):
            text = env.from_string(path.read_text()).render(ctx)
            objs += [d for d in yaml.safe_load_all(text) if d]
        for a in self.decl.get("access") or []:
            objs += user_roles(self.name, a["group"], a["resources"], ctx["labels"])
        for o in objs:
            o.setdefault("metadata", {}).setdefault("labels", {})[COMPONENT_LABEL] = self.name
        return objs

    def requests(self) -> Resources:
        return requests_of(self.objects())

    def install(self, kube) -> str:
        objs = self.objects(kube)
        n = kube.apply(objs)
        pruned = self._prune(kube, objs)
        notes = [f"applied {n} objects"] + ([f"pruned {pruned}"] if pruned else [])
        if self.hooks and hasattr(self.hooks, "after_apply"):
            notes.append(self.hooks.after_apply(self.options, kube))
        return "; ".join(filter(None, notes))

    def ready(self, kube) -> tuple[bool, str]:
        missing = kube.missing(self.objects(kube))
        return (not missing, ", ".join(missing[:5]))

    def remove(self, kube) -> None:
        kube.delete(reversed(self.objects(kube)))
        self._prune(kube, [])
        kube.delete([self._inventory({})])

    # --- pruning: objects labelled with this component whose kind it ever applied, no longer rendered
    def _inventory(self, kinds: dict[str, bool]) -> dict:
        return {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": f"appliance-inventory-{self.name}", "namespace": INVENTORY_NS,
                             "labels": {"app.kubernetes.io/managed-by": "appliance"}},
                "data": {"kinds": json.dumps(sorted(kinds))}}

    def _prune(self, kube, objs: list[dict]) -> int:
        live = kube.get("v1", "ConfigMap", f"appliance-inventory-{self.name}", INVENTORY_NS)
        before = json.loads(((live.to_dict().get("data") or {}) if live is not None else {}).get("kinds", "[]"))
        now = {f"{o['apiVersion']} {o['kind']}": True for o in objs}
        keep = {(o["kind"], (o["metadata"].get("namespace") or ""), o["metadata"]["name"]) for o in objs}
        gone = []
        for key in sorted(set(before) | set(now)):
            api_version, kind = key.split(" ")
            for item in kube.list_labelled(api_version, kind, f"{COMPONENT_LABEL}={self.name}"):
                m = item["metadata"]
                if (m.get("annotations") or {}).get(KEEP) == "true" and objs:
                    continue  # e.g. a user's namespace: their data outlives their removal from the profile
                if (kind, m.get("namespace") or "", m["name"]) not in keep:
                    gone.append({"apiVersion": api_version, "kind": kind, "metadata": m})
        kube.delete(gone)
        if objs:
            kube.apply([self._inventory(now)])
        return len(gone)


def _hooks(name: str):
    path = HERE / name.replace("-", "_") / "hooks.py"
    return importlib.import_module(f"appliance.components.{name.replace('-', '_')}.hooks") if path.exists() else None


def load(folder: Path) -> type[Kit]:
    """The Kit subclass declared by `folder/component.yaml`."""
    decl = yaml.safe_load((folder / "component.yaml").read_text()) or {}
    name = decl["name"]
    if name.replace("-", "_") != folder.name:
        raise ValueError(f"{folder}: component '{name}' must live in a folder named {name.replace('-', '_')}")
    return type(re.sub(r"\W", "", name.title()), (Kit,), {
        "name": name, "description": decl.get("description", ""), "depends": tuple(decl.get("depends") or ()),
        "Opts": _option_model(name, decl.get("options") or {}), "folder": folder, "decl": decl,
    })


def discover() -> list[type[Kit]]:
    """Every component folder under appliance/components/."""
    return [load(p.parent) for p in sorted(HERE.glob("*/component.yaml"))]
