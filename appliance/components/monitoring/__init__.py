"""The monitoring component; its files are the kit's, imported by nothing outside appliance.components."""
