"""Bare-metal provider: Ansible playbooks run through ansible-runner on the profile's servers."""

from appliance.providers.baremetal.provider import BaremetalProvider

__all__ = ["BaremetalProvider"]
