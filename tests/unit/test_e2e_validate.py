"""`appliance e2e validate` and `e2e schema`: every problem of a scenario file as one line with its file:line, no cluster."""

import json
import subprocess
import sys

import pytest

from appliance import e2e
from appliance.e2e import scenario

GOOD = """\
name: good
components: [user-profiles]
steps:
  - name: make it
    apply: {file: job.yaml, as: user-alice/alice}
  - name: wait
    timeout: 30
    assert: {apiVersion: batch/v1, kind: Job, metadata: {name: x, namespace: user-alice}}
cleanup:
  - name: remove
    delete: {file: job.yaml}
"""

#: (what is wrong, the broken lines replacing GOOD's, the line the problem is on, what its line says)
BROKEN = [
    ("misspelt action", ("    apply: {file: job.yaml", "    aply: {file: job.yaml"), 5, "unknown field 'aply' — fix: did you mean 'apply'?"),
    ("two actions", ("    timeout: 30\n", "    timeout: 30\n    script: {run: 'true'}\n"), 6, "exactly one of build/apply/assert/error/access/script/delete"),
    ("negative timeout", ("timeout: 30", "timeout: -1"), 7, "greater than 0"),
    ("identity without a namespace", ("as: user-alice/alice", "as: alice"), 5, "should match pattern"),
    ("apply without objects", ("apply: {file: job.yaml, as: user-alice/alice}", "apply: {as: user-alice/alice}"), 5, "give `file:` or `objects:`"),
    ("unknown provider", ("components: [user-profiles]", "providers: [docker]\ncomponents: [user-profiles]"), 2, "providers.0"),
    ("unknown component", ("components: [user-profiles]", "components: [user-profile]"), 2, "did you mean 'user-profiles'?"),
    ("missing manifest", ("    delete: {file: job.yaml}", "    delete: {file: jobs.yaml}"), 11, "no file 'jobs.yaml' beside the scenario"),
    ("not YAML", ("    timeout: 30", "    timeout: [30"), 8, "not valid YAML"),
    ("no steps", ("steps:\n  - name: make it\n    apply: {file: job.yaml, as: user-alice/alice}\n  - name: wait\n    timeout: 30\n"
                  "    assert: {apiVersion: batch/v1, kind: Job, metadata: {name: x, namespace: user-alice}}\n", ""), 1, "required field 'steps'"),
]


def _write(folder, text: str, name: str = "s.yaml"):
    (folder / "job.yaml").write_text("apiVersion: batch/v1\nkind: Job\nmetadata: {name: x, namespace: user-alice}\n")
    (folder / name).write_text(text)
    return folder / name


def test_a_good_scenario_has_no_problems(tmp_path):
    assert e2e.validate([_write(tmp_path, GOOD)]) == []


@pytest.mark.parametrize("what,change,line,says", BROKEN, ids=[b[0] for b in BROKEN])
def test_each_problem_is_one_line_at_its_line(tmp_path, what, change, line, says):
    old, new = change
    assert old in GOOD
    path = _write(tmp_path, GOOD.replace(old, new))
    (problem,) = e2e.validate([path])
    assert problem.line().startswith(f"{path}:{line}"), problem.line()
    assert says in problem.line() and "\n" not in problem.line()


def test_a_file_that_is_not_text_is_one_problem(tmp_path):
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe\x00")
    (problem,) = e2e.validate(e2e.files_in([str(tmp_path)]))
    assert problem.line() == f"{tmp_path / 'binary.yaml'}: not UTF-8 text (byte 0) — fix: save it as UTF-8"


def test_every_problem_of_a_file_is_told(tmp_path):
    path = _write(tmp_path, GOOD.replace("timeout: 30", "timeout: -1").replace("as: user-alice/alice", "as: alice"))
    assert sorted(p.where.split(" ")[0] for p in e2e.validate([path])) == [f"{path}:5", f"{path}:7"]


def test_a_name_used_twice_in_a_folder(tmp_path):
    _write(tmp_path, GOOD, "a.yaml")
    _write(tmp_path, "# the same\n" + GOOD, "b.yaml")
    (problem,) = e2e.validate(e2e.files_in([str(tmp_path)]))
    assert problem.where == f"{tmp_path / 'b.yaml'}:2 (name)" and "taken by" in problem.what


def test_the_appliances_own_scenarios_validate():
    assert e2e.validate(e2e.files_in([])) == []


def _cli(*args):
    return subprocess.run([sys.executable, "-c", "from appliance.cli import run; run()", "e2e", *args], capture_output=True, text=True, timeout=60)


def test_the_command_lists_problems_and_exits_2(tmp_path):
    bad = _write(tmp_path, GOOD.replace("timeout: 30", "timeout: -1").replace("aply", "apply"))
    r = _cli("validate", str(tmp_path))
    assert r.returncode == 2 and r.stdout.splitlines()[0].startswith(f"{bad}:7") and "Traceback" not in r.stderr
    r = _cli("validate", str(tmp_path / "nowhere"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "no such scenario file or folder" in r.stderr
    bad.write_text(GOOD)
    r = _cli("validate", str(bad))
    assert r.returncode == 0 and "ok: 1 scenario file(s)" in r.stdout


def test_the_schema_describes_a_scenario():
    r = _cli("schema")
    schema = json.loads(r.stdout)
    assert r.returncode == 0 and schema["title"] == "appliance e2e scenario"
    assert set(schema["properties"]) == {"name", "description", "providers", "components", "steps", "cleanup"}
    assert "as" in schema["$defs"]["Apply"]["properties"] and "assert" in schema["$defs"]["ScenarioStep"]["properties"]
    assert schema == scenario.json_schema()
