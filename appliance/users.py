"""The cluster's users (the user-profiles component) and a kubeconfig for each that holds only that user's
token: what a person or a pipeline SDK on the host uses to act as the user, never as the admin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from appliance import components, orchestrator, paths, providers
from appliance.components import notebooks, tracking
from appliance.errors import UserError
from appliance.util.files import atomic_write

COMPONENT = "user-profiles"


def listed(cluster: str) -> list[dict[str, Any]]:
    """Each user: name, namespace and where their kubeconfig is written."""
    profile, _ = orchestrator.recorded(cluster)
    spec = profile.components.get(COMPONENT)
    if spec is None:
        raise UserError(f"cluster '{cluster}' has no users", f"component {COMPONENT}", f"enable {COMPONENT} in the profile and run `appliance up`")
    users = components.CATALOG[COMPONENT](spec.options).options.users
    folder = paths.state_dir(cluster) / "users"
    return [{"user": u, "namespace": f"user-{u}", "kubeconfig": str(folder / f"{u}.kubeconfig")} for u in users]


def kubeconfig(cluster: str, user: str, hours: int = 24) -> dict[str, Any]:
    """Write `<state>/users/<user>.kubeconfig`: the API server, its CA and a token of the user's service
    account valid for `hours` (TokenRequest), nothing of the admin's. Returns the user's entry."""
    rows = listed(cluster)
    entry = next((u for u in rows if u["user"] == user), None)
    if entry is None:
        known = ", ".join(u["user"] for u in rows)
        raise UserError(f"no user '{user}' on cluster '{cluster}'", f"component {COMPONENT} options.users", f"known users: {known}", code=2)
    kube = orchestrator.cluster_kube(cluster)
    cfg = kube.kubeconfig_for(entry["namespace"], user, hours * 3600, cluster)
    path = Path(entry["kubeconfig"])
    atomic_write(path, yaml.safe_dump(cfg), mode=0o600)
    return {**entry, "expires_hours": hours, "notebooks": notebook_login(cluster, user, kube), "tracking": tracking_address(cluster, kube)}


def tracking_address(cluster: str, kube) -> str | None:
    """The MLflow tracking server's address, where the cluster has tracking."""
    found = _installed(cluster, "tracking")
    return tracking.address(found[0], kube, found[1]) if found else None


def notebook_login(cluster: str, user: str, kube) -> dict[str, str] | None:
    """The hub's address and the user's generated login, where the cluster has notebooks."""
    found = _installed(cluster, "notebooks")
    return notebooks.login(found[0], kube, user, found[1]) if found else None


def _installed(cluster: str, name: str) -> tuple[Any, list[dict]] | None:
    """(options, the provider's port mappings) of component `name` where the cluster has it (its state says), else None."""
    profile, provider = orchestrator.recorded(cluster)
    spec = profile.components.get(name)
    if spec is None:
        return None
    return components.CATALOG[name](spec.options).options, providers.get(provider).port_mappings(profile.cluster)

