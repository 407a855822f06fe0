"""notebooks: the users (the namespaces user-profiles made), a login per user generated once and kept,
the hub's configuration file, and where a person reaches the hub."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from pathlib import Path

from appliance.errors import UserError

HERE = Path(__file__).parent
OWNER = "appliance.dev/owner"
LOGIN_SECRET = "notebook-login"
#: the hub's proxy token, generated once
PROXY_SECRET = "proxy-token"


def digest(user: str, password: str) -> str:
    """What the hub keeps of a login (the hub config computes the same; salted by the user name)."""
    return hashlib.pbkdf2_hmac("sha256", password.encode(), f"appliance-notebooks:{user}".encode(), 100_000).hex()


def users(kube) -> list[str]:
    """Users are the namespaces user-profiles labelled with their owner (one list, not two)."""
    if kube is None:
        return []
    items = kube.list_labelled("v1", "Namespace", f"{OWNER},app.kubernetes.io/managed-by=appliance")
    return sorted(i["metadata"]["labels"][OWNER] for i in items if i["metadata"]["name"] == f"user-{i['metadata']['labels'][OWNER]}")


def _kept(kube, name: str, namespace: str, key: str) -> str:
    live = kube.get("v1", "Secret", name, namespace) if kube is not None else None
    data = (live.to_dict().get("data") or {}) if live is not None else {}
    return base64.b64decode(data[key]).decode() if key in data else ""


def password(kube, user: str) -> str:
    """The user's login as kept in user-<name>/notebook-login ("" when none yet)."""
    return _kept(kube, LOGIN_SECRET, f"user-{user}", "password")


def context(options, kube) -> dict:
    """Users, their logins (kept, or generated now: never a default), the proxy token, the hub config."""
    names = users(kube)
    unknown = sorted(set(options.gpu_users) - set(names) - {"*"})
    if unknown and kube is not None:
        raise UserError(f"notebooks.gpu_users names {', '.join(unknown)}, not users of this cluster ({', '.join(names) or 'none'})",
                        "profile components.notebooks.options.gpu_users", "name users listed in components.user-profiles.options.users, or *")
    logins = {u: password(kube, u) or secrets.token_urlsafe(18) for u in names}
    token = _kept(kube, PROXY_SECRET, options.namespace, "token") or (secrets.token_hex(32) if kube is not None else "")
    gpu_users = names if "*" in options.gpu_users else [u for u in options.gpu_users if u in names]
    settings = {"users": names, "gpu_users": gpu_users, "cull_idle": options.cull_idle, "start_timeout": options.start_timeout,
                "cpu": options.cpu, "memory": options.memory, "cpu_request": options.cpu_request,
                "memory_request": options.memory_request, "home_size": options.home_size, "gpus": options.gpus,
                "namespace": options.namespace}
    config = (HERE / "jupyterhub_config.py").read_text()
    return {"users": names, "logins": logins, "hashes": {u: digest(u, p) for u, p in logins.items()},
            "proxy_token": token, "hub_config": config, "settings": settings,
            "config_hash": hashlib.sha256(json.dumps([config, settings]).encode()).hexdigest()[:16]}


def hub_url(options, kube, port_mappings: list[dict]) -> str:
    """Where a person on the host opens the hub: a kind port mapping of the NodePort, else a node's address."""
    for m in port_mappings:
        if int(m.get("container_port", m.get("containerPort", 0))) == options.node_port:
            return f"http://{m.get('listen_address', m.get('listenAddress')) or '127.0.0.1'}:{m.get('host_port', m.get('hostPort'))}/"
    return f"http://{kube.internal_ips()[0]}:{options.node_port}/"


def after_apply(options, kube) -> str:
    return f"hub on NodePort {options.node_port}; `appliance users show NAME` prints its address and NAME's login"


def notes(options, kube) -> list[str]:
    """For `status`: each user's server, where it runs, or why it waits."""
    out = []
    for pod in kube.list_labelled("v1", "Pod", "component=singleuser-server"):
        owner = pod["metadata"].get("labels", {}).get(OWNER, pod["metadata"]["name"])
        status = pod.get("status") or {}
        waiting = next((c.get("message") for c in status.get("conditions") or [] if c.get("type") == "PodScheduled" and c.get("status") == "False"), "")
        where = f"on {pod['spec'].get('nodeName')}" if pod.get("spec", {}).get("nodeName") else waiting
        out.append(f"server of {owner}: {status.get('phase', 'Unknown')} {where}".rstrip())
    return out or ["no servers running"]
