"""tuning: the CRD edits Katib's own manifests carry (controller-gen names each kind's group after its Go
package; the trial's job template is free-form), and db-manager's database password from the database
component's Secret."""

from __future__ import annotations

from appliance.components import database
from appliance.errors import UserError

GROUP = "kubeflow.org"
#: `kubectl get experiments|trials` columns, as Katib's manifests show them
COLUMNS = [{"name": "Type", "type": "string", "jsonPath": ".status.conditions[-1:].type"},
           {"name": "Status", "type": "string", "jsonPath": ".status.conditions[-1:].status"},
           {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]


def _free_form(node) -> None:
    """An object schema with no fields (an embedded job template, unstructured in Go) keeps what it holds."""
    if isinstance(node, dict):
        props = node.get("properties")
        for key, sub in (props or {}).items():
            if key != "metadata" and isinstance(sub, dict) and sub.get("type") == "object" and not (
                    {"properties", "additionalProperties"} & set(sub)):
                sub["x-kubernetes-preserve-unknown-fields"] = True
        for v in node.values():
            _free_form(v)


def _keys_required(node) -> None:
    """A list-map's keys must be required (the API server refuses the CRD otherwise)."""
    if isinstance(node, dict):
        keys = node.get("x-kubernetes-list-map-keys")
        if keys and isinstance(node.get("items"), dict):
            node["items"]["required"] = sorted(set(node["items"].get("required", [])) | set(keys))
        for v in node.values():
            _keys_required(v)
    elif isinstance(node, list):
        for v in node:
            _keys_required(v)


def fix_crd(crd: dict) -> dict:
    """Group kubeflow.org (the API Katib serves), free-form trial templates, list-map keys required,
    printer columns."""
    spec = crd["spec"]
    spec["group"] = GROUP
    crd["metadata"]["name"] = f"{spec['names']['plural']}.{GROUP}"
    for v in spec["versions"]:
        _free_form(v["schema"]["openAPIV3Schema"])
        _keys_required(v["schema"]["openAPIV3Schema"])
        if spec["names"]["kind"] in ("Experiment", "Trial"):
            v["additionalPrinterColumns"] = COLUMNS
    return crd


def context(options, kube) -> dict:
    """`db`: how db-manager reaches its database (host, port, user, password, database)."""
    db = database.credentials(kube, options.database_namespace, options.database_client)
    if kube is not None and not db["password"]:
        raise UserError(f"the database has no client '{options.database_client}'",
                        f"Secret {options.database_namespace}/{database.SECRET}",
                        f"add {options.database_client} to components.database.options.clients and run `appliance up` again")
    return {"db": db}
