"""Small helpers every layer may use (they import nothing of the appliance)."""
