"""appliance: a local-first ML platform appliance and simulator (its version: the installed package's metadata)."""
