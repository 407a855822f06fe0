"""A component's declaration (component.yaml): typed, a typo refused in every section with its file:line,
hooks checked at load, the guide's worked example loading as written."""

import re
import types
from pathlib import Path

import pytest

from appliance.components import decl, kit
from appliance.errors import UserError

BASE = """\
name: demo-app
options:
  mode: {enum: [fast, safe], default: safe}
images:
  ctl:
    upstream: docker.io/example/ctl:v1
    go: {module: example.com/ctl, version: v1, package: cmd/ctl, path: /ctl}
  svc:
    python: {repo: appliance.local/svc, requirements: r.lock, entrypoint: [python3], npm: {package: p, path: /opt}}
    when: options.mode == "fast"
ports: {web: 8080}
"""

# one row per section: (what, text added to BASE, the unknown key, its path, the key it was meant to be)
TYPOS = [
    ("top level", "descripton: x\n", "descripton", "descripton", "description"),
    ("depends", "depend: [platform-base]\n", "depend", "depend", "depends"),
    ("needs_pods", "needs_pod: why\n", "needs_pod", "needs_pod", "needs_pods"),
    ("options", "options:\n  n: {tpye: integer}\n", "tpye", "options.n.tpye", "type"),
    ("images.upstream", "images:\n  x:\n    upstrem: a:1\n    go: {module: m, version: v, package: p}\n", "upstrem", "images.x.upstrem", "upstream"),
    ("images.go", "images:\n  x:\n    go: {modul: m, module: m, version: v, package: p}\n", "modul", "images.x.go.modul", "module"),
    ("images.python", "images:\n  x:\n    python: {repo: r, requirements: q, entrypiont: [a], entrypoint: [a]}\n",
     "entrypiont", "images.x.python.entrypiont", "entrypoint"),
    ("images.python.npm", "images:\n  x:\n    python: {repo: r, requirements: q, entrypoint: [a], npm: {pakage: p, package: p, path: /o}}\n",
     "pakage", "images.x.python.npm.pakage", "package"),
    ("images.hook", "images:\n  x:\n    hoook: image\n    go: {module: m, version: v, package: p}\n", "hoook", "images.x.hoook", "hook"),
    ("images.when", "images:\n  x:\n    wehn: 'false'\n    go: {module: m, version: v, package: p}\n", "wehn", "images.x.wehn", "when"),
    ("images.aliases", "images:\n  x:\n    aliasses: [a]\n    go: {module: m, version: v, package: p}\n", "aliasses", "images.x.aliasses", "aliases"),
    ("crds", "crds: {module: m, version: v, pathes: [a], paths: [a]}\n", "pathes", "crds.pathes", "paths"),
    ("certificate", "certificate: {secret: s, servce: x, service: x, namespace: n}\n", "servce", "certificate.servce", "service"),
    ("host", "host:\n  - deployment: ctl\n    image: ctl\n    unprivilged: true\n", "unprivilged", "host.0.unprivilged", "unprivileged"),
    ("host.routes", "host:\n  - deployment: ctl\n    image: ctl\n    route: {'a:1': web}\n", "route", "host.0.route", "routes"),
    ("host paths", "host:\n  - deployment: ctl\n    image: ctl\n    private_path: [/tmp/x]\n", "private_path", "host.0.private_path", "private_paths"),
    ("ports", "port: {web: 8080}\n", "port", "port", "ports"),
    ("access", "access:\n  - {group: g, resources: [a], reed: [b]}\n", "reed", "access.0.reed", "read"),
    ("rights", "rights:\n  - {account: a, right: pods-exec, where: own, reson: r, reason: r}\n", "reson", "rights.0.reson", "reason"),
]


def _load(tmp_path, text: str):
    path = tmp_path / "component.yaml"
    path.write_text(text)
    return decl.load(path)


def test_the_base_declaration_loads_typed(tmp_path):
    d, origins = _load(tmp_path, BASE + "host: {deployment: ctl, image: ctl}\n")
    assert d.images["ctl"].go.path == "/ctl" and d.images["svc"].python.npm.path == "/opt" and d.ports == {"web": 8080}
    assert [h.workload for h in d.host] == ["ctl"]  # one mapping is a list of one
    assert d.options["mode"].enum == ["fast", "safe"] and origins[("images", "svc")].endswith("component.yaml:8")


@pytest.mark.parametrize("section, extra, key, loc, meant", TYPOS, ids=[t[0] for t in TYPOS])
def test_a_typo_is_refused_in_every_section(tmp_path, section, extra, key, loc, meant):
    # a later section replaces BASE's of the same name (YAML keeps the last key)
    text = BASE + extra
    with pytest.raises(UserError) as e:
        _load(tmp_path, text)
    line = text.splitlines().index(next(x for x in text.splitlines() if re.search(rf"\b{key}\b", x))) + 1
    assert e.value.where == f"{tmp_path / 'component.yaml'}:{line} ({loc})"
    assert e.value.what == f"unknown field '{key}'" and e.value.fix == f"did you mean '{meant}'?"


@pytest.mark.parametrize("extra, what", [
    ("ports: {web: 80x}\n", "valid integer"),
    ("images:\n  x: {upstream: a:1}\n", "built from `go:` or `python:`"),
    ("images:\n  x: {hook: image, python: {repo: r, requirements: q, entrypoint: [a]}}\n", "builds from the image's `go:`"),
    ("host: {deployment: a, statefulset: b, image: ctl}\n", "one `deployment:` or one `statefulset:`"),
    ("host: {deployment: a, image: ctl, module: m}\n", "one `image:`"),
    ("host: {deployment: a, image: nope}\n", "names image 'nope'"),
    ("options:\n  n: {type: integr}\n", "'string', 'integer', 'boolean' or 'number'"),
    ("data: {holds: buckets, fixed: [nmespace]}\n", "`data.fixed` names option 'nmespace'"),
    ("access:\n  - {group: g.io, resources: [runs], records: [run]}\n", "`records` names kinds `resources` does not list: run"),
])
def test_a_wrong_value_is_one_line(tmp_path, extra, what):
    with pytest.raises(UserError, match=re.escape(what)) as e:
        _load(tmp_path, BASE + extra)
    assert str(tmp_path / "component.yaml") in e.value.where and e.value.fix


def _hooks(tmp_path, src: str) -> types.ModuleType:
    mod = types.ModuleType("demo_hooks")
    exec(compile(src, str(tmp_path / "hooks.py"), "exec"), mod.__dict__)
    return mod


def test_hooks_are_checked_against_the_declaration(tmp_path):
    d, origins = _load(tmp_path, BASE + "images:\n  x: {hook: build_x, go: {module: m, version: v, package: p}}\n")
    path = tmp_path / "component.yaml"
    decl.check_hooks(d, origins, _hooks(tmp_path, "def build_x(go): pass\ndef context(o, k): pass\ndef _users(kube): pass\n"), path)
    with pytest.raises(UserError, match="hooks.py has no function 'build_x'") as e:
        decl.check_hooks(d, origins, _hooks(tmp_path, "def buildx(go): pass\n"), path)
    assert e.value.where == f"{path}:{len(BASE.splitlines()) + 2} (images.x.hook)"
    with pytest.raises(UserError, match="no function 'build_x'"):
        decl.check_hooks(d, origins, None, path)  # no hooks.py at all


IMPORTED = "from os.path import join\nfrom appliance.kube import secret_data\n"

#: (hooks.py, the line refused or None, the fix it starts with): each public function is a hook the kit calls
#: or the builder an image's `hook:` names; a helper starts with `_`; what hooks.py imports is not its own
HOOK_RULES = [
    ("every known hook", "".join(f"def {h}(*a): pass\n" for h in decl.HOOKS) + "def build_x(go): pass\n", None, ""),
    ("helpers with _", "def build_x(go): pass\ndef _helper(): pass\n_table = lambda: 1\n", None, ""),
    ("imported functions", IMPORTED + "def build_x(go): pass\n", None, ""),
    ("a typo of a hook", "def build_x(go): pass\n\ndef after_aply(o, k): pass\n", ("after_aply", 3), "did you mean 'after_apply'? known hooks: check"),
    ("a public helper", "def build_x(go): pass\ndef users(kube): pass\n", ("users", 2), "known hooks: check,"),
    ("a public lambda", "def build_x(go): pass\nusers = lambda kube: []\n", ("users", 2), "known hooks: check,"),
    ("the first of two", "def build_x(go): pass\ndef zeta(): pass\ndef alpha(): pass\n", ("zeta", 2), "known hooks:"),
    ("a typo of an image's hook", "def build_x(go): pass\ndef build_y(go): pass\n", ("build_y", 2), "did you mean 'build_x'?"),
]


@pytest.mark.parametrize("src, refused, fix", [r[1:] for r in HOOK_RULES], ids=[r[0] for r in HOOK_RULES])
def test_a_public_function_of_hooks_py_is_a_hook(tmp_path, src, refused, fix):
    d, origins = _load(tmp_path, BASE + "images:\n  x: {hook: build_x, go: {module: m, version: v, package: p}}\n")
    hooks = _hooks(tmp_path, src)
    if refused is None:
        decl.check_hooks(d, origins, hooks, tmp_path / "component.yaml")
        return
    with pytest.raises(UserError) as e:
        decl.check_hooks(d, origins, hooks, tmp_path / "component.yaml")
    name, line = refused
    assert e.value.line() == (f"{tmp_path / 'hooks.py'}:{line}: function {name} is no hook — fix: {e.value.fix}")
    assert e.value.fix.startswith(fix) and e.value.fix.endswith(f"known hooks: {', '.join([*decl.HOOKS, 'build_x'])}; prefix helpers with _")


def test_the_shipped_hooks_define_hooks_only():
    """Every component's hooks.py passes the check (the catalog loads it), and defines at least one hook."""
    from appliance.components import CATALOG

    for name, comp in CATALOG.items():
        if comp.hooks is not None:
            known = {*decl.HOOKS, *(i.hook for i in comp.decl.images.values() if i.hook)}
            public = {n for n, f in vars(comp.hooks).items() if callable(f) and getattr(f, "__module__", "") == comp.hooks.__name__ and not n.startswith("_")}
            assert public and public <= known, name


def test_image_hooks_get_their_go_declaration():
    from appliance.components import CATALOG

    for name, image in (("network-policy", "kube-network-policies"), ("pipelines", "argoexec")):
        (built,) = [i for i in CATALOG[name]({}).images() if i.name == image]
        assert built.build.args == (CATALOG[name].decl.images[image].go,)


GUIDE = Path(__file__).resolve().parents[2] / "docs" / "components.md"


def test_the_guide_example_loads_as_written(tmp_path):
    """docs/components.md's `hello-api` (its files from the guide's code blocks) loads and renders; its
    `images:` example is a valid declaration too."""
    guide = GUIDE.read_text()
    folder = tmp_path / "hello_api"
    for name, body in re.findall(r"^`((?:manifests/)?[\w.-]+\.yaml)`:\n\n```yaml\n(.*?)```", guide, re.S | re.M):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(body)
    assert sorted(p.name for p in folder.rglob("*.yaml")) == ["10-namespace.yaml", "20-deployment.yaml", "component.yaml"]
    comp = kit.load(folder)({"replicas": 2, "greeting": "hi"})
    assert comp.requests() == kit.Resources(20, 64)
    assert [o["kind"] for o in comp.objects()] == ["Namespace", "Deployment", "ClusterRole", "ClusterRole"]
    (images,) = re.findall(r"^```yaml\n(images:\n.*?)```", guide, re.S | re.M)
    _load(tmp_path, "name: x\n" + images)


def test_no_pod_probes_by_exec_once_started():
    """An exec probe starts a process in the container each period (a runtime exec: runc, the shim) for the pod's
    whole life; only a startupProbe, which stops at the first success, may exec (the database's pg_isready)."""
    from appliance.components import CATALOG

    probes = {}
    for name, comp in CATALOG.items():
        for o in comp().objects(crds=False):
            pod = ((o.get("spec") or {}).get("template") or {}).get("spec") or {}
            for c in pod.get("containers", []) + pod.get("initContainers", []):
                probes |= {(name, c["name"], k): next(iter(c[k])) for k in ("readinessProbe", "livenessProbe", "startupProbe") if k in c}
    assert len(probes) > 20
    assert {k: how for k, how in probes.items() if how == "exec"} == {("database", "postgres", "startupProbe"): "exec"}
