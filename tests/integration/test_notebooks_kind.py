"""Notebooks on a real kind cluster: the hub (JupyterHub + KubeSpawner + configurable-http-proxy, images
built here) logs users in with their generated passwords, starts each server in the user's namespace under
the user's service account, runs a notebook there that trains the stub model through the training SDK, and
a headless Chromium sees JupyterLab (screenshot in the report); isolation, the GPU option's pending reason,
a hub restart and the home volume are checked by the `notebooks` scenario."""

import subprocess
from pathlib import Path

import pytest

from appliance.components import CATALOG
from tests.integration.clusters import STACK_COMPONENTS, scenario_passes, with_options

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.docker]


@pytest.fixture(scope="module")
def kind(stack):
    """The stack cluster (conftest.py): (profile, result of its `up`)."""
    return stack


def test_the_notebook_image_holds_sdks_that_talk_to_the_api_server():
    """Each client in the image serializes camelCase without nulls and reads objects back (kubernetes 36
    breaks the training SDK's reader, 37 its writer)."""
    image = next(i for i in CATALOG["notebooks"]().images() if i.name == "notebook")
    ref, archive = image.build()
    subprocess.run(["docker", "load", "-i", str(archive)], check=True, capture_output=True)
    probe = Path(__file__).resolve().parents[2] / "e2e" / "notebooks" / "sdk_probe.py"
    out = subprocess.run(["docker", "run", "--rm", "-v", f"{probe}:/tmp/sdk_probe.py:ro", "--entrypoint", "python3", ref, "/tmp/sdk_probe.py"],
                         text=True, capture_output=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.split() == ["kubeflow-training:", "ok", "kserve:", "ok", "kubeflow-katib:", "ok", "hera:", "ok"]


def test_notebooks_scenario_with_a_browser_screenshot_in_the_report(kind, tmp_path):
    _, result = kind
    assert not result["failed"]
    r = scenario_passes(result, "kind", STACK_COMPONENTS, "notebooks", tmp_path)  # the stack's: the GPU step needs queues
    assert [p.name for p in r.artifacts] == ["jupyterlab-alice.png"]
    assert "data:image/png;base64," in (tmp_path / "report.html").read_text()


def test_logins_are_generated_kept_and_printed(kind):
    """`appliance users show` prints the hub's address and the user's password; a second `up` keeps it."""
    from appliance import orchestrator, report, users

    profile, result = kind
    kube = orchestrator.cluster_kube(profile.cluster.name)
    first = users.notebook_login(profile.cluster.name, "alice", kube)
    assert first["url"].startswith("http://") and len(first["password"]) >= 20
    assert first["password"] != users.notebook_login(profile.cluster.name, "bob", kube)["password"]
    again = orchestrator.up(profile, "kind", report.make())
    assert not again["failed"]
    assert users.notebook_login(profile.cluster.name, "alice", kube) == first


E2E = Path(__file__).resolve().parents[2] / "e2e" / "notebooks"


def _script(name: str, *args: str, kubeconfig: str, artifacts: Path, timeout: int = 600) -> str:
    """Run e2e/notebooks/NAME with ARGS as the identity of KUBECONFIG; its output (it must succeed)."""
    import os
    import sys

    env = dict(os.environ, KUBECONFIG=kubeconfig, E2E_ARTIFACTS=str(artifacts))
    out = subprocess.run([sys.executable, str(E2E / name), *args], cwd=E2E, env=env, text=True, capture_output=True, timeout=timeout)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


def _forward(target: tuple[str, int], port: int = 0):
    """127.0.0.1:<a free port> → TARGET, as kind's port mapping puts the hub on loopback for the laptop profile
    (the stack cluster, of the ci profile, has none); PORT, or a free one. Returns (port, a function that stops it)."""
    import socket
    import threading

    srv = socket.create_server(("127.0.0.1", port))

    def pipe(a, b):
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def serve():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            u = socket.create_connection(target)
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=pipe, args=(a, b), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return srv.getsockname()[1], srv.close


def test_the_hub_checks_xsrf_and_hardens_its_cookies(kind, tmp_path):
    """The hub's login cookie is HttpOnly and SameSite=Lax, its pages may not be framed, a call with her cookie
    but no XSRF token is refused; its cookie secret was generated on its volume, readable by the hub only.
    (What bob can do to his server and to alice's browser is the `notebooks` scenario's.)"""
    import requests

    from appliance import orchestrator

    profile, _ = kind
    kube = orchestrator.cluster_kube(profile.cluster.name)
    _script("hub.py", "url", kubeconfig=kube.kubeconfig, artifacts=tmp_path)
    url = (tmp_path / "hub-url").read_text().split()[0]
    s = requests.Session()
    s.get(url + "hub/login", timeout=30)
    login = s.post(url + "hub/login", allow_redirects=False, timeout=30, data={
        "username": "alice", "password": users_password(profile, "alice"), "_xsrf": s.cookies.get("_xsrf", path="/hub/")})
    cookies = login.headers.get("Set-Cookie", "")
    assert login.status_code == 302 and "jupyterhub-hub-login=" in cookies and "HttpOnly" in cookies and "SameSite=Lax" in cookies, cookies
    assert "frame-ancestors 'none'" in s.get(url + "hub/home", timeout=30).headers["Content-Security-Policy"]
    assert s.post(url + "hub/api/users/alice/tokens", json={}, timeout=30).status_code == 403  # her cookie, no XSRF token
    made = s.post(url + "hub/api/users/alice/tokens", json={"expires_in": 60}, timeout=30, headers={"X-XSRFToken": s.cookies.get("_xsrf", path="/hub/")})
    assert made.status_code == 201  # control
    from kubernetes import client
    from kubernetes.stream import stream

    core = client.CoreV1Api(kube.api)
    pod = core.list_namespaced_pod("notebooks", label_selector="app=hub").items[0].metadata.name
    out = stream(core.connect_get_namespaced_pod_exec, pod, "notebooks", command=["python3", "-c", "import os; s = os.stat('/srv/jupyterhub/cookie_secret'); print(oct(s.st_mode & 0o777), s.st_size)"],
                 stderr=True, stdout=True, stdin=False, tty=False)
    assert out.split() == ["0o600", "65"], out  # 32 random bytes, hex, and a newline


def users_password(profile, user: str) -> str:
    from appliance import orchestrator, users

    return users.notebook_login(profile.cluster.name, user, orchestrator.cluster_kube(profile.cluster.name))["password"]


def test_per_user_origins_keep_bobs_page_from_acting_as_alice(kind, tmp_path):
    """With a subdomain host (what `auto` picks on the laptop profile: http://localhost:8000, here a loopback
    port forwarded to the NodePort) each server has its own origin, NAME.localhost: bob's config loads and
    serves his page there, and in alice's browser it reads none of her cookies and calls neither the hub nor
    her server as her; JupyterLab and the notebook still run. The profile's configuration is back after."""
    from appliance import orchestrator, report

    profile, _ = kind
    kube = orchestrator.cluster_kube(profile.cluster.name)
    admin = kube.kubeconfig
    for user in ("alice", "bob"):
        _script("hub.py", "url", kubeconfig=admin, artifacts=tmp_path)
        _script("hub.py", "stop", user, kubeconfig=admin, artifacts=tmp_path)  # their servers' settings name the old origin
    port, stop = _forward((kube.internal_ips()[0], 30080))
    try:
        assert not orchestrator.up(with_options(profile, "notebooks", subdomain_host=f"http://localhost:{port}"), "kind", report.make())["failed"]
        assert f"servers at http://USER.localhost:{port}/user/USER/" in _script("hub.py", "url", kubeconfig=admin, artifacts=tmp_path)
        out = _script("origins.py", "alice", "bob", kubeconfig=admin, artifacts=tmp_path)
        for line in ("bob's server config loaded: his page is served on his own origin", f"bob's page runs in alice's browser on http://bob.localhost:{port}",
                     "it reads none of her hub's cookies", "its call to the hub is not hers", "its call to her server is not hers",
                     "did not reach the hub", "alice's browser gets 403 on bob's server", f"alice's JupyterLab is served on alice.localhost:{port}"):
            assert line in out, out
        out = _script("hub.py", "run", "alice", "train-stub.ipynb", "Succeeded", kubeconfig=admin, artifacts=tmp_path)
        assert "outputs checked" in out, out
        _script("hub.py", "stop", "alice", kubeconfig=admin, artifacts=tmp_path)
    finally:
        assert not orchestrator.up(profile, "kind", report.make())["failed"]
        stop()


def test_a_removed_user_loses_the_hub_and_an_idle_server_is_stopped(kind, tmp_path, monkeypatch):
    """One `up` with other options (each re-`up` restarts the hub, so the two checks share it):
    - bob, logged in with a server and an API token, is removed from user-profiles' users: `up` stops his
      server, the hub forgets him (his session and token get 403) and his password no longer logs in; put
      back, he gets a new password and logs in again;
    - `cull_idle` from the profile reaches the hub and its culler stops alice's server, which nobody uses.
    The profile's own configuration is back after (the stack cluster is shared)."""
    import sys
    import time

    import requests

    from appliance import orchestrator, report
    from appliance.users import kubeconfig

    profile, _ = kind
    kube = orchestrator.cluster_kube(profile.cluster.name)
    monkeypatch.syspath_prepend(str(E2E))
    sys.modules.pop("hub", None)
    import hub

    monkeypatch.setattr(hub, "URL_FILE", tmp_path / "hub-url")
    monkeypatch.setenv("KUBECONFIG", kube.kubeconfig)
    hub.cmd_url(None)
    old = hub.password("bob")
    s = hub.login("bob", old)
    hub.start(s, "bob")
    token = hub.api(s, "POST", "users/bob/tokens", json={"note": "offboarding test"}).json()["token"]
    as_token = lambda: requests.get(hub.hub_url() + "hub/api/user", headers={"Authorization": f"token {token}"}, timeout=30)  # noqa: E731
    assert as_token().status_code == 200  # control
    try:
        changed = with_options(with_options(profile, "user-profiles", users=["alice"]), "notebooks", cull_idle=20)
        assert not orchestrator.up(changed, "kind", report.make())["failed"]
        assert kube.get("v1", "Namespace", "user-bob") is not None  # his data stays
        assert kube.get("v1", "Pod", "jupyter-bob", "user-bob") is None or kube.get("v1", "Pod", "jupyter-bob", "user-bob").metadata.deletionTimestamp
        assert hub.api(s, "GET", "user").status_code == 403
        assert as_token().status_code == 403
        with pytest.raises(SystemExit, match="Invalid username or password"):
            hub.login("bob", old)
        alice = hub.login("alice", hub.password("alice"))
        hub.start(alice, "alice")
        t0 = time.monotonic()
        while hub.server(alice, "alice") and time.monotonic() - t0 < 180:
            time.sleep(5)
        assert not hub.server(alice, "alice"), "alice's idle server still runs 180 s after it started (cull_idle 20 s)"
    finally:
        assert not orchestrator.up(profile, "kind", report.make())["failed"]
    monkeypatch.setenv("KUBECONFIG", kubeconfig(profile.cluster.name, "bob")["kubeconfig"])
    new = hub.password("bob")
    assert new != old and hub.api(hub.login("bob", new), "GET", "user").json()["name"] == "bob"
