"""kserve: the CRD schema edits KServe makes after controller-gen (data cannot say them)."""

from __future__ import annotations


def _drop(node, path: list[str]) -> None:
    """Delete `path` (with `*` wildcards over dict keys) below `node`."""
    if not isinstance(node, dict) or not path:
        return
    head, rest = path[0], path[1:]
    keys = list(node) if head == "*" else [head]
    for k in keys:
        if k not in node:
            continue
        if rest:
            _drop(node[k], rest)
        else:
            del node[k]


def _default_protocol(node) -> None:
    """Kubernetes ≥ 1.27 needs a default on port `protocol` (list-map key) in CRD schemas."""
    if isinstance(node, dict):
        props = node.get("properties")
        if isinstance(props, dict) and "protocol" in props and isinstance(props["protocol"], dict):
            props["protocol"]["default"] = "TCP"
        for v in node.values():
            _default_protocol(v)
    elif isinstance(node, list):
        for v in node:
            _default_protocol(v)


def fix_crd(crd: dict) -> dict:
    """The schema edits KServe makes after controller-gen: model/framework fields optional, no
    ephemeralContainers (size), probes' port optional, protocol defaults."""
    kind = crd["spec"]["names"]["kind"]
    for v in crd["spec"]["versions"]:
        spec = v["schema"]["openAPIV3Schema"]["properties"]["spec"]
        if kind == "InferenceService":
            P = ["properties", "*", "properties"]
            _drop(spec, P + ["*", "required"])
            _drop(spec, P + ["ephemeralContainers"])
            for probe in ("readinessProbe", "livenessProbe"):
                for h in ("httpGet", "tcpSocket"):
                    _drop(spec, P + ["*", "properties", probe, "properties", h, "required"])
                    _drop(spec, P + ["containers", "items", "properties", probe, "properties", h, "required"])
        if kind in ("InferenceService", "ServingRuntime", "ClusterServingRuntime"):
            _default_protocol(spec)
    return crd
