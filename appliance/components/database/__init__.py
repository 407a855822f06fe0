"""The database component. `__all__` is what code outside its folder may use (its clients' components read
their credentials); the rest is the kit's."""

from __future__ import annotations

from appliance.kube import secret_data

__all__ = ["SECRET", "credentials"]

#: the Secret holding the superuser's and each client's password
SECRET = "database-credentials"
#: the ConfigMap saying where the server listens
ADDRESS = "postgres-address"
SERVICE = "postgres"
PORT = 5432


def credentials(kube, namespace: str, client: str) -> dict[str, str]:
    """What client `client` connects with: host, port (the server's ConfigMap: the Service, or loopback on
    the host runtime), user, password, database ("" before `up` made them)."""
    live = kube.get("v1", "ConfigMap", ADDRESS, namespace) if kube is not None else None
    where = (live.to_dict().get("data") or {}) if live is not None else {}
    return {"host": where.get("host", f"{SERVICE}.{namespace}.svc"), "port": where.get("port", str(PORT)), "user": client,
            "database": client, "password": secret_data(kube, SECRET, namespace).get(client, "")}
