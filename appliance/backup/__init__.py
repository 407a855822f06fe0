"""`appliance backup` and `restore`: what users and components own, copied out of a running cluster into a
folder — the credentials the components generated (sealed with the operator's key, or left out), each user's
custom resources with their status, the files of the volumes that hold data (users' homes, the artifact
store, the hub's database) and the components' logical dumps (each PostgreSQL database) — with a manifest of
every file's size and sha256 — or into one compressed file (archive.py); and back into a cluster of the
same profile, whole or one user's part.

Credentials are sealed by sealing.py; volumes are copied by pods of volumes.py."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any, Callable

from appliance import components, orchestrator
from appliance.backup import archive, sealing, volumes
from appliance.components.kit import COMPONENT_LABEL
from appliance.errors import UserError
from appliance.util.files import atomic_write, sha256_file

FORMAT = 1
MANIFEST = "backup.json"
Report = Callable[[str], None]
#: what a restored object keeps of its metadata
META = ("name", "namespace", "labels", "annotations")


# ---------------------------------------------------------------------------------------------- the cluster


class Target:
    """A running cluster `up` made, where pods run: its admin client, components and users."""

    def __init__(self, cluster: str):
        profile, provider = orchestrator.recorded(cluster)
        self.name, self.profile_name = cluster, profile.name
        self.cluster = orchestrator.Cluster(profile, provider)
        if not self.cluster.provider.runtime().pods_run:
            raise UserError("a backup copies volumes with pods, and the simulator runs none", f"cluster '{cluster}'",
                            "back up a kind or bare-metal cluster (the simulator's data is its state folder)", code=2)
        if not self.cluster.provider.ready():
            raise UserError(f"cluster '{cluster}' does not answer", str(self.cluster.dir), "run `appliance up` first")
        self.kube = self.cluster.kube()
        self.comps = components.enabled(profile, self.cluster.provider.runtime())
        up = self.comps.get("user-profiles")
        self.users: list[str] = list(up.options.users) if up else []

    def kubectl(self, *args: str) -> list[str]:
        from appliance.toolchain import Toolchain

        return [str(Toolchain().path("kubectl")), "--kubeconfig", self.kube.kubeconfig, *args]

    def run(self, args: list[str], stdin=None, stdout=None, what: str = "") -> bytes:
        """kubectl with these arguments (stdin, stdout: files); its stdout unless given a file; one line naming
        `what` when it fails."""
        p = subprocess.run(self.kubectl(*args), stdin=stdin, stdout=stdout if stdout is not None else subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=1800)
        if p.returncode:
            raise UserError(f"{what or args[0]} failed: {p.stderr.decode(errors='replace').strip()[-400:]}", f"cluster '{self.name}'",
                            "see the message; run the same command again")
        return p.stdout or b""


def _users(target: Target, only: str | None) -> list[str]:
    if only is None:
        return target.users
    if only not in target.users:
        raise UserError(f"no user '{only}' in the cluster's profile", f"cluster '{target.name}'", f"users: {', '.join(target.users) or 'none'}", code=2)
    return [only]


# ---------------------------------------------------------------------------------------------- credentials


def _secrets(target: Target) -> list[dict]:
    """Every Secret a component rendered holding generated credentials (passwords, keys, tokens), as applied
    objects; not certificates (made anew for the cluster at hand, their CA in its webhook configurations)."""
    return [{"apiVersion": "v1", "kind": "Secret", "type": s.get("type") or "Opaque", "data": s.get("data") or {},
             "metadata": {k: v for k, v in s["metadata"].items() if k in META}}
            for s in target.kube.list_labelled("v1", "Secret", COMPONENT_LABEL)
            if s.get("type") != "kubernetes.io/tls" and "tls.crt" not in (s.get("data") or {})]


# ---------------------------------------------------------------------------------------------- custom resources


def _kinds(target: Target) -> list[tuple[str, str, str, bool, str]]:
    """(component, group, plural, record?, who writes its status) of each kind users create (the components'
    `access`, not the read-only ones); a record's status is kept."""
    return [(n, a.group, r, r in a.records, c.render(a.status_by)) for n, c in target.comps.items() for a in c.decl.access for r in a.resources]


def _resource(target: Target, group: str, plural: str):
    """The served version of a kind (the preferred one), or None."""
    from kubernetes.dynamic.resource import ResourceList, Subresource

    found = [r for r in target.kube.dynamic.resources.search(group=group, name=plural) if not isinstance(r, (ResourceList, Subresource))]
    return next((r for r in found if r.preferred), found[0] if found else None)


def _clean(obj: dict, record: bool) -> dict:
    """An object as it can be created again: no uid, version or other server-set metadata; its status only
    where it is a record (a finished run's result), else its controller makes it anew."""
    meta = {k: v for k, v in obj["metadata"].items() if k in META}
    meta["annotations"] = {k: v for k, v in (meta.get("annotations") or {}).items() if k != "kubectl.kubernetes.io/last-applied-configuration"}
    return {**{k: v for k, v in obj.items() if k != "metadata" and (record or k != "status")}, "metadata": meta}


# ---------------------------------------------------------------------------------------------- backup


class _Writer:
    """Files into the backup folder, each hashed into the manifest (and moved into the archive, if one)."""

    def __init__(self, root: Path, sink: archive.Sink | None = None):
        self.root, self.sink = root, sink
        self.files: list[dict] = []

    def path(self, rel: str) -> Path:
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def add(self, rel: str, kind: str, user: str = "", **extra: Any) -> dict:
        p = self.root / rel
        row = {"name": rel, "kind": kind, "user": user, "size": p.stat().st_size, "sha256": sha256_file(p), **extra}
        self.files.append(row)
        if self.sink is not None:
            self.sink.put(p, rel)
        return row

    def write(self, rel: str, data: bytes, kind: str, user: str = "", **extra: Any) -> dict:
        atomic_write(self.path(rel), data)
        return self.add(rel, kind, user, **extra)


def backup(cluster: str, out: Path, key_file: Path | None, report: Report, user: str | None = None) -> dict:
    """Copy what users and components own out of `cluster` into the folder `out` (new or empty), or the
    file `out` if it is named *.tar.zst (new); returns the manifest. Without a key, the credentials are left
    out (said)."""
    target = Target(cluster)
    users = _users(target, user)
    key = sealing.key(key_file)
    out = Path(out)
    one_file = archive.is_archive(out)
    if one_file and out.exists():
        raise UserError("the backup file exists", str(out), "give a new name (a backup is never written over another)", code=2)
    if not one_file and out.exists() and any(out.iterdir()):
        raise UserError("the backup folder is not empty", str(out), "give a new folder (a backup is never written over another)", code=2)
    tmp = out.with_name(f".{out.name}.partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    with archive.sink(out) if one_file else contextlib.nullcontext() as sink:
        manifest = _backup(target, users, key, user, _Writer(tmp, sink), report)
    if one_file:
        shutil.rmtree(tmp)
    else:
        if out.exists():
            out.rmdir()  # empty (checked above)
        os.replace(tmp, out)
    orchestrator.State(target.cluster.dir).set("backup", {"path": str(out.resolve()), "created": manifest["created"]})
    return manifest


def _backup(target: Target, users: list[str], key: bytes | None, user: str | None, w: _Writer, report: Report) -> dict:
    """Write the backup's files and its manifest (last) through `w`; the manifest."""
    t0 = time.monotonic()
    notes: list[str] = []
    if key is None:
        notes.append("credentials left out (no --key-file): a restore makes new ones, and users' passwords change")
        report(notes[-1])
    elif user is None:
        secrets = _secrets(target)
        w.write("credentials.sealed", sealing.seal(json.dumps(secrets).encode(), key), "credentials")
        report(f"credentials: {len(secrets)} Secrets, sealed")
    for comp, group, plural, record, writer in _kinds(target):
        res = _resource(target, group, plural)
        if res is None:
            continue
        for u in users:
            ns = volumes.USER_NS.format(user=u)
            items = [_clean(o, record) for o in (i.to_dict() for i in res.get(namespace=ns).items) if not o["metadata"].get("ownerReferences")]
            if items:
                w.write(f"resources/{ns}/{plural}.{group}.json", json.dumps(items, indent=1).encode(), "resources", u,
                        component=comp, group=group, plural=plural, count=len(items), status_by=writer if record else "")
                report(f"{ns}: {len(items)} {plural}")
    for c in volumes.claims(target, users, user is None):
        ns, claim = c["namespace"], c["name"]
        spec = target.kube.get("v1", "PersistentVolumeClaim", claim, ns).to_dict()["spec"]
        rel = f"volumes/{ns}/{claim}.tar"
        with volumes.helper(target, ns, claim, writable=False) as pod, open(w.path(rel), "wb") as f:
            # what is in the volume, not the volume's root itself (its owner and mode are the provisioner's)
            parts = " ".join(f"./{p.format(user=u)}" for p in c["per_user"] for u in users) if user else ""
            listing = f"printf '%s\\0' {parts}" if parts else "find . -mindepth 1 -maxdepth 1 -print0"
            target.run(["exec", "-n", ns, pod, "--", "sh", "-c", f"cd /data && {listing} | tar --null -T - --numeric-owner --ignore-failed-read -cf -"],
                       stdout=f, what=f"copying claim {ns}/{claim}")
        row = w.add(rel, "volume", c["user"], component=c["component"], claim=claim, namespace=ns,
                    claim_spec={k: spec.get(k) for k in ("accessModes", "resources", "storageClassName", "volumeMode")})
        report(f"volume {ns}/{claim}: {row['size'] / 2**20:.1f} MiB")
    if user is None:
        for n, comp in target.comps.items():
            for name, data in comp.dump(target.kube, target.run).items():
                w.write(f"dumps/{n}/{name}", data, "dump", component=n, dump=name)
                report(f"dump {n}/{name}: {len(data) / 2**20:.1f} MiB")
    manifest = {"format": FORMAT, "appliance": version("appliance"), "cluster": target.name, "profile": target.profile_name,
                "users": users, "only_user": user, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "credentials": key is not None and user is None, "notes": notes, "files": w.files,
                "seconds": round(time.monotonic() - t0, 1)}
    atomic_write(w.path(MANIFEST), json.dumps(manifest, indent=1))
    if w.sink is not None:
        w.sink.put(w.path(MANIFEST), MANIFEST)
    return manifest


# ---------------------------------------------------------------------------------------------- restore


def verify(src: Path, shown: Path | None = None) -> dict:
    """The backup's manifest, once every file it lists has its size and sha256 (else one line naming it; as
    a member of `shown` where the folder is an archive unpacked)."""
    src = Path(src)

    def where(rel: str) -> str:
        return f"{shown}: {rel}" if shown else str(src / rel)
    try:
        m = json.loads((src / MANIFEST).read_text())
    except OSError:
        raise UserError(f"no {MANIFEST} in it: not a backup", str(shown or src), "give a folder or file `appliance backup` wrote", code=2) from None
    except ValueError:
        raise UserError(f"its {MANIFEST} is not JSON (corrupted)", where(MANIFEST), "restore from another copy of the backup", code=2) from None
    if m.get("format") != FORMAT:
        raise UserError(f"backup format {m.get('format')} is not {FORMAT}", str(shown or src), "restore it with the appliance version that made it", code=2)
    for row in m["files"]:
        p = (src / row["name"]).resolve()
        if not p.is_relative_to(src.resolve()) or not re.fullmatch(r"[\w.@/-]+", row["name"]):
            raise UserError(f"names {row['name']!r}, outside the backup (altered)", where(MANIFEST), "restore from another copy", code=2)
        if not p.is_file():
            raise UserError("a file of the backup is missing", where(row["name"]), "restore from another copy of the backup", code=2)
        if p.stat().st_size != row["size"] or sha256_file(p) != row["sha256"]:
            raise UserError("a file of the backup does not match its size and sha256 in the manifest (corrupted or altered)", where(row["name"]),
                            "restore from another copy of the backup", code=2)
    return m


def restore(cluster: str, src: Path, key_file: Path | None, report: Report, reporter, user: str | None = None) -> dict:
    """Bring a backup (a folder, or a file *.tar.zst) back into `cluster` (made with the backup's profile):
    credentials first, the volumes' files with the workloads writing them stopped, the dumps, the users'
    objects (records with their status); then `up`, where the components using the credentials apply again.
    With `user`: that user's namespace, objects and part of the components' volumes only."""
    src = Path(src)
    if not archive.is_archive(src):
        m = verify(src)
        return _restore(Target(cluster), src, src, m, key_file, report, reporter, user)
    if not src.is_file():
        raise UserError("no such backup file", str(src), "give a file `appliance backup -o NAME.tar.zst` wrote", code=2)
    target = Target(cluster)
    report(f"unpacking {src}")
    with archive.unpacked(src, target.cluster.dir) as folder:
        return _restore(target, folder, src, verify(folder, src), key_file, report, reporter, user)


def _restore(target: Target, src: Path, shown: Path, m: dict, key_file: Path | None, report: Report, reporter, user: str | None) -> dict:
    """restore() from the backup folder `src` of manifest `m` (verified); errors name `shown` (src, or its archive)."""
    cluster = target.name
    if m["profile"] != target.profile_name:
        raise UserError(f"the backup is of profile '{m['profile']}', cluster '{cluster}' runs '{target.profile_name}'", str(shown),
                        f"restore into a cluster made with `appliance up --profile {m['profile']}`", code=2)
    if user is not None and user not in m["users"]:
        raise UserError(f"the backup holds no user '{user}'", str(shown), f"users in it: {', '.join(m['users'])}", code=2)
    key = sealing.key(key_file)
    rerun: set[str] = set()
    t0 = time.monotonic()
    counts = {"secrets": 0, "objects": 0, "volumes": 0, "dumps": 0}
    def one_users(r: dict) -> list[str]:
        """What of row `r` is `user`'s: all of it (theirs, or a whole restore), the paths a component declares
        one user's (its volume's part), or nothing."""
        if user is None or r["user"] == user:
            return ["."]
        comp = target.comps.get(r.get("component", ""))
        d = comp.decl.data if comp is not None and r["kind"] == "volume" and not r["user"] else None
        return [f"./{p.format(user=user)}" for p in d.per_user] if d else []

    rows = [r for r in m["files"] if one_users(r)]
    if m["credentials"] and user is None:
        if key is None:
            raise UserError("the backup's credentials are sealed", f"{shown}: credentials.sealed",
                            "give --key-file with the key the backup was made with", code=2)
        secrets = json.loads(sealing.unseal((src / "credentials.sealed").read_bytes(), key, f"{shown}: credentials.sealed"))
        secrets = [s for s in secrets if s["metadata"].get("labels", {}).get(COMPONENT_LABEL) in target.comps
                   and target.kube.get("v1", "Namespace", s["metadata"]["namespace"]) is not None]
        target.kube.apply(secrets)
        rerun |= {s["metadata"]["labels"][COMPONENT_LABEL] for s in secrets}
        counts["secrets"] = len(secrets)
        report(f"credentials: {len(secrets)} Secrets back")
    kinds = [r for r in rows if r["kind"] == "resources"]
    vols = [r for r in rows if r["kind"] == "volume"]
    dumps = [r for r in rows if r["kind"] == "dump" and user is None]
    # the workloads writing the restored volumes stop meanwhile (the controllers of the restored kinds run:
    # their webhooks admit the objects; a record's status is set right after it is made)
    stopped: list[dict] = []
    for r in vols:
        if target.kube.get("v1", "PersistentVolumeClaim", r["claim"], r["namespace"]) is not None:
            stopped += [w for w in volumes.consumers(target, r["namespace"], r["claim"]) if w not in stopped]
    if stopped:
        report("stopping " + ", ".join(sorted({f"{w['metadata']['namespace']}/{w['metadata']['name']}" for w in stopped})))
        volumes.scale(target, stopped, stop=True)
    for r in vols:
        ns, claim = r["namespace"], r["claim"]
        if target.kube.get("v1", "PersistentVolumeClaim", claim, ns) is None:
            target.kube.dynamic.resources.get(api_version="v1", kind="PersistentVolumeClaim").create(
                namespace=ns, body={"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": claim, "namespace": ns},
                                    "spec": {k: v for k, v in r["claim_spec"].items() if v is not None}})
        with volumes.helper(target, ns, claim, writable=True) as pod, volumes.part(src / r["name"], one_users(r)) as f:
            target.run(["exec", "-i", "-n", ns, pod, "--", "sh", "-c", volumes.UNTAR], stdin=f, what=f"restoring claim {ns}/{claim}")
        counts["volumes"] += 1
        report(f"volume {ns}/{claim}: {r['size'] / 2**20:.1f} MiB back")
    for r in dumps:
        comp = target.comps.get(r["component"])
        if comp is not None:
            comp.load(target.kube, target.run, r["dump"], src / r["name"])
            counts["dumps"] += 1
            report(f"dump {r['component']}/{r['dump']} loaded")
    for r in kinds:
        res = _resource(target, r["group"], r["plural"])
        if res is None:
            report(f"{r['plural']}.{r['group']} is not served here: {r['count']} objects of the backup left out")
            continue
        if r["status_by"]:  # a policy lets only this account write their status
            res = target.kube.impersonating(r["status_by"]).dynamic.resources.get(api_version=res.group_version, kind=res.kind)
        for obj in json.loads((src / r["name"]).read_text()):
            counts["objects"] += _create(res, obj)
        report(f"{r['name'].split('/')[1]}: {r['count']} {r['plural']}")
    if stopped:
        volumes.scale(target, stopped, stop=False)
    state = orchestrator.State(target.cluster.dir)
    for n in rerun & set(target.comps):
        state.set_step(n, status="restoring")  # `up` applies it again: it reads the credentials back
    profile, provider = orchestrator.recorded(cluster)
    up = orchestrator.up(profile, provider, reporter)
    return {"backup": str(shown), "user": user, **counts, "up": {k: up[k] for k in ("ran", "failed")}, "seconds": round(time.monotonic() - t0, 1)}


def _create(res, obj: dict) -> int:
    """Create `obj` unless one of its name exists (then it is kept as it is); its status set after, where the
    kind keeps status apart. 1 if created."""
    from kubernetes.dynamic.exceptions import ConflictError

    status = obj.get("status")
    try:
        res.create(body=obj, namespace=obj["metadata"]["namespace"])
    except ConflictError:
        return 0
    if status and "status" in (res.subresources or {}):  # at once: its controller may have begun on an empty status
        res.subresources["status"].patch(body={"status": status}, name=obj["metadata"]["name"], namespace=obj["metadata"]["namespace"],
                                         content_type="application/merge-patch+json")
    return 1
