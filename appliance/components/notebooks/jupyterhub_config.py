"""JupyterHub of the appliance (mounted from a ConfigMap): KubeSpawner starts each user's server in that
user's namespace under that user's service account; logins are checked against the hashes in a Secret.
Users' servers run code their users control, so each is served on its own origin where the settings give a
subdomain host; on one origin (no wildcard name) a server loads no configuration from its user's home."""

import asyncio
import hashlib
import hmac
import json
import os

from jupyterhub.auth import Authenticator
from kubernetes_asyncio.client import ApiException, CustomObjectsApi
from kubespawner import KubeSpawner

HERE = os.path.dirname(os.path.abspath(__file__))
S = json.load(open(os.path.join(HERE, "settings.json")))
LOGINS = os.path.join(HERE, "logins")  # a Secret volume: one file per user holding the hash of their login
HUB = f"http://hub.{S['namespace']}.svc.cluster.local:8081"
KUEUE = ("kueue.x-k8s.io", "v1beta2")
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"


class SecretAuthenticator(Authenticator):
    """A user of the profile whose password hashes to what the Secret keeps (generated at `up`). A user the
    profile no longer lists is invalid: the hub deletes them, their tokens and sessions when it starts."""

    def add_user(self, user):
        if user.name not in S["users"]:
            raise ValueError(f"{user.name} is no longer a user of this cluster")
        return super().add_user(user)

    async def authenticate(self, handler, data):
        user, given = data.get("username", ""), data.get("password", "")
        if user not in S["users"]:
            return None
        try:
            want = open(os.path.join(LOGINS, user)).read().strip()
        except OSError:
            return None
        got = hashlib.pbkdf2_hmac("sha256", given.encode(), f"appliance-notebooks:{user}".encode(), 100_000).hex()
        return user if hmac.compare_digest(want, got) else None


def queue_reason(workloads: list[dict], pod: str) -> str | None:
    """Why Kueue holds the server's pod `pod` (its unfinished Workload's quota condition), or None."""
    for wl in workloads:
        owners = wl["metadata"].get("ownerReferences") or []
        conds = {c["type"]: c for c in (wl.get("status") or {}).get("conditions") or []}
        if any(o.get("kind") == "Pod" and o.get("name") == pod for o in owners) and conds.get("Finished", {}).get("status") != "True":
            held = conds.get("QuotaReserved")
            return None if held is None or held["status"] == "True" else f"waiting in queue {wl['spec']['queueName']}: {held['message']}"
    return None


class UserNamespaceSpawner(KubeSpawner):
    """KubeSpawner in user-<name>: the namespace is user-profiles', so the hub never creates namespaces. A GPU
    server waits in its user's queue where the queues component made one; its spawn page then says why."""

    queued = False
    queue_poll = 3  # seconds without an event before the queue is asked again (`poll` is the Spawner's own method)

    async def _ensure_namespace(self):
        return None

    async def queue_gpu_server(self, pod):
        """The pod, labelled with the user's LocalQueue `default` if it asks for GPUs and that queue exists."""
        self.queued = False
        if "nvidia.com/gpu" in (pod.spec.containers[0].resources.limits or {}):
            try:
                await CustomObjectsApi(self.api.api_client).get_namespaced_custom_object(*KUEUE, self.namespace, "localqueues", "default")
            except ApiException as e:
                if e.status != 404:  # 404: no queues here (or no Kueue at all)
                    raise
            else:
                pod.metadata.labels[QUEUE_LABEL] = "default"
                self.queued = True
        return pod

    async def progress(self):
        """KubeSpawner's messages (the pod's events) and, while a queued server waits, Kueue's reason each
        time it changes (a gated pod has no scheduling events)."""
        events, told = super().progress(), None
        step = asyncio.ensure_future(anext(events))
        try:
            while True:
                done, _ = await asyncio.wait({step}, timeout=self.queue_poll)
                if step in done:
                    try:
                        yield step.result()
                    except StopAsyncIteration:
                        return
                    step = asyncio.ensure_future(anext(events))
                elif self.queued:
                    got = await CustomObjectsApi(self.api.api_client).list_namespaced_custom_object(*KUEUE, self.namespace, "workloads")
                    if (why := queue_reason(got["items"], self.pod_name)) and why != told:
                        told = why
                        yield {"message": why}
        finally:
            step.cancel()


def cores(quantity: str) -> float:
    return float(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def byte_spec(quantity: str) -> str:
    """A Kubernetes quantity (2Gi) as JupyterHub writes sizes (2G: binary units)."""
    return quantity[:-1] if quantity.endswith("i") else quantity


def server_options(spawner):
    """A small CPU server for everyone; a GPU server for the users the profile offers it to."""
    cpu = {"display_name": "CPU server", "slug": "cpu", "default": True,
           "description": f"{S['cpu']} CPU, {S['memory']} memory"}
    gpu = {"display_name": "GPU server", "slug": "gpu",
           "description": f"{S['gpus']} GPU(s), {S['cpu']} CPU, {S['memory']} memory; runs only on a GPU node",
           "kubespawner_override": {
               "extra_resource_limits": {"nvidia.com/gpu": str(S["gpus"])},
               "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]}}
    return [cpu, gpu] if spawner.user.name in S["gpu_users"] else [cpu]


#: the server's process: not dumpable (so its user's own processes beside it, a terminal or `kubectl exec`, cannot
#: ptrace it or read its memory), Python isolated (no user site, no module from the working directory: the home)
LAUNCH = ("import ctypes, runpy\n"
          "if ctypes.CDLL(None).prctl(4, 0, 0, 0, 0):\n    raise SystemExit('prctl(PR_SET_DUMPABLE, 0) failed')\n"
          "runpy.run_module('jupyterhub.singleuser', run_name='__main__', alter_sys=True)")

c = get_config()  # noqa: F821 (JupyterHub's config loader defines it)
c.JupyterHub.authenticator_class = SecretAuthenticator
c.Authenticator.allowed_users = set(S["users"])
c.Authenticator.allow_existing_users = False  # the profile's list, not whoever the database remembers
c.Authenticator.delete_invalid_users = True
c.JupyterHub.spawner_class = UserNamespaceSpawner
c.JupyterHub.bind_url = "http://:8000"
c.JupyterHub.hub_bind_url = "http://0.0.0.0:8081"
c.JupyterHub.hub_connect_url = HUB
c.JupyterHub.db_url = "sqlite:////srv/jupyterhub/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "/srv/jupyterhub/cookie_secret"
if S["subdomain_host"]:  # NAME.<host>: another origin per user; the proxy routes by host name
    c.JupyterHub.subdomain_host = S["subdomain_host"]
# cookies not sent on cross-site requests but top-level GETs (unset, Chromium would also send them on a top-level POST
# in their first 2 minutes);
# `__Host-` prefixes need HTTPS, which the hub does not serve; XSRF checks and CSP frame-ancestors 'none' are the hub's defaults
c.JupyterHub.tornado_settings = {"cookie_options": {"samesite": "Lax"}}
c.JupyterHub.cleanup_servers = False  # a hub restart keeps users' servers running
c.JupyterHub.cleanup_proxy = False
c.ConfigurableHTTPProxy.should_start = False
c.ConfigurableHTTPProxy.api_url = f"http://proxy-api.{S['namespace']}.svc.cluster.local:8001"

c.KubeSpawner.enable_user_namespaces = True
c.KubeSpawner.user_namespace_template = "user-{username}"
c.KubeSpawner.service_account = "{username}"
c.KubeSpawner.automount_service_account_token = True
c.KubeSpawner.image = S["image"]
c.KubeSpawner.image_pull_policy = "IfNotPresent"
c.KubeSpawner.cmd = None  # settings come in the environment
c.KubeSpawner.extra_container_config = {"command": ["python3", "-I", "-c", LAUNCH]}
c.KubeSpawner.disable_user_config = not S["subdomain_host"]  # on one origin a page its user adds would run as the hub
c.KubeSpawner.default_url = "/lab"
c.KubeSpawner.port = 8888
c.KubeSpawner.hub_connect_url = HUB
c.KubeSpawner.start_timeout = S["start_timeout"]
c.KubeSpawner.http_timeout = 60
c.KubeSpawner.cpu_limit = cores(S["cpu"])
c.KubeSpawner.mem_limit = byte_spec(S["memory"])
c.KubeSpawner.cpu_guarantee = cores(S["cpu_request"])
c.KubeSpawner.mem_guarantee = byte_spec(S["memory_request"])
c.KubeSpawner.uid = 1000
c.KubeSpawner.gid = 100
c.KubeSpawner.fs_gid = 100
c.KubeSpawner.environment = {"HOME": "/home/jovyan", "SHELL": "/bin/bash", "USER": "{username}"}
c.KubeSpawner.working_dir = "/home/jovyan"
c.KubeSpawner.extra_labels = {"appliance.dev/owner": "{username}"}
c.KubeSpawner.container_security_context = {
    "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"}}
c.KubeSpawner.storage_pvc_ensure = True
c.KubeSpawner.pvc_name_template = "home-{username}"
c.KubeSpawner.storage_capacity = S["home_size"]
c.KubeSpawner.storage_access_modes = ["ReadWriteOnce"]
if S["storage_class"]:  # the default class's provisioner, volumes kept when their claims go (hooks.py)
    c.KubeSpawner.storage_class = S["storage_class"]
c.KubeSpawner.volumes = [{"name": "home", "persistentVolumeClaim": {"claimName": "home-{username}"}}]
c.KubeSpawner.volume_mounts = [{"name": "home", "mountPath": "/home/jovyan"}]
c.KubeSpawner.profile_list = server_options
c.KubeSpawner.modify_pod_hook = UserNamespaceSpawner.queue_gpu_server

if S["cull_idle"]:
    c.JupyterHub.load_roles = [{"name": "idle-culler", "services": ["idle-culler"],
                                "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"]}]
    c.JupyterHub.services = [{"name": "idle-culler",
                              # the hub on loopback: its Service routes nothing until the hub is ready, and the culler starts before
                              "command": ["python3", "-m", "jupyterhub_idle_culler", f"--timeout={S['cull_idle']}",
                                          "--url=http://127.0.0.1:8081/hub/api"]}]
