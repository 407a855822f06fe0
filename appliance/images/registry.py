"""A small client for the registry HTTP API (OCI distribution): push a docker-archive without Docker,
and ask whether a registry answers. Blobs go up monolithically; ones already there are skipped."""

from __future__ import annotations

import http.client
import json
import ssl
import tarfile
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar"  # uncompressed: local registries, CPU over bytes
DOCKER_HUB_API = "registry-1.docker.io"


class RegistryError(RuntimeError):
    pass


def registry_of(ref: str) -> str:
    """The registry host of an image reference (`docker.io` when the first part is not a host)."""
    first = ref.split("/", 1)[0]
    if "/" in ref and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def endpoint_for(host: str, mirrors: dict[str, str]) -> str:
    """Where `host`'s API is reached: its mirror when one is set, else https://<host> (Docker Hub's API host for docker.io)."""
    if host in mirrors:
        return mirrors[host].rstrip("/")
    return f"https://{DOCKER_HUB_API if host == 'docker.io' else host}"


@dataclass
class Endpoint:
    """A registry API base URL, e.g. http://10.0.0.5:5000 or registry.example (= https://registry.example)."""

    url: str
    timeout: float = 60.0

    def __post_init__(self):
        """A bare host[:port] means HTTPS."""
        self.url = (self.url if "://" in self.url else f"https://{self.url}").rstrip("/")

    def _conn(self, timeout: float | None = None) -> http.client.HTTPConnection:
        u = urllib.parse.urlsplit(self.url)
        if u.scheme == "http":
            return http.client.HTTPConnection(u.netloc, timeout=timeout or self.timeout)
        return http.client.HTTPSConnection(u.netloc, timeout=timeout or self.timeout, context=ssl.create_default_context())

    def request(self, method: str, path: str, body=None, headers: dict | None = None, timeout: float | None = None):
        conn = self._conn(timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            conn.close()

    def answers(self, timeout: float = 3.0) -> tuple[bool, str]:
        """Whether the API answers `GET /v2/` (401 counts: it is there, it wants a token)."""
        try:
            status, _, _ = self.request("GET", "/v2/", timeout=timeout)
        except (OSError, http.client.HTTPException) as e:
            return False, f"{self.url}: {type(e).__name__}: {e}"
        if status in (200, 401):
            return True, f"{self.url} answers ({status})"
        return False, f"{self.url} answered HTTP {status} to /v2/"

    def has_blob(self, repo: str, digest: str) -> bool:
        return self.request("HEAD", f"/v2/{repo}/blobs/{digest}")[0] == 200

    def put_blob(self, repo: str, digest: str, body, size: int) -> None:
        status, headers, data = self.request("POST", f"/v2/{repo}/blobs/uploads/", headers={"Content-Length": "0"})
        if status != 202:
            raise RegistryError(f"{self.url}: starting an upload to {repo} gave HTTP {status}: {data[:200]!r}")
        loc = urllib.parse.urlsplit(headers.get("Location") or headers.get("location") or "")
        query = f"{loc.query}&" if loc.query else ""
        path = f"{loc.path}?{query}digest={urllib.parse.quote(digest)}"
        status, _, data = self.request("PUT", path, body=body,
                                       headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)})
        if status != 201:
            raise RegistryError(f"{self.url}: uploading {digest[:19]} to {repo} gave HTTP {status}: {data[:200]!r}")

    def put_manifest(self, repo: str, tag: str, manifest: bytes) -> str:
        status, headers, data = self.request("PUT", f"/v2/{repo}/manifests/{tag}", body=manifest,
                                             headers={"Content-Type": MANIFEST_TYPE})
        if status != 201:
            raise RegistryError(f"{self.url}: manifest {repo}:{tag} gave HTTP {status}: {data[:300]!r}")
        return headers.get("Docker-Content-Digest", "")


def push_archive(archive: Path, endpoint: Endpoint, repo: str, tag: str) -> str:
    """Push the image of a docker-archive (ours: uncompressed layers named by diff id) as
    `repo:tag`; returns the manifest digest."""
    import hashlib

    with tarfile.open(archive) as tar:
        entry = json.load(tar.extractfile("manifest.json"))[0]
        config = tar.extractfile(entry["Config"]).read()
        layers = []
        for name in entry["Layers"]:
            member = tar.getmember(name)
            digest = "sha256:" + name.split("/", 1)[0]
            layers.append({"mediaType": LAYER_TYPE, "digest": digest, "size": member.size})
            if not endpoint.has_blob(repo, digest):
                endpoint.put_blob(repo, digest, tar.extractfile(member), member.size)
    cfg_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    if not endpoint.has_blob(repo, cfg_digest):
        endpoint.put_blob(repo, cfg_digest, config, len(config))
    manifest = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST_TYPE,
                           "config": {"mediaType": CONFIG_TYPE, "digest": cfg_digest, "size": len(config)},
                           "layers": layers}, separators=(",", ":")).encode()
    return endpoint.put_manifest(repo, tag, manifest) or "sha256:" + hashlib.sha256(manifest).hexdigest()
