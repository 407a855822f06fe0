"""network-policy: the agent's image, built from its module with our queue fallback added (see
images/network-policy/queue_compat.go: kernels without nftables' queue expression, CONFIG_NFT_QUEUE, refuse
every rule the agent writes and it then enforces nothing; the fallback queues through the xtables NFQUEUE
target where a probe finds the native expression refused)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from appliance import paths
from appliance.images import builds

MODULE = "sigs.k8s.io/kube-network-policies"
VERSION = "v0.8.0"
PACKAGE = "cmd"
BINARY = "/bin/netpol"  # where the upstream image has it
#: our addition to the module's package networkpolicy, and the upstream lines that then call it
QUEUE_COMPAT = Path(__file__).resolve().parents[3] / "images" / "network-policy" / "queue_compat.go"
NATIVE_QUEUE = """\tqueue := &expr.Queue{Num: uint16(c.config.QueueID)}
\tif c.config.FailOpen {
\t\tqueue.Flag = expr.QueueFlagBypass
\t}
"""


def patch(src: Path) -> None:
    """Add QUEUE_COMPAT to a writable copy of the module source and make controller.go use it."""
    controller = src / "pkg" / "networkpolicy" / "controller.go"
    text = controller.read_text()
    if text.count(NATIVE_QUEUE) != 2:
        raise builds.BuildError(f"{MODULE}@{VERSION}: expected the native queue expression twice in {controller.name}")
    controller.write_text(text.replace(NATIVE_QUEUE, "\tqueue := c.queueExpr()\n"))
    shutil.copy(QUEUE_COMPAT, controller.with_name("zz_appliance_queue_compat.go"))


def binary() -> Path:
    """The agent, built statically from the patched module source; cached by version and patch."""
    out = paths.cache_dir("components", "go", MODULE.replace("/", "_"), f"{VERSION}-{builds.file_hash(QUEUE_COMPAT)}")
    binary = out / "netpol"
    if binary.is_file():
        return binary
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="netpol-", dir=out) as tmp:
        src = builds._writable_copy(builds.module_dir(MODULE, VERSION), Path(tmp, "src"))
        patch(src)
        builds._run(["nice", "-n", "10", builds.find_go() or "go", "build", "-trimpath", "-ldflags=-s -w", "-o", str(Path(tmp, "netpol")),
                     f"./{PACKAGE}"], cwd=src, env=builds._go_env(), log=out / "netpol.build.log")
        os.replace(Path(tmp, "netpol"), binary)
    return binary


def image() -> tuple[str, Path]:
    """(ref, docker-archive): the static binary at the upstream image's path."""
    return builds.binary_image(binary(), "appliance.local/kube-network-policies", BINARY)
