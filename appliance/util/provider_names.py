"""The providers' names, listed once: the profile schema, the e2e scenarios and the provider registry use this."""

PROVIDERS = ("sim", "kind", "baremetal")
