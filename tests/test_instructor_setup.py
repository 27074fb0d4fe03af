"""An instructor's setup in one step: ``./course.sh instructor`` builds the instructor environment (no test suite
first), the README says which command builds which environment, the guide's commands are commands the autograder
takes, and a missing nbgrader names the set-up command."""
from __future__ import annotations

import builtins
import re
import shlex

import pytest

from ppo_course.autograder.commands import cli

from conftest import REPO


def code_lines(markdown: str) -> list[str]:
    """Every line inside a fenced code block."""
    return [line for block in re.findall(r"```[a-z]*\n(.*?)```", markdown, re.S) for line in block.splitlines()]


def test_the_readme_says_which_command_builds_which_environment():
    readme = (REPO / "README.md").read_text()
    setup = readme[readme.index("## Two commands"):readme.index("## Course map")]
    top = [line for line in code_lines(setup) if line.startswith("./course.sh")]
    assert [line.split()[1] for line in top] == ["lab", "test"], "the README's top keeps exactly two commands"
    for command, venv in (("`lab` builds", "`.venv`"), ("`test` builds", "`.venv-dev`"),
                          ("`./course.sh instructor`", "`.venv-instructor`")):
        sentence = setup[setup.index(command):][:200]
        assert venv in sentence, f"the set-up sentence must say that {command} ... {venv}: {sentence!r}"
    instructors = readme[readme.index("## For instructors"):readme.index("## For contributors")]
    assert code_lines(instructors)[0].split()[:2] == ["./course.sh", "instructor"], (
        "the instructor section starts with its one set-up line")


def test_course_script_offers_the_instructor_environment():
    script = (REPO / "course.sh").read_text()
    assert 'make_venv .venv-instructor "$INSTRUCTOR_EXTRAS"' in script
    assert re.search(r'INSTRUCTOR_EXTRAS="\[instructor,cluster\]"', script), (
        "the instructor environment holds what the guide's commands need (nbgrader, Dask), no test tools")


def guide_commands() -> list[list[str]]:
    """The autograder commands the instructor guide and the README show, as argument lists."""
    commands = []
    for doc in ("autograder/README.md", "README.md"):
        for line in code_lines((REPO / doc).read_text()):
            line = line.split("  #", 1)[0].strip()
            found = re.search(r"(?:python -m ppo_course\.autograder|ppo-autograder|course\.sh instructor) (\S.*)", line)
            if found:
                words = [w for w in shlex.split(found.group(1).replace("[", "").replace("]", "")) if w != "..."]
                commands.append([w.replace("~", "/home/someone") for w in words])
    return commands


def test_the_guides_commands_are_commands_the_autograder_takes():
    commands = guide_commands()
    assert len(commands) > 15, commands
    parser = cli.build_parser()
    for argv in commands:
        if argv[0] in ("COMMAND", "--help"):
            continue
        try:
            parser.parse_args(argv)
        except SystemExit as error:   # argparse's way to refuse
            pytest.fail(f"the guide shows a command the autograder refuses ({error}): {' '.join(argv)}")


def test_missing_nbgrader_names_the_readmes_setup_command(monkeypatch, capsys, tmp_path):
    real_import = builtins.__import__

    def no_nbgrader(name, *args, **kwargs):
        if name.split(".")[0] == "nbgrader":
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_nbgrader)
    assert cli.main(["release", "--dest", str(tmp_path / "lessons")]) == 2
    error = capsys.readouterr().err
    readme = (REPO / "README.md").read_text()
    setup = re.search(r"\./course\.sh instructor\b", readme)
    assert setup and "./course.sh instructor" in error and "Traceback" not in error, error
