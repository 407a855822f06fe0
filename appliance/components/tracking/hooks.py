"""tracking: what data cannot say — the database role and the artifact store account MLflow's server uses, read
from the components that made them (each listing `tracking` as a client)."""

from __future__ import annotations

from appliance.components import database, pipelines
from appliance.errors import UserError


def context(options, kube, **_offered) -> dict:
    """`db`: how the server reaches its database (host, port, user, password, database); `store`: its artifact
    store account (endpoint, access, secret, bucket)."""
    db = database.credentials(kube, options.database_namespace, options.database_client)
    store = pipelines.store_credentials(kube, options.store_namespace, options.store_client)
    if kube is not None and not db["password"]:
        raise UserError(f"the database has no client '{options.database_client}'",
                        f"Secret {options.database_namespace}/{database.SECRET}",
                        f"add {options.database_client} to components.database.options.clients (and {options.namespace} to its "
                        "client_namespaces) and run `appliance up` again")
    if kube is not None and not store["secret"]:
        raise UserError(f"the artifact store has no client '{options.store_client}'", f"Secret {options.store_namespace}/artifact-store",
                        f"add {options.store_client} to components.pipelines.options.clients (and {options.namespace} to its "
                        "client_namespaces) and run `appliance up` again")
    return {"db": db, "store": store}
