"""The host runtime: where a provider's nodes run no containers (the simulator), the workloads a component
declares under `host:` run as supervised host processes against the API server instead of as pods. The
provider chooses it once (`Provider.runtime()`) and the components are given it; the kit asks it whether a
component's workloads go to the host and hands them to it to start, probe and stop (`HostControllers`)."""

from __future__ import annotations

from dataclasses import dataclass

from appliance.runtime.controller import HOST_IP, HostController, HostControllers, Workload
from appliance.runtime.process import HostProcess, controllers_dir, infos, recorded, stop_all


@dataclass(frozen=True)
class Runtime:
    """Where a cluster's workloads run: as pods where `pods_run`, else those declared for it on the host."""

    pods_run: bool = True

    def on_host(self, choice: str) -> bool:
        """Whether a component whose `runtime` option is `choice` runs its host workloads on the host: `host`,
        or `auto` where pods do not run."""
        return choice == "host" or (choice == "auto" and not self.pods_run)

    def controllers(self, kube, names: list[str]) -> HostControllers:
        """The host processes of workloads `names` on `kube`'s cluster."""
        return HostControllers(kube, names)


#: the runtime of a provider whose nodes run pods (the default)
IN_CLUSTER = Runtime()

__all__ = ["HOST_IP", "IN_CLUSTER", "HostController", "HostControllers", "HostProcess", "Runtime", "Workload", "controllers_dir", "infos",
           "recorded", "stop_all"]
