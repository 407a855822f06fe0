"""Shared base for components made of plain Kubernetes objects built in Python."""

from __future__ import annotations

from appliance.components import Component


class ObjectsComponent(Component):
    """Install = server-side apply of `objects()`; ready = all exist; remove = delete them."""

    def objects(self) -> list[dict]:
        raise NotImplementedError

    def install(self, kube) -> str:
        return f"applied {kube.apply(self.objects())} objects"

    def remove(self, kube) -> None:
        kube.delete(reversed(self.objects()))

    def ready(self, kube) -> tuple[bool, str]:
        missing = kube.missing(self.objects())
        return (not missing, ", ".join(missing[:5]))
