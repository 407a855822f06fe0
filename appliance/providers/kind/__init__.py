"""kind provider: a Docker-in-Docker cluster from our locally built node image."""

from appliance.providers.kind.provider import KindProvider

__all__ = ["KindProvider"]
