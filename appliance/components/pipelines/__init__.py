"""The pipelines component. `__all__` is what code outside its folder may use (a platform client of its artifact
store, e.g. tracking, reads its credentials); the rest is the kit's."""

from __future__ import annotations

import json

from appliance.kube import secret_data

__all__ = ["store_credentials"]

#: Secret, Deployment and Service of the artifact store (manifests/50-store.yaml)
STORE = "artifact-store"
PORT = 9000


def account(client: str) -> str:
    """The store access key of platform client `client` (a user's is their name; no user name has a dot)."""
    return f"svc.{client}"


def bucket_of(client: str) -> str:
    """The bucket platform client `client` owns (users' are `user-<name>`)."""
    return f"svc-{client}"


def accounts(live: dict[str, str]) -> dict[str, dict]:
    """The store's accounts by access key, from its Secret's decoded data `live` ({} before the first `up`)."""
    return (json.loads(live["users.json"]).get("accessAccounts") or {}) if live.get("users.json") else {}


def store_credentials(kube, namespace: str, client: str) -> dict[str, str]:
    """What platform client `client` (listed in the component's `clients`) reaches the store with: endpoint,
    access and secret keys ("" before `up` made them), bucket."""
    key = account(client)
    return {"endpoint": f"http://{STORE}.{namespace}.svc:{PORT}", "access": key,
            "secret": (accounts(secret_data(kube, STORE, namespace)).get(key) or {}).get("secret", ""), "bucket": bucket_of(client)}
