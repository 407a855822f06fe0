"""A real OCI registry (distribution v3, built from its Go module) for tests: as a loopback host
process, or as a container on a Docker network the kind nodes share."""

import contextlib
import subprocess
import tempfile
import time
from pathlib import Path

from appliance.images import builds
from appliance.images import registry as R
from appliance.images.archive import FileEntry
from appliance.procs import free_ports

MODULE, VERSION = "github.com/distribution/distribution/v3", "v3.0.0"
CONFIG = """version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: %s}
  delete: {enabled: true}
http:
  addr: %s
"""


def binary() -> Path:
    return builds.go_binary(MODULE, VERSION, "cmd/registry", "registry")


def _wait(url: str, proc=None) -> None:
    deadline = time.monotonic() + 30
    while not R.Endpoint(url).answers(timeout=1)[0]:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"registry exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"registry at {url} did not answer in 30s")
        time.sleep(0.3)


@contextlib.contextmanager
def host_registry():
    """A registry on 127.0.0.1:<free port>; yields its URL."""
    with tempfile.TemporaryDirectory() as d:
        port = free_ports(1)[0]
        cfg = Path(d) / "config.yml"
        cfg.write_text(CONFIG % (Path(d) / "data", f"127.0.0.1:{port}"))
        proc = subprocess.Popen([str(binary()), "serve", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait(url, proc)
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=10)


@contextlib.contextmanager
def container_registry(network: str, name: str):
    """A registry container on Docker `network` (created if missing); yields http://<its IP>:5000,
    which both this host and containers on that network reach."""
    config = FileEntry("etc/distribution/config.yml", data=(CONFIG % ("/tmp/registry", ":5000")).encode(), mode=0o644)
    ref, archive = builds.binary_image(binary(), "appliance.local/test-registry", "/registry", extra=[config])
    with open(archive, "rb") as f:
        subprocess.run(["docker", "load"], stdin=f, check=True, capture_output=True)
    if subprocess.run(["docker", "network", "inspect", network], capture_output=True).returncode != 0:
        subprocess.run(["docker", "network", "create", network], check=True, capture_output=True)
    subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    subprocess.run(["docker", "run", "-d", "--user", "0:0", "--name", name, "--network", network, ref, "serve", "/etc/distribution/config.yml"],
                   check=True, capture_output=True)
    try:
        ip = subprocess.run(["docker", "inspect", "-f", f"{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}", name],
                            check=True, capture_output=True, text=True).stdout.strip()
        url = f"http://{ip}:5000"
        _wait(url)
        yield url
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
