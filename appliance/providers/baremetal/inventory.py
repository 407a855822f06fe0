"""The Ansible inventory of a bare-metal cluster: generated from the profile's
`cluster.baremetal.hosts`, or the user's own inventory file with the appliance's defaults
layered under it. Offline, the appliance provides what the hosts cannot download."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import yaml

from appliance.errors import ProfileError, UserError
from appliance.images.delivery import node_mirrors
from appliance.toolchain import Toolchain
from appliance.toolchain.pins import KUBERNETES

K8S_BINARIES = ("kubelet", "kubeadm", "kubectl")
POD_CIDR = "10.244.0.0/16"  # the roles' default (appliance_pod_cidr)


class Inventory:
    """The inventory for one cluster spec, written under `state_dir`/inventory."""

    def __init__(self, spec: Any, state_dir: Path, report: Callable[[str], None]):
        self.spec = spec
        self.bm = getattr(spec, "baremetal", spec)
        self.cluster_name = getattr(spec, "name", "appliance")
        self.state_dir = state_dir
        self.report = report

    def check_addresses(self) -> None:
        """Refuse a host without an address (the `dgx` profile ships one) before any work, unless an
        inventory of the user's says where the hosts are."""
        if self.bm.inventory:
            return
        for i, h in enumerate(self.bm.hosts):
            if not h.address.strip():
                raise ProfileError(
                    f"host '{h.name}' has no address", where=f"cluster.baremetal.hosts.{i}.address",
                    fix=f"set it: --set cluster.baremetal.hosts.{i}.address=<IP or DNS name>, or use your own "
                        "inventory: --set cluster.baremetal.inventory=./hosts.ini")

    def hostinfo(self) -> dict[str, dict]:
        """Per host: what failure fixes quote (address, user, port)."""
        return {h.name: {"address": h.address, "user": h.user, "port": h.port} for h in self.bm.hosts}

    def k8s_binaries_dir(self) -> Path:
        """A folder with kubelet/kubeadm/kubectl from the appliance toolchain (offline installs)."""
        self.report("toolchain: making sure kubelet, kubeadm, kubectl are cached (built once)")
        paths = Toolchain(report=self.report).ensure(list(K8S_BINARIES))
        dest = self.state_dir / "k8s-bin"
        dest.mkdir(parents=True, exist_ok=True)
        for name, p in paths.items():
            link = dest / name
            if link.is_symlink() or link.exists():
                if link.resolve() == Path(p).resolve():
                    continue
                link.unlink()
            link.symlink_to(Path(p).resolve())
        return dest

    def debs_dir(self) -> Path:
        """The Debian packages the roles install, as a repository the hosts install from (made once, cached)."""
        from appliance.providers.baremetal.debs import host_debs

        self.report("packages: making sure the hosts' Debian packages are cached (downloaded once)")
        return host_debs(report=self.report)

    def k8s_images_dir(self) -> Path:
        """Control-plane image archives for `kubeadm init` without a registry (built once, cached)."""
        from appliance.images.node import control_plane_archives

        self.report("images: making sure the control-plane image archives exist (built once)")
        return control_plane_archives(report=self.report)

    def defaults(self) -> dict[str, Any]:
        """Variables every host gets (the user's inventory overrides them)."""
        v: dict[str, Any] = {
            "appliance_cluster_name": self.cluster_name,
            "appliance_k8s_version": KUBERNETES,
            "appliance_offline": bool(self.bm.offline),
            "appliance_mig_profile": self.bm.mig_profile,
            "appliance_gpu_stack": self.bm.gpu_stack,
            # skips interpreter discovery on every host (one round trip less per run)
            "ansible_python_interpreter": "/usr/bin/python3",
        }
        images = getattr(self.spec, "images", None)
        if images is not None and node_mirrors(images):
            v["appliance_registry_mirrors"] = {h: [u] for h, u in node_mirrors(images).items()}
        return v

    def offline_default(self, var: str) -> bool:
        """Offline, and the user's hosts or inventory do not set `var`: the appliance provides it."""
        if not self.bm.offline:
            return False
        if any(var in h.vars for h in self.bm.hosts):
            return False
        inv = Path(self.bm.inventory).expanduser() if self.bm.inventory else None
        return not (inv and inv.is_file() and var in inv.read_text())

    def generate(self) -> dict[str, Any]:
        """The inventory (as YAML data) made from the profile's hosts."""
        if not self.bm.hosts:
            raise UserError("no hosts for the bare-metal provider", where="cluster.baremetal.hosts",
                            fix="list your servers under cluster.baremetal.hosts or set cluster.baremetal.inventory")
        groups: dict[str, dict] = {"control_plane": {"hosts": {}}, "workers": {"hosts": {}}}
        for h in self.bm.hosts:
            hv: dict[str, Any] = {"ansible_host": h.address, "ansible_user": h.user, "ansible_port": h.port}
            hv.update(h.vars)
            groups["control_plane" if h.role == "control-plane" else "workers"]["hosts"][h.name] = hv
        if not groups["control_plane"]["hosts"]:
            raise UserError("no control-plane host", where="cluster.baremetal.hosts",
                            fix="give one host role: control-plane")
        return {"all": {"vars": self.defaults(), "children": groups}}

    def offline_inputs(self) -> dict[str, str]:
        """The folders an offline converge takes from this host, made here where the inventory names none:
        the toolchain's kubelet, kubeadm and kubectl; the Debian packages the roles install; the control plane's
        image archives (hosts that init)."""
        out = {}
        if self.offline_default("appliance_k8s_binaries_dir"):
            out["appliance_k8s_binaries_dir"] = str(self.k8s_binaries_dir())
        if self.offline_default("appliance_debs_dir"):
            out["appliance_debs_dir"] = str(self.debs_dir())
        init = all(h.vars.get("appliance_kubeadm_init", True) for h in self.bm.hosts)
        if init and self.offline_default("appliance_k8s_images_dir"):
            images = self.k8s_images_dir()
            out["appliance_k8s_images_dir"] = str(images)
            if self.offline_default("appliance_cni_manifest"):
                out["appliance_cni_manifest"] = str(self.cni_manifest(images))
        return out

    def cni_manifest(self, images: Path) -> Path:
        """The appliance's own CNI for more than one host (the `cni` role applies it; one host uses a bridge),
        its agent's image among the control-plane archives `images`, the pod CIDR the hosts' (or the default)."""
        from appliance.images.node import cni_manifest

        ref = json.loads((images / ".complete").read_text())["appliance-cni"]
        cidr = next((h.vars["appliance_pod_cidr"] for h in self.bm.hosts if "appliance_pod_cidr" in h.vars), POD_CIDR)
        dest = self.state_dir / "cni.yaml"
        dest.write_text(cni_manifest(ref, cidr))
        return dest

    def write(self) -> list[str]:
        """Write the inventory file(s) under the state dir; returns the -i list for the run."""
        user_inv = Path(self.bm.inventory).expanduser() if self.bm.inventory else None
        if user_inv and not user_inv.exists():  # before the offline builds below, which take minutes cold
            raise UserError(f"inventory {user_inv} does not exist", where="cluster.baremetal.inventory",
                            fix="point cluster.baremetal.inventory at an Ansible inventory file")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        inv_dir = self.state_dir / "inventory"
        inv_dir.mkdir(exist_ok=True)
        defaults = {**self.defaults(), **self.offline_inputs()}
        if self.bm.inventory:
            base = inv_dir / "00-appliance-defaults.yml"
            base.write_text(yaml.safe_dump({"all": {"vars": defaults}}, sort_keys=False))
            return [str(base), str(user_inv.resolve())]
        data = self.generate()
        data["all"]["vars"] = defaults
        path = inv_dir / "hosts.yml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return [str(path)]
