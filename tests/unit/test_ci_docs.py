"""docs/ci.md: its GitHub Actions and GitLab CI examples parse, do the steps the page promises, and every
`appliance` command they run is a command of this CLI with options it has."""

import re
import shlex
from pathlib import Path

import click
import pytest
import yaml

from appliance import cli

DOC = Path(__file__).resolve().parents[2] / "docs" / "ci.md"


def _examples() -> dict[str, dict]:
    """The page's YAML blocks by the heading above them."""
    text = DOC.read_text()
    blocks = {}
    for m in re.finditer(r"^```yaml\n(.*?)^```", text, re.MULTILINE | re.DOTALL):
        heading = re.findall(r"^## (.+)$", text[: m.start()], re.MULTILINE)[-1]
        blocks[heading] = yaml.safe_load(m.group(1))
    return blocks


def _github_commands(workflow: dict) -> list[str]:
    (job,) = workflow["jobs"].values()
    return [line for step in job["steps"] if "run" in step for line in step["run"].splitlines()]


def _gitlab_commands(pipeline: dict) -> list[str]:
    job = pipeline["e2e"]
    return [line for part in ("before_script", "script", "after_script") for line in job.get(part, [])]


def _appliance_calls(lines: list[str]) -> list[list[str]]:
    """Each `appliance ...` invocation in these shell lines (also inside `$(...)`, or run by sudo through
    `"$(command -v appliance)"`), as words; `pip install` lines name the package, not the program."""
    calls = []
    for line in lines:
        line = line.replace('"$(command -v appliance)"', "appliance")
        for m in re.finditer(r"(?:^|[\s(])appliance((?:\s+[^\s;&|)\"]+)*)", "" if line.startswith("pip ") else line):
            calls.append(["appliance", *shlex.split(m.group(1))])
    return calls


def _check(words: list[str]) -> None:
    """Walk the words through the click tree: each subcommand exists, each option belongs to its command."""
    cli._register_groups()
    command: click.Command = cli.main
    args = iter(words[1:])
    for word in args:
        if word.startswith("-"):
            name = word.split("=")[0]
            opt = next((p for p in command.params if isinstance(p, click.Option) and name in p.opts + p.secondary_opts), None)
            assert opt is not None or name in ("--help", "--version"), f"{' '.join(words)}: {command.name} has no option {name}"
            if opt is not None and not opt.is_flag and "=" not in word:
                next(args)
        elif isinstance(command, click.Group) and word in command.commands:
            command = command.commands[word]
        else:
            assert any(isinstance(p, click.Argument) for p in command.params), f"{' '.join(words)}: {command.name} takes no argument {word!r}"


@pytest.fixture(scope="module")
def examples():
    return _examples()


def test_both_examples_are_there(examples):
    assert set(examples) == {"GitHub Actions", "GitLab CI"}


@pytest.mark.parametrize("where, commands", [("GitHub Actions", _github_commands), ("GitLab CI", _gitlab_commands)])
def test_each_example_runs_real_appliance_commands_in_the_promised_order(examples, where, commands):
    calls = _appliance_calls(commands(examples[where]))
    for words in calls:
        _check(words)
    verbs = [" ".join(w[1:3]) if w[1] == "e2e" else w[1] for w in calls]
    order = ["--version", "e2e validate", "prebuild", "up", "e2e --profile", "down"]
    assert [v for v in verbs if v in order] == order, verbs
    run = next(w for w in calls if w[1:3] == ["e2e", "--profile"])
    assert "--scenarios" in run and run[run.index("--junit") + 1] == "reports/junit.xml"


def test_the_cache_is_keyed_by_version_profile_and_requirements_and_the_reports_kept_always(examples):
    gh = examples["GitHub Actions"]["jobs"]["e2e"]
    cache = next(s for s in gh["steps"] if s.get("uses", "").startswith("actions/cache"))
    assert "env.APPLIANCE_VERSION" in cache["with"]["key"] and "-ci-" in cache["with"]["key"] and "requirements.txt" in cache["with"]["key"]
    assert cache["with"]["key"].startswith(cache["with"]["restore-keys"])
    upload = next(s for s in gh["steps"] if s.get("uses", "").startswith("actions/upload-artifact"))
    down = next(s for s in gh["steps"] if "appliance down" in s.get("run", ""))
    assert upload["if"] == down["if"] == "always()" and "reports/report.html" in upload["with"]["path"]
    gl = examples["GitLab CI"]["e2e"]
    key = gl["cache"]["key"]
    assert "$APPLIANCE_VERSION" in key["prefix"] and "-ci-" in key["prefix"] and key["files"] == ["e2e/trainer/requirements.txt"]
    assert gl["variables"]["APPLIANCE_CACHE"].endswith(gl["cache"]["paths"][0].rstrip("/"))
    assert gl["artifacts"]["when"] == "always" and gl["artifacts"]["reports"]["junit"] == "reports/junit.xml"


def test_the_checker_catches_a_wrong_command():
    with pytest.raises(AssertionError, match="has no option --scenarioz"):
        _check(["appliance", "e2e", "--scenarioz", "e2e"])
    with pytest.raises(AssertionError, match="takes no argument 'validat'"):
        _check(["appliance", "e2e", "validat", "e2e"])
