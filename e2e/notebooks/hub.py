"""Drive the notebook hub as a person does, over HTTP: log in with the generated password, start a server,
put a notebook in it, run it there, read it back. Subcommands (run `hub.py -h`):

  url                      (admin) where the hub answers: its subdomain host where each user's server has an origin,
                           else a node's address and the proxy's NodePort
  run USER NOTEBOOK TEXT…  (as USER) log in, start the CPU server, execute NOTEBOOK in it; each TEXT must be in its outputs
                           (--upload FILE: put FILE beside it first, e.g. a module it imports; --timeout S: per cell)
  denied USER OTHER        (as USER) USER's login gets 403 on OTHER's server; USER's server cannot list OTHER's pods
  wrong-password USER      a wrong password is refused with the hub's message
  pending USER SLUG TEXT   (as USER) start server option SLUG; it stays Pending and the user is told TEXT (the scheduler's
                           or the queue's reason); a server held by its queue cannot be released by its user
  restart-hub              (admin) restart the hub; then `run` again finds the server and its files
  home USER NAME           (as USER) start USER's server if stopped; NAME is still in their home
  stop USER                (as USER) stop USER's server
  tamper USER              (as USER) USER may not change their server's pod: a new image, an ephemeral container, a pod
                           labelled as a server (each refused at admission; a plain pod beside it is allowed)
  ptrace USER              (as USER) USER's own processes in their server (`kubectl exec`, a terminal) cannot read the
                           server's memory or environment (not dumpable); their own process's they can
The hub's address is kept in $E2E_ARTIFACTS/hub-url between steps (and, on its second line, where each
user's server is); passwords come from the user's own Secret user-<name>/notebook-login, which
`appliance users show NAME` prints. Names under .localhost are this host, as browsers resolve them (RFC 6761)."""

from __future__ import annotations

import argparse
import base64
import http.cookiejar
import json
import os
import socket
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import requests
from kubernetes import client, config
from kubernetes.stream import stream

URL_FILE = Path(os.environ.get("E2E_ARTIFACTS", "."), "hub-url")
_getaddrinfo = socket.getaddrinfo


def _loopback(host, *args, **kw):
    """*.localhost is loopback, as in a browser (the C library asks DNS for it without systemd-resolved)."""
    return _getaddrinfo("127.0.0.1" if isinstance(host, str) and host.endswith(".localhost") else host, *args, **kw)


socket.getaddrinfo = _loopback


class _Cookies(http.cookiejar.DefaultCookiePolicy):
    """A cookie set for the domain `localhost` (the hub's session id when users' servers are on *.localhost)
    stays the host's own, as Chromium keeps it: the standard library would send it to every user's server and
    never back to the hub."""

    def set_ok(self, cookie, request):
        if cookie.domain == ".localhost":
            cookie.domain, cookie.domain_specified, cookie.domain_initial_dot = "localhost.local", False, False
        return super().set_ok(cookie, request)


def session() -> requests.Session:
    s = requests.Session()
    s.cookies.set_policy(_Cookies())
    return s


def hub_url() -> str:
    return URL_FILE.read_text().split()[0]


def server_url(user: str) -> str:
    """USER's server: under the hub's address, or on USER's own origin where the hub gives each one."""
    lines = URL_FILE.read_text().split()
    return lines[1].format(user=user) if len(lines) > 1 else hub_url() + f"user/{user}/"


def password(user: str) -> str:
    config.load_kube_config(os.environ.get("KUBECONFIG"))
    s = client.CoreV1Api().read_namespaced_secret("notebook-login", f"user-{user}")
    return base64.b64decode(s.data["password"]).decode()


def xsrf(s: requests.Session, path: str = "/hub/") -> str:
    """The XSRF cookie the hub (path /hub/) or a user's server (/user/NAME/) set: each checks its own."""
    return next((c.value for c in s.cookies if c.name == "_xsrf" and c.path == path), "")


def login(user: str, pw: str) -> requests.Session:
    """The hub's login form, as a browser posts it (with its XSRF token)."""
    s = session()
    page = s.get(hub_url() + "hub/login", timeout=30)
    page.raise_for_status()
    r = s.post(hub_url() + "hub/login", data={"username": user, "password": pw, "_xsrf": xsrf(s)}, timeout=30)
    if "Invalid username or password" in r.text:
        raise SystemExit(f"login as {user} refused: Invalid username or password")
    return s


def api(s: requests.Session, method: str, path: str, **kw) -> requests.Response:
    """The hub's REST API with the login's cookie; a GET is retried when the proxy drops the connection
    (it may, while it changes a route: a server starting or stopping)."""
    for attempt in range(3):
        try:
            return s.request(method, hub_url() + "hub/api/" + path, headers={"X-XSRFToken": xsrf(s)}, timeout=60, **kw)
        except requests.exceptions.ConnectionError:
            if method != "GET" or attempt == 2:
                raise
            time.sleep(1)


def server(s: requests.Session, user: str) -> dict:
    return api(s, "GET", f"users/{user}").json().get("servers", {}).get("", {})


def start(s: requests.Session, user: str, slug: str = "cpu", timeout: float = 300) -> float:
    """Start USER's server with option SLUG unless it runs; wait until it answers. Returns seconds taken."""
    t0 = time.monotonic()
    if not server(s, user).get("ready"):
        r = api(s, "POST", f"users/{user}/server", json={"profile": slug})
        if r.status_code not in (201, 202, 400):  # 400: already starting
            raise SystemExit(f"starting {user}'s server: {r.status_code} {r.text[:300]}")
        while not (state := server(s, user)).get("ready"):
            if not state or time.monotonic() - t0 > timeout:  # gone: the spawn failed
                raise SystemExit(f"{user}'s server did not start in {time.monotonic() - t0:.0f}s: {progress(s, user)}")
            time.sleep(1)
    return time.monotonic() - t0


def progress(s: requests.Session, user: str, wait: float = 5) -> list[str]:
    """The spawn's progress messages, as the hub's spawn page shows them (its event stream)."""
    msgs: list[str] = []
    try:
        with s.get(hub_url() + f"hub/api/users/{user}/server/progress", stream=True, timeout=wait,
                   headers={"X-XSRFToken": xsrf(s)}) as r:
            for line in r.iter_lines(decode_unicode=True):
                if line and line.startswith("data:"):
                    msgs.append(json.loads(line[5:]).get("message", ""))
    except requests.exceptions.RequestException:
        pass  # the stream stays open while the server is pending: what came so far is the answer
    return msgs


def contents(s: requests.Session, user: str, method: str, name: str, **kw) -> requests.Response:
    """The Jupyter server's contents API through the hub's proxy (the hub's OAuth sets the cookie)."""
    if not xsrf(s, f"/user/{user}/"):
        s.get(server_url(user) + "lab", timeout=60)  # the OAuth round trip sets the server's cookies
    return s.request(method, server_url(user) + f"api/contents/{name}", headers={"X-XSRFToken": xsrf(s, f"/user/{user}/")}, timeout=60, **kw)


def in_server(user: str, code: str) -> str:
    """Run Python CODE in the user's server container (as `kubectl exec` with $KUBECONFIG); its output."""
    config.load_kube_config(os.environ.get("KUBECONFIG"))
    return stream(client.CoreV1Api().connect_get_namespaced_pod_exec, f"jupyter-{user}", f"user-{user}", container="notebook",
                  command=["python3", "-c", code], stderr=True, stdout=True, stdin=False, tty=False)


def execute(user: str, name: str, timeout: int = 600) -> None:
    """Run the notebook in the user's server pod (its kernel's environment and service account), in place."""
    config.load_kube_config(os.environ.get("KUBECONFIG"))
    out = stream(client.CoreV1Api().connect_get_namespaced_pod_exec, f"jupyter-{user}", f"user-{user}", container="notebook",
                 command=["python3", "-m", "nbconvert", "--to", "notebook", "--execute", "--inplace",
                          f"--ExecutePreprocessor.timeout={timeout}", f"/home/jovyan/{name}"],
                 stderr=True, stdout=True, stdin=False, tty=False, _preload_content=True)
    print(out[-1500:])


def outputs(nb: dict) -> str:
    text = []
    for cell in nb["cells"]:
        for o in cell.get("outputs", []):
            text.append("".join(o.get("text", "")) or json.dumps(o.get("data", {}).get("text/plain", "")) or o.get("evalue", ""))
            if o.get("output_type") == "error":
                raise SystemExit(f"cell failed: {o['ename']}: {o['evalue']}")
    return "\n".join(text)


def cmd_url(_a) -> None:
    config.load_kube_config(os.environ.get("KUBECONFIG"))
    core = client.CoreV1Api()
    hub = client.AppsV1Api().read_namespaced_deployment("hub", "notebooks")
    cm = next(v.config_map.name for v in hub.spec.template.spec.volumes if v.name == "config")
    settings = json.loads(core.read_namespaced_config_map(cm, "notebooks").data["settings.json"])
    if host := settings.get("subdomain_host"):
        u = urlparse(host)
        urls = f"{host}/ {u.scheme}://{{user}}.{u.netloc}/user/{{user}}/"
    else:
        port = core.read_namespaced_service("proxy-public", "notebooks").spec.ports[0].node_port
        node = core.list_node().items[0]
        ip = next(a.address for a in node.status.addresses if a.type == "InternalIP")
        urls = f"http://{ip}:{port}/ http://{ip}:{port}/user/{{user}}/"
    URL_FILE.parent.mkdir(parents=True, exist_ok=True)
    URL_FILE.write_text(urls.replace(" ", "\n") + "\n")
    print("hub at", hub_url(), "servers at", server_url("USER"))


def cmd_run(a) -> None:
    s = login(a.user, password(a.user))
    took = start(s, a.user)
    print(f"{a.user} logged in; server ready in {took:.1f}s")
    name = Path(a.notebook).name
    if contents(s, a.user, "GET", name).status_code == 200:
        print(f"{name} already in {a.user}'s home")
    for f in map(Path, a.upload):
        r = contents(s, a.user, "PUT", f.name, json={"type": "file", "format": "text", "content": f.read_text()})
        if r.status_code not in (200, 201):
            raise SystemExit(f"upload of {f.name}: {r.status_code} {r.text[:300]}")
    r = contents(s, a.user, "PUT", name, json={"type": "notebook", "format": "json", "content": json.loads(Path(a.notebook).read_text())})
    if r.status_code not in (200, 201):
        raise SystemExit(f"upload of {name}: {r.status_code} {r.text[:300]}")
    execute(a.user, name, a.timeout)
    nb = contents(s, a.user, "GET", name).json()["content"]
    text = outputs(nb)
    print(text[-2000:])
    missing = [t for t in a.expect if t not in text]
    if missing:
        raise SystemExit(f"the notebook's outputs lack {missing}")
    print(f"notebook {name} ran in {a.user}'s server; outputs checked")


def cmd_denied(a) -> None:
    s = login(a.user, password(a.user))
    r = s.get(server_url(a.other) + "api/contents/", timeout=60)
    if r.status_code != 403:
        raise SystemExit(f"{a.user} on {a.other}'s server: expected 403, got {r.status_code}")
    print(f"{a.user} on {a.other}'s server: 403")
    start(s, a.user)
    config.load_kube_config(os.environ.get("KUBECONFIG"))
    probe = ("from kubernetes import client, config\nconfig.load_incluster_config()\n"
             f"try:\n    client.CoreV1Api().list_namespaced_pod('user-{a.other}')\n    print('LISTED')\n"
             "except client.ApiException as e:\n    print('STATUS', e.status)\n")
    out = stream(client.CoreV1Api().connect_get_namespaced_pod_exec, f"jupyter-{a.user}", f"user-{a.user}", container="notebook",
                 command=["python3", "-c", probe], stderr=True, stdout=True, stdin=False, tty=False)
    if "STATUS 403" not in out:
        raise SystemExit(f"{a.user}'s server listing user-{a.other}: {out[-300:]}")
    print(f"{a.user}'s server cannot list user-{a.other}: 403")


def cmd_wrong_password(a) -> None:
    s = session()
    s.get(hub_url() + "hub/login", timeout=30)
    r = s.post(hub_url() + "hub/login", data={"username": a.user, "password": "not-" + "the-password", "_xsrf": xsrf(s)}, timeout=30)
    if "Invalid username or password" not in r.text or api(s, "GET", f"users/{a.user}").status_code != 403:
        raise SystemExit(f"a wrong password for {a.user} was not refused clearly ({r.status_code})")
    print(f"wrong password for {a.user}: 'Invalid username or password'")


def stop(s: requests.Session, user: str) -> None:
    api(s, "DELETE", f"users/{user}/server")
    deadline = time.monotonic() + 120
    while server(s, user) and time.monotonic() < deadline:
        time.sleep(1)


def cmd_pending(a) -> None:
    s = login(a.user, password(a.user))
    stop(s, a.user)
    r = api(s, "POST", f"users/{a.user}/server", json={"profile": a.slug})
    if r.status_code not in (201, 202):
        raise SystemExit(f"starting option {a.slug}: {r.status_code} {r.text[:300]}")
    deadline, msgs = time.monotonic() + 90, []
    while time.monotonic() < deadline and not any(a.text in m for m in msgs):
        msgs = progress(s, a.user)
    try:
        lift_gates(a.user)
    finally:
        stop(s, a.user)
    if not any(a.text in m for m in msgs):
        raise SystemExit(f"the user was not told why: {msgs[-5:]}")
    print(f"{a.user} told: {next(m for m in msgs if a.text in m)}")


def lift_gates(user: str) -> None:
    """A server held by its queue (a scheduling gate) stays held: its user cannot lift the gate (refused)."""
    config.load_kube_config(os.environ.get("KUBECONFIG"))
    core, ns, name = client.CoreV1Api(), f"user-{user}", f"jupyter-{user}"
    if not core.read_namespaced_pod(name, ns).spec.scheduling_gates:
        return
    refused(f"{user}'s waiting server, its queue's gate lifted",
            lambda: core.patch_namespaced_pod(name, ns, [{"op": "replace", "path": "/spec/schedulingGates", "value": []}], dry_run="All"))


#: what the refusals of a server's change say: the servers' policy (notebooks), the queues' (only Kueue lifts
#: its gate: both policies refuse that one, either may answer first), RBAC
REFUSED_BY = {"only the hub may": "by the admission policy", "only Kueue lifts": "by the admission policy",
              "cannot patch resource": "by RBAC"}


def refused(what: str, attempt) -> None:
    """`attempt` must be refused (403) by a policy or RBAC; say which, or stop the step."""
    try:
        attempt()
    except client.ApiException as e:
        body = e.body or ""
        by = next((why for text, why in REFUSED_BY.items() if text in body), "")
        if e.status != 403 or not by:
            raise SystemExit(f"{what}: {e.status} {body[:300]}") from None
        print(f"{what}: refused ({e.status}, {by})")
    else:
        raise SystemExit(f"{what}: accepted")


def cmd_home(a) -> None:
    s = login(a.user, password(a.user))
    took = start(s, a.user)
    r = contents(s, a.user, "GET", a.name)
    if r.status_code != 200:
        raise SystemExit(f"{a.name} is not in {a.user}'s home after the restart ({r.status_code})")
    print(f"{a.user}'s server started in {took:.1f}s; {a.name} kept in their home")


def cmd_stop(a) -> None:
    stop(login(a.user, password(a.user)), a.user)
    print(f"{a.user}'s server stopped")


def cmd_restart_hub(_a) -> None:
    config.load_kube_config(os.environ.get("KUBECONFIG"))
    apps, core = client.AppsV1Api(), client.CoreV1Api()
    old = {p.metadata.name for p in core.list_namespaced_pod("notebooks", label_selector="app=hub").items}
    for name in old:
        core.delete_namespaced_pod(name, "notebooks")
    for _ in range(180):
        pods = core.list_namespaced_pod("notebooks", label_selector="app=hub").items
        if any(p.metadata.name not in old and all(c.ready for c in (p.status.container_statuses or [])) and p.status.container_statuses for p in pods):
            print("hub restarted:", apps.read_namespaced_deployment("hub", "notebooks").status.ready_replicas, "ready")
            return
        time.sleep(1)
    raise SystemExit("the hub did not come back in 180s")


def cmd_tamper(a) -> None:
    s = login(a.user, password(a.user))
    start(s, a.user)
    config.load_kube_config(os.environ.get("KUBECONFIG"))
    core, ns, name = client.CoreV1Api(), f"user-{a.user}", f"jupyter-{a.user}"
    pod = core.read_namespaced_pod(name, ns)
    image = pod.spec.containers[0].image
    attempts = {
        "a new image": lambda: core.patch_namespaced_pod(name, ns, {"spec": {"containers": [{"name": "notebook", "image": image + "-other"}]}}, dry_run="All"),
        "an ephemeral container": lambda: core.patch_namespaced_pod_ephemeralcontainers(
            name, ns, {"spec": {"ephemeralContainers": [{"name": "debug", "image": image, "command": ["sleep", "60"]}]}}, dry_run="All"),
        "a pod labelled as a server": lambda: core.create_namespaced_pod(ns, {
            "metadata": {"name": "fake-server", "labels": {"component": "singleuser-server"}},
            "spec": {"containers": [{"name": "c", "image": image}]}}, dry_run="All"),
    }
    for what, attempt in attempts.items():
        refused(f"{a.user}'s server, {what}", attempt)
    core.create_namespaced_pod(ns, {"metadata": {"name": "plain"}, "spec": {"containers": [{"name": "c", "image": image}]}}, dry_run="All")
    print(f"{a.user} may still create a plain pod in {ns}; only the hub changes servers")


def cmd_ptrace(a) -> None:
    start(login(a.user, password(a.user)), a.user)
    probe = ("import subprocess\nchild = subprocess.Popen(['sleep', '30'])\n"
             "for who, pid in (('server', 1), ('own', child.pid)):\n    for f in ('environ', 'mem'):\n"
             "        try:\n            with open(f'/proc/{pid}/{f}', 'rb') as h:\n"
             "                h.seek(int(open(f'/proc/{pid}/maps').readline().split('-')[0], 16) if f == 'mem' else 0)\n"
             "                h.read(1)\n            print(who, f, 'READ')\n"
             "        except OSError as e:\n            print(who, f, type(e).__name__)\nchild.kill()\n")
    out = in_server(a.user, probe)
    got = {tuple(line.split()[:2]): line.split()[2] for line in out.splitlines() if line.startswith(("server ", "own "))}
    want = {("server", "environ"): "PermissionError", ("server", "mem"): "PermissionError", ("own", "environ"): "READ", ("own", "mem"): "READ"}
    if got != want:
        raise SystemExit(f"{a.user}'s processes beside their server: {out[-400:]}")
    print(f"{a.user} cannot read their server's memory or environment (PermissionError); a process of their own they can")


#: subcommand → (function, its arguments; `*` takes the rest)
COMMANDS = {"url": (cmd_url, []), "run": (cmd_run, ["user", "notebook", "expect*"]), "denied": (cmd_denied, ["user", "other"]),
            "wrong-password": (cmd_wrong_password, ["user"]), "pending": (cmd_pending, ["user", "slug", "text"]),
            "restart-hub": (cmd_restart_hub, []), "home": (cmd_home, ["user", "name"]), "stop": (cmd_stop, ["user"]),
            "tamper": (cmd_tamper, ["user"]), "ptrace": (cmd_ptrace, ["user"])}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name, (fn, args) in COMMANDS.items():
        sp = sub.add_parser(name)
        for arg in args:
            sp.add_argument(arg.rstrip("*"), nargs="*" if arg.endswith("*") else None)
        sp.set_defaults(fn=fn)
    sub.choices["run"].add_argument("--upload", action="append", default=[], metavar="FILE", help="a file to put beside the notebook")
    sub.choices["run"].add_argument("--timeout", type=int, default=600, help="seconds a cell may run")
    a = p.parse_args(argv)
    a.fn(a)


if __name__ == "__main__":
    sys.exit(main())
