"""Locally built container images: the kind node image and the component images it pre-loads."""
