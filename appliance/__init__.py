"""appliance: a local-first ML platform appliance and simulator."""

__version__ = "0.1.0"
