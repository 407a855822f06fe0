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


#: run in the server's pod as the superuser over its local socket: pg_dump / pg_restore of database "$0"
_AS_SUPERUSER = 'PGPASSWORD=$(cat "$CREDENTIALS/postgres") exec /usr/lib/postgresql/15/bin/{} -h /tmp -U postgres {} "$0"'
POD = "postgres-0"


def dump(options, kube, kubectl) -> dict[str, bytes]:
    """Each client's database as pg_dump's custom format (roles, owners and grants come back with `up`)."""
    return {f"{c}.pgdump": kubectl(["exec", "-n", options.namespace, POD, "--", "sh", "-c", _AS_SUPERUSER.format("pg_dump", "-Fc"), c],
                                   what=f"pg_dump of database {c}") for c in options.clients}


def load(options, kube, kubectl, name: str, path) -> None:
    """A client's dump back into its database, replacing what it holds, in one transaction."""
    client = name.removesuffix(".pgdump")
    if client not in options.clients:
        raise UserError(f"the backup's dump '{name}' is of no client of this database", str(path),
                        f"add {client} to components.database.options.clients, or restore into a cluster of the backup's profile", code=2)
    with open(path, "rb") as f:
        kubectl(["exec", "-i", "-n", options.namespace, POD, "--", "sh", "-c",
                 _AS_SUPERUSER.format("pg_restore", "--clean --if-exists --single-transaction --exit-on-error -d"), client],
                stdin=f, what=f"pg_restore of database {client}")
