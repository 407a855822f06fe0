"""Offline Kubernetes toolchain: pinned binaries, downloaded (sha256-checked) or built from Go modules."""

from appliance.toolchain.core import Cache, Toolchain, ToolStatus, status_json
from appliance.toolchain.pins import ORDER, SET_VERSION, SIM_TOOLS, TOOLS, Tool

__all__ = ["Toolchain", "ToolStatus", "Cache", "status_json", "TOOLS", "ORDER", "SIM_TOOLS", "SET_VERSION", "Tool"]
