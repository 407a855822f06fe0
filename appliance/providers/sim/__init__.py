"""Simulator provider: local etcd + kube-apiserver + controller-manager + scheduler, kwok nodes."""

from appliance.providers.sim.provider import SimProvider

__all__ = ["SimProvider"]
