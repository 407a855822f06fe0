"""Backup and restore on the stack cluster, after the journey and the notebooks modules (the last of its group:
it changes credentials). alice's data — a file in her home, an object in her bucket, a finished workflow, a
row in Katib's database — and her login are backed up; then lost: her home's claim, the object, the
workflow and the row deleted, her login made anew by `up`; `restore` brings each back (the workflow as
finished, not run again), and she logs in with her old password. One user's backup, as one file, restores hers only; a
corrupted backup is refused naming the file. (In place of `down` and a fresh `up`, which would double the
group's time, the loss is made by hand; the restore's path is the same: missing claims, Secrets and objects.)"""

from __future__ import annotations

import http.cookiejar
import importlib.util
import json
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from kubernetes import client

from appliance import backup as backups
from appliance import orchestrator, report, users
from appliance.backup import volumes
from appliance.errors import UserError

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.docker]
NS = "user-alice"
MARK = "the notebook alice saved before the backup\n"
ROW = "backup-marker"


@pytest.fixture(scope="module")
def kind(stack):
    return stack


def _store():
    spec = importlib.util.spec_from_file_location("store", Path(__file__).resolve().parents[2] / "e2e" / "pipelines" / "store.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _home(target: backups.Target, script: str) -> str:
    """Run `script` (sh) with alice's home claim at /data; its output."""
    with volumes.helper(target, NS, "home-alice", writable=True) as pod:
        return target.run(["exec", "-n", NS, pod, "--", "sh", "-c", script], what="home").decode()


def _sql(target: backups.Target, sql: str) -> str:
    """`sql` in Katib's database, as the superuser in the server's pod."""
    cmd = 'PGPASSWORD=$(cat "$CREDENTIALS/postgres") /usr/lib/postgresql/15/bin/psql -h /tmp -U postgres -d katib -tAc "$0"'
    return target.run(["exec", "-n", "database", "postgres-0", "--", "sh", "-c", cmd, sql], what="psql").decode().strip()


def _logs_in(url: str, user: str, password: str) -> bool:
    """Whether the hub's login form takes these credentials (its XSRF token sent back)."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.open(f"{url}/hub/login", timeout=30).read()
    xsrf = next(c.value for c in jar if c.name == "_xsrf")
    body = urllib.parse.urlencode({"username": user, "password": password, "_xsrf": xsrf}).encode()
    try:
        resp = opener.open(urllib.request.Request(f"{url}/hub/login?next=/hub/home", data=body), timeout=30)
    except urllib.error.HTTPError:
        return False
    return "/hub/login" not in resp.geturl()


def _workflow(kube) -> dict:
    """alice's one-step workflow (submitted as her), run to its end."""
    body = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"name": "kept-run", "namespace": NS},
            "spec": {"entrypoint": "main", "templates": [{"name": "main", "container": {"image": "appliance.local/trainer:stub", "command": ["true"]}}]}}
    kube.impersonating("alice").dynamic.resources.get(api_version="argoproj.io/v1alpha1", kind="Workflow").create(namespace=NS, body=body)
    res = kube.dynamic.resources.get(api_version="argoproj.io/v1alpha1", kind="Workflow")
    deadline = time.monotonic() + 180
    while (wf := res.get(name="kept-run", namespace=NS).to_dict()).get("status", {}).get("phase") not in ("Succeeded", "Failed", "Error"):
        assert time.monotonic() < deadline, wf.get("status")
        time.sleep(2)
    return wf


def test_backup_then_restore_brings_alices_data_and_login_back(kind, tmp_path, monkeypatch):
    profile, result = kind
    name = profile.cluster.name
    from kubernetes.config import kube_config

    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", result["kubeconfig"])  # store.py loads the default one
    target = backups.Target(name)
    kube = target.kube
    store = _store()
    keys = store.keys(NS)
    login = users.notebook_login(name, "alice", kube)
    core = client.CoreV1Api(kube.api)
    if kube.get("v1", "PersistentVolumeClaim", "home-alice", NS) is None:  # as the hub makes it when she first starts a server
        kube.apply([{"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "home-alice", "namespace": NS},
                     "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "appliance-homes", "resources": {"requests": {"storage": "1Gi"}}}}])
    _home(target, f"printf '{MARK}' > /data/kept.ipynb")
    home = core.read_namespaced_persistent_volume_claim("home-alice", NS).spec
    assert home.storage_class_name == "appliance-homes"  # her home's volume outlives its claim
    assert core.read_persistent_volume(home.volume_name).spec.persistent_volume_reclaim_policy == "Retain"
    assert store.request(keys, "PUT", keys["bucket"], "kept/model.txt", body=b"weights")[0] == 200
    run = _workflow(kube)["status"]
    assert run["phase"] == "Succeeded", run
    _sql(target, f"CREATE TABLE IF NOT EXISTS appliance_marker (v text); INSERT INTO appliance_marker VALUES ('{ROW}')")
    key = tmp_path / "key"
    key.write_text("a passphrase only the operator keeps, 48 characters\n")

    m = backups.backup(name, tmp_path / "b", key, print)
    kinds = {f["kind"] for f in m["files"]}
    assert kinds == {"credentials", "resources", "volume", "dump"} and m["credentials"], kinds
    assert {f"volumes/{NS}/home-alice.tar", "volumes/argo/artifact-store.tar", "dumps/database/katib.pgdump"} <= {f["name"] for f in m["files"]}
    assert orchestrator.last_backup(name)["path"] == str((tmp_path / "b").resolve())

    # the loss: her home's claim, the object, the finished run, the row; her login made anew
    wf = kube.dynamic.resources.get(api_version="argoproj.io/v1alpha1", kind="Workflow")
    wf.delete(name="kept-run", namespace=NS)
    kube.delete([{"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "home-alice", "namespace": NS}}])
    assert store.request(keys, "DELETE", keys["bucket"], "kept/model.txt")[0] == 204
    _sql(target, "DELETE FROM appliance_marker")
    kube.delete([{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "notebook-login", "namespace": NS}},
                 {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "logins", "namespace": "notebooks"}}])
    again = orchestrator.up(profile, "kind", report.make())
    assert "notebooks" in again["ran"] and not again["failed"]
    assert users.notebook_login(name, "alice", kube)["password"] != login["password"]

    bad = tmp_path / "bad"
    subprocess.run(["cp", "-r", str(tmp_path / "b"), str(bad)], check=True)
    tar = bad / "volumes" / NS / "home-alice.tar"
    tar.write_bytes(tar.read_bytes()[:-1] + b"\x01")
    with pytest.raises(UserError) as e:
        backups.restore(name, bad, key, print, report.make())
    assert "does not match its size and sha256" in e.value.line() and str(tar) == e.value.where

    out = backups.restore(name, tmp_path / "b", key, print, report.make())
    assert out["volumes"] >= 2 and out["dumps"] >= 1 and out["objects"] >= 1 and not out["up"]["failed"], out
    assert _home(target, "cat /data/kept.ipynb") == MARK
    assert store.request(keys, "GET", keys["bucket"], "kept/model.txt") == (200, b"weights")
    assert _sql(target, "SELECT v FROM appliance_marker") == ROW
    back = wf.get(name="kept-run", namespace=NS).to_dict()["status"]
    assert (back["phase"], back["startedAt"], back["finishedAt"]) == ("Succeeded", run["startedAt"], run["finishedAt"])  # a record: not run again
    assert users.notebook_login(name, "alice", kube)["password"] == login["password"]
    deadline = time.monotonic() + 120
    while not _logs_in(login["url"], "alice", login["password"]):
        assert time.monotonic() < deadline, "alice's old password is refused by the hub"
        time.sleep(3)

    # one user's part, as one file: her run again, nobody else's data touched; no key needed (credentials stay)
    mine = backups.backup(name, tmp_path / "alice.tar.zst", None, print, user="alice")
    assert {f["user"] for f in mine["files"] if f["kind"] == "resources"} == {"alice"} and not (tmp_path / ".alice.tar.zst.partial").exists()
    wf.delete(name="kept-run", namespace=NS)
    one = backups.restore(name, tmp_path / "alice.tar.zst", None, print, report.make(), user="alice")
    assert one["objects"] == 1 and one["secrets"] == 0 and one["dumps"] == 0 and one["volumes"] >= 1, one
    assert wf.get(name="kept-run", namespace=NS).to_dict()["status"]["phase"] == "Succeeded"
    assert _home(target, "cat /data/kept.ipynb") == MARK
    assert json.loads((tmp_path / "b" / backups.MANIFEST).read_text())["users"] == target.users
