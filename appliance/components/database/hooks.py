"""database: passwords generated once (at the first `up`) and kept: a second `up` reads them back from the
Secret, and a new client gets its own. Client components read theirs with the package's `credentials()`. On the host
runtime PostgreSQL's programs come from the `pgserver` wheel (`host_env`)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from pathlib import Path

from appliance.components.database import SECRET
from appliance.errors import UserError
from appliance.kube import secret_data


def _passwords(existing: dict[str, str], clients: list[str]) -> dict[str, str]:
    """The superuser's and each client's password: the existing ones kept, missing ones generated."""
    return {name: existing.get(name) or secrets.token_urlsafe(24) for name in ["postgres", *clients]}


def context(options, kube) -> dict:
    """`credentials` (base64 values for the Secret) and `credentials_hash` (rolls the pod when they change)."""
    pw = _passwords(secret_data(kube, SECRET, options.namespace), options.clients) if kube is not None else dict.fromkeys(["postgres", *options.clients], "")
    return {"credentials": {k: base64.b64encode(v.encode()).decode() for k, v in pw.items()},
            "credentials_hash": hashlib.sha256(repr(sorted(pw.items())).encode()).hexdigest()[:16]}


def host_env(options) -> dict[str, str]:
    """PGBIN for the entrypoint on the host runtime: the programs of the `pgserver` wheel."""
    import importlib.util

    spec = importlib.util.find_spec("pgserver")  # found, not imported (importing it sets up its own server)
    if spec is None or not spec.origin:
        raise UserError("PostgreSQL's programs are missing for the database's host runtime", "the appliance's Python environment",
                        "install the appliance with its dependencies (pyproject.toml lists pgserver): `make host-setup` does")
    return {"PGBIN": str(Path(spec.origin).resolve().parent / "pginstall" / "bin")}
