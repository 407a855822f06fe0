"""The training-operator component; its files are the kit's, imported by nothing outside appliance.components."""
