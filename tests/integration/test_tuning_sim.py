"""The database and Katib on the simulator (their host runtime): PostgreSQL (the pgserver wheel's programs,
as nobody when we are root) on loopback with its data under the cluster's state folder; Katib's controller,
db-manager and one goptuna service as supervised host processes, the controller reaching db-manager and the
experiments' suggestion Services by name through its supervisor. alice's 8-GPU trials are placed on DGX
nodes; their metrics are the experiment's declared function (the simulator's stand-in for a collector).
PostgreSQL killed mid-way comes back with its data. The last module on the simulator's shared cluster
(conftest.py): its last test takes it down, every host process of every component stopped."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import grpc
import psutil
import pytest
from kubeflow.katib import katib_api_pb2 as katib
from kubeflow.katib import katib_api_pb2_grpc as katib_grpc

from appliance import orchestrator, procs, report
from appliance.components import CATALOG, database, kit
from appliance.kube import Kube, secret_data
from appliance.runtime import Runtime, process
from tests.integration.clusters import SIM_STACK as NAME
from tests.integration.clusters import SIM_STACK_COMPONENTS as COMPONENTS
from tests.integration.clusters import scenario_passes

pytestmark = [pytest.mark.integration, pytest.mark.slow]
HOSTED = ("postgres", "katib-db-manager", "katib-suggestion", "katib-controller", "katib-sim-results")


def _host(result, name: str) -> process.HostProcess:
    return process.HostProcess(process.controllers_dir(result["kubeconfig"]), name)


def _postmaster(result) -> psutil.Process:
    """PostgreSQL's server process under the supervisor (its entrypoint script's child)."""
    (server,) = [p for p in psutil.Process(_host(result, "postgres").load().pid).children(recursive=True)
                 if p.name() == "postgres" and p.parent().name() != "postgres"]
    return server


def _listening(server: psutil.Process) -> set[tuple[str, int]]:
    return {(c.laddr.ip, c.laddr.port) for c in server.net_connections("tcp") if c.status == "LISTEN"}


def _suggest(port: int, address: str, param: katib.ParameterSpec, first: bool) -> list[float]:
    """Two suggestions of a seeded random search over `param` from the goptuna service on `port`, dialled as
    `address` (the experiment's Service, as Katib's controller dials it); `first`: the experiment's first request."""
    spec = katib.ExperimentSpec(
        algorithm=katib.AlgorithmSpec(algorithm_name="random", algorithm_settings=[katib.AlgorithmSetting(name="random_state", value="7")]),
        objective=katib.ObjectiveSpec(type=katib.MINIMIZE, objective_metric_name="loss"),
        parameter_specs=katib.ExperimentSpec.ParameterSpecs(parameters=[param]))
    req = katib.GetSuggestionsRequest(experiment=katib.Experiment(name="tune", spec=spec), current_request_number=2,
                                      total_request_number=2 if first else 4)
    with grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.default_authority", address)]) as ch:
        reply = katib_grpc.SuggestionStub(ch).GetSuggestions(req, timeout=30)
    assert all(a.name == param.name for s in reply.parameter_assignments for a in s.assignments), reply
    return [float(s.assignments[0].value) for s in reply.parameter_assignments]


def test_the_suggestion_service_keeps_a_study_per_experiment(tmp_path):
    """One goptuna process serves every experiment on the simulator: each (told apart by the address dialled,
    namespaces included) gets its own study and search space, and an experiment made again starts afresh."""
    (port,) = procs.free_ports(1)
    program = kit._host_program("suggestion-host", CATALOG["tuning"].decl.images["suggestion-host"])
    with open(tmp_path / "log", "w") as log, subprocess.Popen([*program, f"--listen-address=127.0.0.1:{port}"], stderr=log) as proc:
        try:
            grpc.channel_ready_future(grpc.insecure_channel(f"127.0.0.1:{port}")).result(timeout=30)
            lr = katib.ParameterSpec(name="lr", parameter_type=katib.DOUBLE, feasible_space=katib.FeasibleSpace(min="0.001", max="0.3"))
            epochs = katib.ParameterSpec(name="epochs", parameter_type=katib.INT, feasible_space=katib.FeasibleSpace(min="100", max="200"))
            alice, bob = "tune-random.user-alice:6789", "tune-random.user-bob:6789"
            first = _suggest(port, alice, lr, first=True)
            assert all(0.001 <= v <= 0.3 for v in first)
            assert all(100 <= v <= 200 for v in _suggest(port, bob, epochs, first=True))  # bob's space, not alice's
            more = _suggest(port, alice, lr, first=False)  # her study goes on: the seeded sampler's next draws
            assert all(0.001 <= v <= 0.3 for v in more) and set(more).isdisjoint(first), (first, more)
            assert _suggest(port, alice, lr, first=True) == first  # made again: a new study, its seed's first draws
        finally:
            proc.terminate()
    assert (tmp_path / "log").read_text().count("new study for tune-random.user-alice:6789") == 2


def test_up_runs_postgres_and_katib_on_the_host(sim_stack):
    profile, result = sim_stack
    assert not result["failed"] and {"database", "tuning"} <= set(result["ran"])
    kube = Kube(result["kubeconfig"])
    for name in ("database", "tuning"):
        comp = CATALOG[name](profile.components[name].options, Runtime(pods_run=False))
        assert comp.on_host and comp.ready(kube) == (True, "")
    assert all(_host(result, n).alive() for n in HOSTED)
    shown = {p["name"]: p for p in orchestrator.status(NAME)["host_processes"]}  # `appliance status` lists them
    assert set(HOSTED) <= set(shown) and all(shown[n]["alive"] and shown[n]["rss_bytes"] > 0 for n in HOSTED), shown
    assert kube.get("apps/v1", "StatefulSet", "postgres", "database") is None  # the host process serves
    address = kube.get("v1", "ConfigMap", "postgres-address", "database").data
    assert _listening(_postmaster(result)) == {("127.0.0.1", int(address["port"]))}  # loopback only
    hook = kube.get("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", "katib.kubeflow.org")
    assert all(w.clientConfig.url.startswith("https://127.0.0.1:") for w in hook.webhooks)


def test_tune_gpu_sim_scenario_passes(sim_stack, tmp_path):
    _, result = sim_stack
    scenario_passes(result, "sim", COMPONENTS, "tune-gpu-sim", tmp_path)


def test_tune_isolation_scenario_passes(sim_stack, tmp_path):
    """RBAC (users make Experiments, read Trials and Suggestions) and the trial-kind policy, on a real API
    server; the network steps need pods (kind)."""
    scenario_passes(sim_stack[1], "sim", COMPONENTS, "tune-isolation", tmp_path, skips_for=("network-policy",))


def test_postgres_killed_comes_back_with_its_data_and_tuning_goes_on(sim_stack, tmp_path):
    _, result = sim_stack
    data = process.controllers_dir(result["kubeconfig"]) / "postgres-root" / "var/lib/postgresql/data/pgdata"
    assert (data / "PG_VERSION").is_file()
    killed = _postmaster(result)
    os.kill(killed.pid, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(ValueError, psutil.Error):
            if (server := _postmaster(result)).pid != killed.pid and _listening(server):
                break
        time.sleep(1)
    else:
        pytest.fail(f"PostgreSQL not back in 60 s: {_host(result, 'postgres').log.read_text()[-2000:]}")
    assert "client katib: role and database ready" in _host(result, "postgres").log.read_text().split("controller exited")[-1]
    scenario_passes(result, "sim", COMPONENTS, "tune-gpu-sim", tmp_path)  # db-manager reconnected; no leftovers from the first run


def _psql(result, user: str, password: str) -> subprocess.CompletedProcess:
    """`SELECT 1` in `user`'s database as `user`, over the server's loopback port (the pgserver wheel's psql)."""
    where = Kube(result["kubeconfig"]).get("v1", "ConfigMap", database.ADDRESS, "database").data
    psql = Path(CATALOG["database"].hooks.host_env(None)["PGBIN"]) / "psql"
    return subprocess.run([str(psql), f"host={where['host']} port={where['port']} user={user} dbname={user}", "-tAc", "select 1"],
                          capture_output=True, text=True, timeout=30, env={**os.environ, "PGPASSWORD": password})


def test_a_lost_credentials_secret_is_made_anew_and_postgres_and_katib_take_it(sim_stack, tmp_path):
    """The Secret deleted while the data survives: `up` makes new passwords, PostgreSQL's setup sets them
    (the superuser's too: it reaches its data by peer authentication) instead of crash-looping, and Katib's
    db-manager, applied again, restarts with its new login."""
    profile, result = sim_stack
    kube = Kube(result["kubeconfig"])
    old = secret_data(kube, database.SECRET, "database")
    manager = _host(result, "katib-db-manager").load().pid
    kube.delete([{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": database.SECRET, "namespace": "database"}}])
    again = orchestrator.up(profile, "sim", report.make())
    assert {"database", "tuning"} <= set(again["ran"]) and not again["failed"], again
    new = secret_data(kube, database.SECRET, "database")
    assert set(new) == set(old) and all(new[k] != old[k] for k in old)
    assert _psql(result, "katib", new["katib"]).stdout.strip() == "1"
    refused = _psql(result, "katib", old["katib"])
    assert refused.returncode != 0 and "password authentication failed" in refused.stderr
    assert _host(result, "katib-db-manager").load().pid != manager and _host(result, "katib-db-manager").alive()
    scenario_passes(result, "sim", COMPONENTS, "tune-gpu-sim", tmp_path)  # Katib stores and reads its trials again


def test_a_component_switched_off_is_removed_keeping_the_users_objects_and_comes_back(sim_stack):
    """tuning left out of the profile: `up` removes it (its processes stop, its objects go) but keeps its CRDs,
    and so the users' experiments; `status` says removed and what was kept; switched on again, it is back."""
    profile, result = sim_stack
    kube = Kube(result["kubeconfig"])
    without = profile.model_copy(update={"components": {n: s for n, s in profile.components.items() if n != "tuning"}})
    off = orchestrator.up(without, "sim", report.make())
    kept = off["removed"]["tuning"]
    assert not off["ran"] and "CustomResourceDefinition/experiments.kubeflow.org" in kept, off
    assert not any(_host(result, n).alive() for n in HOSTED if n.startswith("katib"))
    assert kube.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", "experiments.kubeflow.org") is not None  # users' experiments with it
    assert kube.get("v1", "ConfigMap", "katib-config", "katib") is None
    st = orchestrator.status(NAME)
    assert st["components"]["tuning"] == {"step": "removed", "error": None, "kept": kept}
    assert orchestrator.up(without, "sim", report.make())["noop"]  # removed once
    back = orchestrator.up(profile, "sim", report.make())
    assert back["ran"] == ["tuning"] and not back["removed"], back
    assert all(_host(result, n).alive() for n in HOSTED)


def test_second_up_is_a_no_op_and_down_stops_every_process(sim_stack):
    """Every component's host processes (Katib's, PostgreSQL, KServe's and the training operator's controllers,
    Argo's, Prometheus and the GPU exporter) kept by a second `up`, and stopped by `down` with their children."""
    profile, result = sim_stack
    hosted = [h.name for h in process.recorded(result["kubeconfig"]) if h.alive()]
    assert {*HOSTED, "kserve-controller-manager", "training-operator", "workflow-controller", "prometheus", "gpu-exporter"} <= set(hosted), hosted
    pids = {n: _host(result, n).load().pid for n in hosted}
    again = orchestrator.up(profile, "sim", report.make())
    assert not again["ran"] and not again["failed"], again
    assert {n: _host(result, n).load().pid for n in hosted} == pids
    children = [p for n in hosted for p in psutil.Process(pids[n]).children(recursive=True)]
    orchestrator.down(profile.cluster.name, report.make())
    assert not any(_host(result, n).alive() for n in hosted)
    gone, alive = psutil.wait_procs(children, timeout=20)
    assert not alive, [p.cmdline()[:2] for p in alive]
