"""Small Go programs the node image ships beyond the toolchain, built by the components' Go builder
(`builds.go_binary`, cached by module version). Optional: without Go or a module proxy they are skipped
and the node image goes without them; a failed build is remembered until `retry`."""

from __future__ import annotations

from pathlib import Path

from appliance.images import builds
from appliance.paths import cache_dir

#: name -> (module, version, main package inside the module)
PROGRAMS = {
    "local-path-provisioner": ("github.com/rancher/local-path-provisioner", "v0.0.30", ""),
    # the oldest crictl the module proxy here serves; CRI v1 works with containerd 1.6
    "crictl": ("sigs.k8s.io/cri-tools", "v1.34.0", "cmd/crictl"),
}


def go_program(name: str, report=print, retry: bool = False) -> Path | None:
    """Path of the cached static binary, building it when missing; None when it can't be built."""
    module, version, package = PROGRAMS[name]
    failed = cache_dir("images", "go-bin", f"{name}-{version}.failed")
    if failed.exists() and not retry:
        return None
    failed.unlink(missing_ok=True)
    if not builds.find_go():
        report(f"{name}: no Go toolchain; skipping")
        return None  # not remembered: installing Go later should just work
    try:
        return builds.go_binary(module, version, package, name, report=report)
    except builds.BuildError as e:
        failed.parent.mkdir(parents=True, exist_ok=True)
        failed.write_text(f"{e}\n")
        report(f"{name}: build failed ({str(e)[:300]}); skipping")
        return None
