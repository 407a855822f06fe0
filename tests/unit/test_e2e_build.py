"""A scenario's `build:` step without building: its schema and checks (one line at its line), the image it
declares (the project's files, the requirements), and `${images.NAME}` in later steps."""

import pytest

from appliance import e2e
from appliance.e2e import build, scenario
from appliance.e2e.lib import Failed
from appliance.e2e.runner import Runner

GOOD = """\
name: mine
steps:
  - name: build my trainer
    timeout: 600
    build: {name: my-trainer, context: trainer}
  - name: train
    apply: {file: job.yaml}
  - name: it ran my image
    script: {run: "echo ${images.my-trainer}"}
"""
JOB = "apiVersion: batch/v1\nkind: Job\nmetadata: {name: t, namespace: ns}\nspec: {template: {spec: {containers: [{name: c, image: '${images.my-trainer}'}]}}}\n"

#: (what is wrong, GOOD's text replaced, the line the problem is on, what its line says)
BROKEN = [
    ("a name no image may have", ("name: my-trainer,", "name: My_Trainer,"), 5, "build.name"),
    ("a misspelt key", ("context: trainer}", "contxt: trainer}"), 5, "did you mean 'context'?"),
    ("no such folder", ("context: trainer}", "context: trainr}"), 5, "no folder 'trainr' beside the scenario"),
    ("no requirements file", ("context: trainer}", "context: trainer, requirements: reqs.txt}"), 5, "no file 'reqs.txt' in 'trainer'"),
    ("an image no step built", ('"echo ${images.my-trainer}"', '"echo ${images.trainer}"'), 8,
     "${images.trainer}: no earlier step builds an image named 'trainer'"),
    ("an image used before it is built", ("steps:\n", "steps:\n  - {name: early, script: {run: 'echo ${images.my-trainer}'}}\n"), 3,
     "no earlier step builds an image named 'my-trainer'"),
]


def _project(folder, text: str = GOOD):
    (folder / "trainer").mkdir(exist_ok=True)
    (folder / "trainer" / "requirements.txt").write_text("numpy==2.1.3  # the image is cached by these lines\n")
    (folder / "trainer" / "train.py").write_text("import numpy\n")
    (folder / "job.yaml").write_text(JOB)
    (folder / "s.yaml").write_text(text)
    return folder / "s.yaml"


def test_a_build_step_and_its_image_used_later_validate(tmp_path):
    assert e2e.validate([_project(tmp_path)]) == []
    s = scenario.load(tmp_path / "s.yaml")
    assert s.steps[0].kind == "build" and s.steps[0].build.entrypoint == ["python3"]


@pytest.mark.parametrize("what,change,line,says", BROKEN, ids=[b[0] for b in BROKEN])
def test_a_broken_build_is_one_line_at_its_line(tmp_path, what, change, line, says):
    old, new = change
    assert old in GOOD
    path = _project(tmp_path, GOOD.replace(old, new))
    (problem,) = e2e.validate([path])
    assert problem.line().startswith(f"{path}:{line}"), problem.line()
    assert says in problem.line() and "\n" not in problem.line()


def test_a_pip_option_in_the_requirements_is_told_at_its_line(tmp_path):
    path = _project(tmp_path)
    (tmp_path / "trainer" / "requirements.txt").write_text("numpy==2.1.3\n--index-url https://example.org/simple\n")
    (problem,) = e2e.validate([path])
    assert problem.line().startswith(f"{tmp_path / 'trainer' / 'requirements.txt'}:2: ") and "pip option" in problem.line()


def test_the_schema_offers_the_build_step():
    props = scenario.json_schema()["$defs"]["Build"]["properties"]
    assert set(props) == {"name", "context", "requirements", "entrypoint"}


def test_the_image_holds_the_project_but_hidden_files_and_caches(tmp_path):
    _project(tmp_path)
    for junk in (".git/config", ".venv/lib/x.py", "pkg/__pycache__/m.pyc"):
        (tmp_path / "trainer" / junk).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "trainer" / junk).write_text("x")
    (tmp_path / "trainer" / "pkg" / "__init__.py").write_text("")
    s = scenario.load(tmp_path / "s.yaml")
    img = build.image(s.steps[0].build, tmp_path)
    assert dict(img.files).keys() == {"/app/requirements.txt", "/app/train.py", "/app/pkg/__init__.py"}
    assert img.repo == "appliance.local/e2e/my-trainer" and img.resolve and img.entrypoint == ("python3",)
    ref = img.ref()
    assert ref.startswith("appliance.local/e2e/my-trainer:") and build.image(s.steps[0].build, tmp_path).ref() == ref
    (tmp_path / "trainer" / "train.py").write_text("import numpy as np\n")
    assert build.image(s.steps[0].build, tmp_path).ref() != ref  # a changed file is a new image


def test_later_steps_get_the_built_images_reference(tmp_path):
    s = scenario.load(_project(tmp_path))
    runner = Runner(kube=None)
    runner.images = {"my-trainer": "appliance.local/e2e/my-trainer:0123"}
    (job,) = runner._objects(s.steps[1].apply, s)
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == "appliance.local/e2e/my-trainer:0123"
    assert runner._with_images({"a": ["${images.my-trainer}", 3]}) == {"a": ["appliance.local/e2e/my-trainer:0123", 3]}
    runner.images = {}
    with pytest.raises(Failed, match=r"\$\{images.my-trainer\}: no earlier build step of this scenario made an image of that name"):
        runner._objects(s.steps[1].apply, s)
    (job,) = runner._objects(s.steps[1].apply, s, strict=False)  # a cleanup's delete after a failed build
    assert job["metadata"]["name"] == "t"
