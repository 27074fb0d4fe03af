"""lessons/ is exactly what the release command generates from solutions/, and sources stay clean.

The release compared is the grading tests' shared one (conftest.RELEASE_CACHE): the same nbgrader
generate_assignment the release command runs (``commands.release.generate`` copies it), made once per run.
"""
from __future__ import annotations

import json

import nbformat
import pytest

from ppo_course.autograder.commands.release import generate
from ppo_course.autograder.grading.bundle import cached_release

from conftest import LESSONS, RELEASE_CACHE, SOLUTIONS, notebooks

pytestmark = pytest.mark.slow   # releases every lesson with nbgrader


def normalised(path):
    nb = json.loads(path.read_text())
    nb["metadata"].pop("language_info", None)  # depends on the machine that saved it
    return nb


def fresh_release(lesson: str):
    """Today's nbgrader release of ``lesson``: the one the grading tests share (the release command's own)."""
    return cached_release(lesson, SOLUTIONS, RELEASE_CACHE) / "release"


def test_every_source_lesson_is_released():
    assert sorted(p.name for p in SOLUTIONS.iterdir() if p.is_dir()) == \
        sorted(p.name for p in LESSONS.iterdir() if p.is_dir()), "lessons/ and solutions/ hold different lessons"


@pytest.mark.parametrize("notebook", notebooks(SOLUTIONS), ids=lambda p: p.parent.name)
def test_released_lesson_matches_a_fresh_release(notebook):
    lesson = notebook.parent.name
    fresh = fresh_release(lesson)
    committed = sorted(p.relative_to(LESSONS / lesson) for p in (LESSONS / lesson).rglob("*") if p.is_file())
    generated = sorted(p.relative_to(fresh / lesson) for p in (fresh / lesson).rglob("*") if p.is_file())
    assert committed == generated, "lessons/ holds different files than a release; run the release command"
    for relative in generated:
        new, old = fresh / lesson / relative, LESSONS / lesson / relative
        if relative.suffix == ".ipynb":
            assert normalised(old) == normalised(new), (
                f"lessons/{lesson}/{relative} is out of date: "
                f"run `python -m ppo_course.autograder release {lesson[:2]}`")
        else:
            assert old.read_bytes() == new.read_bytes(), f"lessons/{lesson}/{relative} is out of date"


def test_the_release_command_writes_that_release(tmp_path):
    lesson = "03-clipped-surrogate"
    generate(lesson, SOLUTIONS, tmp_path)
    fresh = fresh_release(lesson) / lesson
    assert sorted(p.name for p in (tmp_path / lesson).iterdir()) == sorted(p.name for p in fresh.iterdir())
    for path in fresh.iterdir():
        new = tmp_path / lesson / path.name
        assert (normalised(new) if path.suffix == ".ipynb" else new.read_bytes()) == (
            normalised(path) if path.suffix == ".ipynb" else path.read_bytes()), path.name


@pytest.mark.parametrize("notebook", notebooks(SOLUTIONS), ids=lambda p: p.parent.name)
def test_source_notebook_is_committed_without_outputs(notebook):
    nb = nbformat.read(notebook, as_version=4)
    with_outputs = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not with_outputs, f"clear the outputs of cells {with_outputs} in {notebook.name}"


@pytest.mark.parametrize("notebook", notebooks(LESSONS), ids=lambda p: p.parent.name)
def test_student_notebook_hides_solutions_and_hidden_tests(notebook):
    text = notebook.read_text()
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert marker not in text, f"{notebook.name} leaks '{marker}'"


@pytest.mark.parametrize("notebook", notebooks(LESSONS), ids=lambda p: p.parent.name)
def test_every_stub_names_its_exercise(notebook):
    """A learner who runs a test before writing the exercise reads which exercise and what to do."""
    from ppo_course.autograder.grading.preprocessors import stub_message

    nb = nbformat.read(notebook, as_version=4)
    answers = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]
    assert answers, f"{notebook.name} has no exercise"
    for cell in answers:
        exercise = cell.metadata["nbgrader"]["grade_id"]
        assert f"raise NotImplementedError({stub_message(exercise)!r})" in cell.source, (
            f"the stub of {exercise} does not name it: release the lesson again")
