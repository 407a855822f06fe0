"""notebooks: for the users user-profiles offers, a login per user generated once and kept,
the hub's configuration file, the origin users' servers are served on, and where a person reaches the hub."""

from __future__ import annotations

import hashlib
import json
import secrets
from pathlib import Path

from appliance import paths
from appliance.components.kit import mapped, node_port_url
from appliance.errors import UserError
from appliance.kube import secret_data

HERE = Path(__file__).parent
OWNER = "appliance.dev/owner"
LOGIN_SECRET = "notebook-login"
#: the hub's proxy token, generated once
PROXY_SECRET = "proxy-token"
#: the StorageClass of users' homes (the default class's provisioner, reclaim policy Retain)
HOMES = "appliance-homes"


def _digest(user: str, password: str) -> str:
    """What the hub keeps of a login (the hub config computes the same; salted by the user name)."""
    return hashlib.pbkdf2_hmac("sha256", password.encode(), f"appliance-notebooks:{user}".encode(), 100_000).hex()


def _port_mappings(kube) -> list[dict]:
    """The host ports mapped to the nodes' ports that `up` recorded from the cluster's provider (its state, beside
    its kubeconfig); none where it recorded none."""
    state = Path(kube.kubeconfig).parent / "state.json" if kube is not None else None
    if state is None or state.parent.parent.resolve() != paths.state_dir().resolve() or not state.exists():
        return []
    data = json.loads(state.read_text())
    return data.get("port_mappings") or []


def _origin(options, port_mappings: list[dict]) -> str:
    """The subdomain host users' servers are served under ("" for one origin): the option's URL; for `auto`,
    http://localhost:PORT where the hub is mapped to a loopback port (browsers resolve every *.localhost name
    to loopback), else none: a node address or a LAN name has no wildcard."""
    if options.subdomain_host != "auto":
        return "" if options.subdomain_host == "off" else options.subdomain_host
    found = mapped(options.node_port, port_mappings)
    return f"http://localhost:{found[1]}" if found and found[0].startswith("127.") else ""


def _password(kube, user: str) -> str:
    """The user's login as kept in user-<name>/notebook-login ("" when none yet)."""
    return secret_data(kube, LOGIN_SECRET, f"user-{user}").get("password", "")


def context(options, kube, users=(), **_offered) -> dict:
    """The users (user-profiles' list: a user removed from the profile keeps their namespace, not their hub
    account), their logins (kept, or generated now: never a default), the proxy token, the hub config."""
    names = sorted(users)
    unknown = sorted(set(options.gpu_users) - set(names) - {"*"})
    if unknown and kube is not None:
        raise UserError(f"notebooks.gpu_users names {', '.join(unknown)}, not users of this cluster ({', '.join(names) or 'none'})",
                        "profile components.notebooks.options.gpu_users", "name users listed in components.user-profiles.options.users, or *")
    logins = {u: _password(kube, u) or secrets.token_urlsafe(18) for u in names}
    token = secret_data(kube, PROXY_SECRET, options.namespace).get("token") or (secrets.token_hex(32) if kube is not None else "")
    gpu_users = names if "*" in options.gpu_users else [u for u in options.gpu_users if u in names]
    settings = {"users": names, "gpu_users": gpu_users, "subdomain_host": _origin(options, _port_mappings(kube)), "cull_idle": options.cull_idle, "start_timeout": options.start_timeout,
                "cpu": options.cpu, "memory": options.memory, "cpu_request": options.cpu_request,
                "memory_request": options.memory_request, "home_size": options.home_size, "gpus": options.gpus,
                "namespace": options.namespace, "storage_class": HOMES if (homes := _homes_class(kube)) else ""}
    config = (HERE / "jupyterhub_config.py").read_text()
    return {"users": names, "logins": logins, "hashes": {u: _digest(u, p) for u, p in logins.items()}, "homes": homes,
            "proxy_token": token, "hub_config": config, "settings": settings,
            "config_hash": hashlib.sha256(json.dumps([config, settings]).encode()).hexdigest()[:16]}


def _homes_class(kube) -> dict | None:
    """The StorageClass of users' homes: the cluster's default one's provisioner and parameters, its volumes
    kept when their claims go (Retain); None without a default class (the simulator) or a cluster."""
    if kube is None:
        return None
    default = next((c for c in kube.storage_classes() if (c["metadata"].get("annotations") or {}).get("storageclass.kubernetes.io/is-default-class") == "true"), None)
    if default is None:
        return None
    return {k: default[k] for k in ("provisioner", "parameters", "volumeBindingMode", "allowVolumeExpansion") if default.get(k) is not None}


def _hub_url(options, kube, port_mappings: list[dict]) -> str:
    """Where a person on the host opens the hub: its subdomain host, else a kind port mapping of the NodePort,
    else a node's address."""
    if host := _origin(options, port_mappings):
        return host + "/"
    return node_port_url(kube, options.node_port, port_mappings)


def after_apply(options, kube, users=(), **_offered) -> str:
    """Servers of users no longer in the profile are stopped (the hub forgets those users and their tokens
    when it restarts with the new list; their home volume stays with their namespace)."""
    current = set(users)
    gone = [p for p in kube.list_labelled("v1", "Pod", "component=singleuser-server")
            if (p["metadata"].get("labels") or {}).get(OWNER) not in current]
    kube.delete([{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": p["metadata"]["name"], "namespace": p["metadata"]["namespace"]}}
                 for p in gone])
    stopped = f"; stopped the servers of {', '.join(sorted({p['metadata']['labels'].get(OWNER, '?') for p in gone}))} (no longer users)" if gone else ""
    return f"hub on NodePort {options.node_port}; `appliance users show NAME` prints its address and NAME's login" + stopped


def _isolation(options, kube) -> str:
    """How users' servers are kept apart in browsers (for `status` and `doctor`)."""
    if host := _origin(options, _port_mappings(kube)):
        u = host.split("://", 1)
        return f"servers on per-user origins ({u[0]}://NAME.{u[1]}/)"
    return "servers share the hub's origin (no wildcard name): no user config loaded; set subdomain_host for per-user origins"


def notes(options, kube) -> list[str]:
    """For `status`: how servers are isolated; each user's server, where it runs, or why it waits."""
    out = [_isolation(options, kube)]
    for pod in kube.list_labelled("v1", "Pod", "component=singleuser-server"):
        owner = pod["metadata"].get("labels", {}).get(OWNER, pod["metadata"]["name"])
        status = pod.get("status") or {}
        waiting = next((c.get("message") for c in status.get("conditions") or [] if c.get("type") == "PodScheduled" and c.get("status") == "False"), "")
        where = f"on {pod['spec'].get('nodeName')}" if pod.get("spec", {}).get("nodeName") else waiting
        out.append(f"server of {owner}: {status.get('phase', 'Unknown')} {where}".rstrip())
    return out if len(out) > 1 else [*out, "no servers running"]
