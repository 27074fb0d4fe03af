"""Students see a pass: each released test cell ends by printing that its visible tests passed.

The line is added at release (``grading.preprocessors.AnnounceVisiblePass``), after nbgrader's gradebook has
saved the course's own cells, so grading runs what it ran before, and before the checksums, so nbgrader's
``validate`` accepts the released cells as they are.
"""
from __future__ import annotations

import contextlib
import io
import json

import nbformat
import pytest

from ppo_course.autograder.commands.cli import main
from ppo_course.autograder.grading.contract import grade_id, is_test_cell, read_notebook_contract
from ppo_course.autograder.grading.preprocessors import pass_message

from conftest import LESSONS, SOLUTIONS, lesson_notebook, notebooks

LESSON_NAMES = [path.parent.name for path in notebooks(SOLUTIONS)]


@pytest.mark.parametrize("lesson", LESSON_NAMES)
def test_every_released_test_cell_ends_by_announcing_its_pass(lesson):
    source = nbformat.read(lesson_notebook(lesson), as_version=4)
    released = nbformat.read(lesson_notebook(lesson, LESSONS), as_version=4)
    exercise_of = {test: e.answer_id for e in read_notebook_contract(source, lesson).exercises for test in e.test_ids}
    tests = [c for c in released.cells if is_test_cell(c)]
    assert tests
    for cell in tests:
        exercise = exercise_of[grade_id(cell)]
        assert cell.source.rstrip().endswith(f"print({pass_message(exercise, True)!r})"), (
            f"{lesson}: the released {grade_id(cell)} must end by saying its visible tests pass (release again)")
    assert not any("visible tests pass" in c.source for c in source.cells), (
        "the line is the release's: the source notebook (and so the gradebook and the grading) never has it")


SOURCE_CELLS = [
    ("answer", "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION\n"),
    ("double_tests", "assert double(2) == 4, 'double(2) must be 4'\n### BEGIN HIDDEN TESTS\n"
                     "assert double(-3) == -6, 'negative numbers double too'\n### END HIDDEN TESTS\n"),
    ("only_hidden_tests", "### BEGIN HIDDEN TESTS\nassert double(0) == 0\n### END HIDDEN TESTS\n"),
    ("no_hidden_tests", "assert double(1) == 2, 'double(1) must be 2'"),
]


def tiny_course(root):
    """An nbgrader course of one assignment: one exercise, a test cell with hidden tests, one with only
    hidden tests, one with none."""
    cells = []
    for cell_id, source in SOURCE_CELLS:
        cell = nbformat.v4.new_code_cell(source)
        answer = cell_id == "answer"
        cell.metadata["nbgrader"] = {"grade": not answer, "solution": answer, "locked": not answer,
                                     "grade_id": "double" if answer else cell_id, "schema_version": 3,
                                     **({} if answer else {"points": 1})}
        cells.append(cell)
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    (root / "source" / "hw1").mkdir(parents=True)
    nbformat.write(notebook, root / "source" / "hw1" / "hw1.ipynb")
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["release", "--source", str(root / "source"), "--dest", str(root / "release")]) == 0
    return nbformat.read(root / "release" / "hw1" / "hw1.ipynb", as_version=4)


def run_test_cell(source: str, double) -> tuple[str, BaseException | None]:
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            exec(source, {"double": double})
    except AssertionError as error:
        return out.getvalue(), error
    return out.getvalue(), None


def test_the_line_prints_only_when_the_visible_tests_pass(tmp_path):
    released = {grade_id(c): c.source for c in tiny_course(tmp_path).cells}
    assert run_test_cell(released["double_tests"], lambda x: 2 * x) == (
        "double: visible tests pass; hidden tests run at grading\n", None)
    printed, failure = run_test_cell(released["double_tests"], lambda x: x + 2)   # wrong, but right at 2
    assert failure is None and "visible tests pass" in printed, "the visible check alone passes it"
    printed, failure = run_test_cell(released["double_tests"], lambda x: x)
    assert printed == "" and "double(2) must be 4" in str(failure), "a failing visible check prints no pass"
    assert run_test_cell(released["no_hidden_tests"], lambda x: 2 * x) == ("no_hidden_tests: tests pass\n", None), (
        "a test cell without hidden tests (named by its own id: no exercise claims it) says its tests pass")
    assert "print" not in released["only_hidden_tests"], "a cell whose tests are all hidden has nothing to announce"


@pytest.mark.slow   # starts a kernel
def test_nbgrader_validate_accepts_the_released_notebook(tmp_path):
    from nbgrader.validator import Validator

    released = tiny_course(tmp_path)
    for cell in released.cells:
        if grade_id(cell) == "double":
            cell.source = "def double(x):\n    return 2 * x\n"
    path = tmp_path / "submitted.ipynb"
    nbformat.write(released, path)
    result = Validator().validate(str(path))
    assert result == {}, f"nbgrader validate must find no changed test cell and no failure: {json.dumps(result)[:2000]}"
    nbformat.write(released, path)
    wrong = nbformat.read(path, as_version=4)
    next(c for c in wrong.cells if grade_id(c) == "double").source = "def double(x):\n    return x\n"
    nbformat.write(wrong, path)
    assert "failed" in Validator().validate(str(path)), "and must still fail a wrong answer"
