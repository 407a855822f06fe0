"""user-profiles: one namespace per user, the user may edit only their own namespace."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from appliance.components import Options, register
from appliance.components.objects import ObjectsComponent


class UserOpts(Options):
    users: list[str] = Field(default_factory=lambda: ["alice", "bob"])
    gpu_quota: int | None = Field(None, ge=0, description="max nvidia.com/gpu requested per user namespace")

    @field_validator("users")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        for u in v:
            if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,50}[a-z0-9])?", u):
                raise ValueError(f"user '{u}' must be a lowercase DNS label")
        return v


def namespace(user: str) -> str:
    return f"user-{user}"


@register
class UserProfiles(ObjectsComponent):
    name = "user-profiles"
    description = "a namespace per user with RBAC (user and service account bound to `edit`) and an optional GPU quota"
    depends = ("platform-base",)
    Opts = UserOpts

    def objects(self) -> list[dict]:
        objs: list[dict] = []
        for user in self.options.users:
            ns = namespace(user)
            labels = {"app.kubernetes.io/managed-by": "appliance", "appliance.dev/owner": user}
            objs += [
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": labels}},
                {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": user, "namespace": ns, "labels": labels}},
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                    "metadata": {"name": f"{user}-edit", "namespace": ns, "labels": labels},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
                    "subjects": [
                        {"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"},
                        {"kind": "ServiceAccount", "name": user, "namespace": ns},
                    ],
                },
            ]
            if self.options.gpu_quota is not None:
                objs.append({
                    "apiVersion": "v1", "kind": "ResourceQuota",
                    "metadata": {"name": "gpu", "namespace": ns, "labels": labels},
                    "spec": {"hard": {"requests.nvidia.com/gpu": str(self.options.gpu_quota)}},
                })
        return objs
