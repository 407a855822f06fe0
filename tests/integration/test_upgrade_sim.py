"""An in-place upgrade from the last release on the simulator: the release named in CHANGELOG.md (its commit,
checked out as a git worktree with a virtualenv of its own; the build caches are shared) brings a cluster up
and alice's data is made — an object in her namespace, a row in Katib's database; then this tree's
`upgrade --plan` tells what will change and `up` upgrades it in place: the components whose version changed
applied again, the others left, her data still there, and a second `up` a no-op. (A served model answering
through an upgrade needs pods: the simulator runs none.)"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from appliance import orchestrator, report
from appliance.kube import Kube, secret_data
from tests.integration.clusters import load
from tools import release

pytestmark = [pytest.mark.integration, pytest.mark.slow]
NAME = "it-upgrade-sim"
COMPONENTS = ("platform-base", "user-profiles", "database")
SETS = [f"cluster.name={NAME}", "components.tuning.enabled=false", "components.pipelines.enabled=false", "components.notebooks.enabled=false",
        "components.kserve.enabled=false", "components.training-operator.enabled=false", "components.monitoring.enabled=false",
        "components.network-policy.enabled=false", "components.nvidia-device-plugin.enabled=false", "components.queues.enabled=false"]


def _run(argv: list[str], **kw) -> str:
    p = subprocess.run(argv, capture_output=True, text=True, timeout=900, **kw)
    assert p.returncode == 0, (argv, p.stdout[-2000:], p.stderr[-3000:])
    return p.stdout


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """The last release's version and its `appliance` program."""
    with release.released(tmp_path_factory.mktemp("release")) as made:
        yield made


def _psql(kube: Kube, sql: str, starting: bool = False) -> str:
    """`sql` in Katib's database as its client, over the server's loopback port (the pgserver wheel's psql);
    `starting`: after the last release's `up`, which took the listening server for a ready one (the server
    refuses logins a second or two while it starts up): try again until it takes them."""
    from appliance.components import CATALOG, database

    where = kube.get("v1", "ConfigMap", database.ADDRESS, "database").data
    psql = Path(CATALOG["database"].hooks.host_env(None)["PGBIN"]) / "psql"
    env = {**os.environ, "PGPASSWORD": secret_data(kube, database.SECRET, "database")["katib"]}
    argv = [str(psql), f"host={where['host']} port={where['port']} user=katib dbname=katib", "-tAc", sql]
    deadline = time.monotonic() + 60
    while (p := subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)).returncode and starting and any(
            why in p.stderr for why in ("Connection refused", "the database system is starting up")):
        assert time.monotonic() < deadline, p.stderr
        time.sleep(1)
    if p.returncode:
        from appliance.runtime import process

        log = process.HostProcess(process.controllers_dir(kube.kubeconfig), "postgres").log
        pytest.fail(f"{p.stderr}\nPostgreSQL's host log:\n{log.read_text()[-4000:] if log.exists() else '(none)'}")
    return p.stdout.strip()


def test_a_cluster_of_the_last_release_is_upgraded_in_place_keeping_alices_data(released):
    version, old = released
    profile = load("laptop", "sim", SETS, COMPONENTS)
    try:
        _run([str(old), "up", "--profile", "laptop", "--provider", "sim", *(a for s in SETS for a in ("--set", s))])
        kube = Kube(orchestrator.State(orchestrator.paths.state_dir(NAME)).kubeconfig)
        kube.apply([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "alices-notes", "namespace": "user-alice"},
                     "data": {"made-by": version}}])
        _psql(kube, "CREATE TABLE notes (v text); INSERT INTO notes VALUES ('kept across the upgrade')", starting=True)

        plan = orchestrator.changes(profile, "sim")
        assert plan["from"] is None and plan["to"] == orchestrator.version("appliance")  # the release recorded no version
        assert set(plan["steps"]) == {"cluster", *COMPONENTS} and not plan["removed"]
        changed = sorted(s for s, what in plan["steps"].items() if what != "unchanged")
        print(f"upgrade from {version}: applied again {changed}, unchanged {sorted(set(plan['steps']) - set(changed))}")
        assert "database" in changed  # its declaration and PostgreSQL's setup changed since

        up = orchestrator.up(profile, "sim", report.make())
        assert not up["failed"] and set(changed) - {"cluster"} <= set(up["ran"]), up
        assert kube.get("v1", "ConfigMap", "alices-notes", "user-alice").to_dict()["data"] == {"made-by": version}
        assert _psql(kube, "SELECT v FROM notes") == "kept across the upgrade"
        assert set(orchestrator.changes(profile, "sim")["steps"].values()) == {"unchanged"}
        assert orchestrator.up(profile, "sim", report.make())["noop"]
    finally:
        if orchestrator.paths.state_dir(NAME).exists():
            orchestrator.down(NAME, report.make())
