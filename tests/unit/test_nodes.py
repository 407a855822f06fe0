"""Node operations without a cluster: what is refused before anything is drained, and drain's one-line errors
(kubectl answers stand in for the cluster; the real drain and removal: tests/integration/test_baremetal.py)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from appliance import nodes
from appliance.errors import UserError
from appliance.providers.kind import KindProvider

NODES = {"items": [{"metadata": {"name": "cp", "labels": {"node-role.kubernetes.io/control-plane": ""}}},
                   {"metadata": {"name": "w1", "labels": {}}}]}


@pytest.fixture
def kubectl(monkeypatch):
    """Records kubectl's arguments; `get nodes` answers NODES, `drain` what the test sets."""
    calls, answers = [], {"drain": (0, "")}

    def fake(kubeconfig, *args, timeout=60):
        calls.append(args)
        if args[:2] == ("get", "nodes"):
            return subprocess.CompletedProcess(args, 0, json.dumps(NODES), "")
        rc, err = answers.get(args[0], (0, ""))
        return subprocess.CompletedProcess(args, rc, "", err)

    monkeypatch.setattr(nodes, "_kubectl", fake)
    return calls, answers


def test_an_unknown_node_is_named_with_the_known_ones(kubectl):
    with pytest.raises(UserError) as e:
        nodes.drain(Path("kc"), "w9", print)
    assert e.value.line() == "NODE: no node named 'w9' — fix: give one of: cp, w1"


def test_drain_evicts_with_the_budgets_and_keeps_daemonsets(kubectl):
    calls, _ = kubectl
    said: list[str] = []
    nodes.drain(Path("kc"), "w1", said.append, timeout=42)
    assert calls[-1] == ("drain", "w1", "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=42s")
    assert said[-1] == "w1 drained"


@pytest.mark.parametrize("stderr,fix", [
    ('error: unable to drain node "w1" due to error: cannot delete Pods that declare no controller (use --force to override): '
     "default/lonely, continuing command...", "delete them yourself (nothing makes them again), then run again: default/lonely"),
    ('evicting pod default/web-1\nerror when evicting pods/"web-1" -n "default" (will retry after 5s): Cannot evict pod as it would '
     "violate the pod's disruption budget.\nerror: unable to drain node \"w1\" due to error: global timeout reached: 42s",
     "a PodDisruptionBudget holds a pod"),
])
def test_a_stopped_drain_is_one_line_saying_what_holds_it(kubectl, stderr, fix):
    kubectl[1]["drain"] = (1, stderr)
    with pytest.raises(UserError) as e:
        nodes.drain(Path("kc"), "w1", print)
    line = e.value.line()
    assert line.startswith("appliance node drain: draining w1 stopped: error") and fix in line, line
    assert line.endswith("w1 stays cordoned meanwhile (`kubectl uncordon w1` takes it back)") and "\n" not in line


def test_a_control_plane_or_a_node_of_kind_is_refused_before_any_drain(kubectl, tmp_path):
    calls, _ = kubectl
    with pytest.raises(UserError) as e:
        nodes.remove(object(), Path("kc"), "cp", print)
    assert "cp is a control plane" in e.value.line()
    kind = KindProvider.__new__(KindProvider)
    with pytest.raises(UserError) as e:
        nodes.remove(kind, Path("kc"), "w1", print)
    assert "the kind provider cannot remove a node: its nodes are made with the cluster" in e.value.line()
    assert not [c for c in calls if c[0] in ("drain", "delete")]
