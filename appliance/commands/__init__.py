"""Command groups of the CLI beyond the core commands: toolchain, images, baremetal."""
