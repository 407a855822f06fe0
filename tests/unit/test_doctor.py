"""Host probe and doctor: no NVML, NVML mocked as a DGX (8×H100), capability and budget checks."""

import sys
import types
from pathlib import Path

from appliance import components, doctor, host, prereqs, profiles, providers


def fake_nvml(n=8, name="NVIDIA H100 80GB HBM3", mig=(0, 0), fail_init=None):
    """A stand-in for nvidia-ml-py with `n` GPUs (NVML itself is absent on this host)."""
    m = types.ModuleType("pynvml")

    class NVMLError(Exception):
        pass

    m.NVMLError = NVMLError

    def init():
        if fail_init:
            raise NVMLError(fail_init)

    m.nvmlInit = init
    m.nvmlShutdown = lambda: None
    m.nvmlSystemGetDriverVersion = lambda: "550.90.07"
    m.nvmlSystemGetCudaDriverVersion = lambda: 12040
    m.nvmlDeviceGetCount = lambda: n
    m.nvmlDeviceGetHandleByIndex = lambda i: i
    m.nvmlDeviceGetName = lambda h: name
    m.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(total=81559 * 2**20)
    m.nvmlDeviceGetMigMode = lambda h: mig
    m.nvmlDeviceGetUUID = lambda h: f"GPU-{h:08d}"
    return m


def facts(monkeypatch, nvml):
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    return host.facts(Path("/tmp"))


def by_name(checks):
    return {c.name: c for c in checks}


def test_dgx_with_eight_h100(monkeypatch):
    f = facts(monkeypatch, fake_nvml(mig=(1, 1)))
    g = f["gpus"]
    assert g["nvml"] and len(g["gpus"]) == 8 and g["driver"] == "550.90.07" and g["cuda_driver"] == "12.4"
    assert g["gpus"][0]["memory_mib"] == 81559 and g["gpus"][7]["mig_mode"] == "enabled"
    c = by_name(doctor.host_checks(f, "baremetal"))["gpus"]
    assert c.status == "pass" and "8× NVIDIA H100 80GB HBM3" in c.detail and "MIG enabled on 8" in c.detail


def test_no_nvml_is_reported_not_fatal(monkeypatch):
    f = facts(monkeypatch, fake_nvml(fail_init="NVML Shared Library Not Found"))
    assert f["gpus"]["nvml"] is False
    c = by_name(doctor.host_checks(f, "kind"))["gpus"]
    assert c.status == "pass" and "no NVIDIA GPU" in c.detail and "Library Not Found" in c.detail


def test_nvml_without_gpus_warns(monkeypatch):
    c = by_name(doctor.host_checks(facts(monkeypatch, fake_nvml(n=0)), "kind"))["gpus"]
    assert c.status == "warn" and c.fix


def base_facts(**over):
    f = {
        "cpus": 2, "memory_mib": 24000, "memory_available_mib": 20000, "disk_free_gib": 50.0, "disk_path": "/",
        "cgroup_version": 1, "caps": {"CAP_NET_ADMIN": True, "CAP_SYS_ADMIN": True, "CAP_SYS_RESOURCE": False},
        "kernel": {"overlay": "/proc/filesystems (overlay)", "br_netfilter": "/proc/sys/net/bridge/bridge-nf-call-iptables",
                   "iptables": "/proc/net/ip_tables_names", "nf_conntrack": "/proc/sys/net/netfilter/nf_conntrack_max"},
        "inotify": {"max_user_watches": 8192, "max_user_instances": 128},
        "docker": {"client": True, "daemon": True, "version": "20.10", "error": "", "runtimes": ["runc"], "default_runtime": "runc"},
        "go": "/usr/bin/go", "gpus": {"nvml": False, "error": "absent", "gpus": []},
    }
    f.update(over)
    return f


def test_missing_sys_resource_fails_kind_with_fix_and_passes_when_wrapped():
    c = by_name(doctor.host_checks(base_facts(), "kind"))
    assert c["capabilities"].status == "fail" and "runc wrapper" in c["capabilities"].fix
    assert c["inotify"].status == "warn" and "max_user_watches=524288" in c["inotify"].fix
    wrapped = base_facts(docker={**base_facts()["docker"], "default_runtime": "runc-nosysres"})
    assert by_name(doctor.host_checks(wrapped, "kind"))["capabilities"].status == "pass"
    assert by_name(doctor.host_checks(base_facts(), "sim"))["capabilities"].status == "pass"


def test_no_docker_fails_only_for_kind():
    f = base_facts(docker={"client": True, "daemon": False, "version": "", "error": "Cannot connect", "runtimes": []})
    assert by_name(doctor.host_checks(f, "kind"))["docker"].status == "fail"
    assert by_name(doctor.host_checks(f, "sim"))["docker"].status == "warn"


def test_every_check_has_status_and_non_pass_has_fix():
    for c in doctor.host_checks(base_facts(kernel={**base_facts()["kernel"], "overlay": ""}), "kind"):
        assert c.status in ("pass", "warn", "fail")
        if c.status != "pass":
            assert c.fix, c


def fake_root(tmp_path, *files, modules=None):
    """A /proc and /sys tree under tmp_path with `files` present; /proc/modules only when `modules` is given."""
    for f in files:
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_text("0\n")
    (tmp_path / "proc").mkdir(exist_ok=True)
    (tmp_path / "proc/filesystems").write_text("nodev\tsysfs\nnodev\tproc\n")
    if modules is not None:
        (tmp_path / "proc/modules").write_text("".join(f"{m} 16384 0 - Live 0x0000000000000000\n" for m in modules))
    return tmp_path


def test_kernel_built_in_is_found_by_function(tmp_path):
    """No /proc/modules and no /sys/module entries (the reported host): the sysctl and proc paths prove it."""
    root = fake_root(tmp_path, "proc/sys/net/bridge/bridge-nf-call-iptables", "proc/net/ip_tables_names",
                     "proc/sys/net/netfilter/nf_conntrack_max", "sys/module/overlay/parameters/metacopy")
    k = host.kernel_features(root)
    assert all(k.values()) and k["br_netfilter"] == "/proc/sys/net/bridge/bridge-nf-call-iptables"
    f = base_facts(kernel=k)
    assert by_name(doctor.host_checks(f, "kind"))["kernel-modules"].status == "pass"


def test_kernel_loadable_modules_loaded(tmp_path):
    root = fake_root(tmp_path, "sys/module/br_netfilter/refcnt", modules=["overlay", "nf_tables", "nf_conntrack"])
    k = host.kernel_features(root)
    assert k == {"overlay": "/proc/modules (overlay)", "br_netfilter": "/sys/module/br_netfilter",
                 "iptables": "/proc/modules (nf_tables)", "nf_conntrack": "/proc/modules (nf_conntrack)"}


def test_kernel_missing_fails_with_the_modules_to_load(tmp_path):
    root = fake_root(tmp_path, "sys/module/overlay/refcnt", modules=["overlay"])
    k = host.kernel_features(root)
    assert k["overlay"] and not k["br_netfilter"] and not k["iptables"] and not k["nf_conntrack"]
    c = by_name(doctor.host_checks(base_facts(kernel=k), "kind"))["kernel-modules"]
    assert c.status == "fail" and c.detail.startswith("missing: br_netfilter, iptables, nf_conntrack")
    assert c.fix == "modprobe br_netfilter ip_tables nf_conntrack"
    assert by_name(doctor.host_checks(base_facts(kernel=k), "sim"))["kernel-modules"].status == "warn"
    no_iptables = base_facts(kernel={**base_facts()["kernel"], "iptables": ""})
    assert by_name(doctor.host_checks(no_iptables, "kind"))["kernel-modules"].status == "warn"


def test_budget_sums_requests_and_fails_on_small_host():
    p = profiles.load("ci").profile
    cpu_m, _ = providers.get("kind").footprint(p.cluster)
    cpu_m += sum(c.requests().cpu_m for c in components.enabled(p).values())
    ok = doctor.budget(p, "kind", base_facts())
    assert ok.status == "pass" and f"needs {cpu_m / 1000:.2f} CPU" in ok.detail and cpu_m > 1000
    tiny = doctor.budget(p, "kind", base_facts(cpus=1, memory_mib=1024, memory_available_mib=512))
    assert tiny.status == "fail" and tiny.fix


def test_real_host_probe_reads():
    f = host.facts(Path("/tmp"))
    assert f["cpus"] >= 1 and f["cgroup_version"] in (1, 2) and set(f["caps"]) == set(host.CAPS)


def test_images_check_says_where_images_come_from():
    p = profiles.load("laptop", ["cluster.images.source=local"], "kind").profile
    c = doctor.images(p, "kind", {"go": ""})
    assert c.status == "fail" and "no Go toolchain" in c.detail and "mirrors" in c.fix
    assert doctor.images(p, "kind", {"go": "/usr/bin/go"}).status == "pass"
    up = doctor.images(profiles.load("laptop", ["cluster.images.source=upstream"], "kind").profile, "kind", {"go": ""})
    assert up.status == "pass" and up.detail.startswith("upstream")
    sim = profiles.load("laptop", [], "sim").profile  # host-process operator, no KServe: nothing to deliver
    assert doctor.images(sim, "sim", {"go": ""}).detail == "no component image to deliver"


def test_host_programs_fail_when_the_plan_needs_them(monkeypatch, tmp_path):
    monkeypatch.setenv("APPLIANCE_CACHE", str(tmp_path))  # nothing cached: the node image and stub images get built
    monkeypatch.setattr(prereqs.shutil, "which", lambda name: None)
    p = profiles.load("laptop", [], "kind").profile
    c = doctor.host_programs(p, "kind")
    assert c.status == "fail" and "debootstrap" in c.detail and "gcc" in c.detail and "make host-setup" in c.fix
    assert doctor.host_programs(profiles.load("laptop", [], "sim").profile, "sim").status == "pass"
