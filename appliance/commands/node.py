"""`appliance node ...`: drain a node, remove one (bare metal: its server reset)."""

from __future__ import annotations

import click

from appliance import nodes, orchestrator, profiles, report

cluster_opts = [click.option("--profile", "-p", default="laptop", show_default=True, help="profile name or YAML file"),
                click.option("--cluster", default=None, help="cluster name (default: the profile's cluster.name)"),
                click.option("--timeout", default=300, show_default=True, help="seconds the evictions may take")]


def _with_cluster(fn):
    for opt in reversed(cluster_opts):
        fn = opt(fn)
    return click.argument("name")(fn)


def _in_cluster(profile: str, cluster: str | None, action) -> None:
    """Run action(provider, kubeconfig, say) on the named cluster (or the profile's), with progress lines."""
    rep = report.make()
    try:
        provider, kubeconfig = orchestrator.node_access(cluster or profiles.load(profile).profile.cluster.name, rep)
        action(provider, kubeconfig, rep.message)
    finally:
        rep.close()


@click.group("node")
def node() -> None:
    """A cluster's nodes: drain one, remove one."""


@node.command("drain")
@_with_cluster
def drain_cmd(name, profile, cluster, timeout):
    """Cordon node NAME and evict its pods (PodDisruptionBudgets respected; DaemonSets' pods stay)."""
    _in_cluster(profile, cluster, lambda _, kubeconfig, say: nodes.drain(kubeconfig, name, say, timeout))


@node.command("remove")
@_with_cluster
def remove_cmd(name, profile, cluster, timeout):
    """Drain worker NAME, delete it from the cluster and reset its server (bare metal)."""
    _in_cluster(profile, cluster, lambda provider, kubeconfig, say: nodes.remove(provider, kubeconfig, name, say, timeout))
