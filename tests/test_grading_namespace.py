"""What a lesson must satisfy so that its tests can run in the grader while its answers run in the sandbox.

While grading, only the cells tagged ``setup``, the answer cells and the test cells run (the course's
``solutions/autograder.toml``): the tests in the grader's own namespace, built from the setup cells and the
learner's functions. The grader reads each test cell to decide where it can run; a cell that needs the
learner's namespace (a name only a teaching cell defines, ``del`` of a learner's function) would run in the
kernel, as stock nbgrader's do, and this course allows none.
"""
from __future__ import annotations

import nbformat
import pytest

from ppo_course.autograder.grading.contract import IN_GRADER, is_answer_cell, is_setup_cell, read_contract

from conftest import SOLUTIONS, lesson_notebook

LESSONS = sorted(p.name for p in SOLUTIONS.iterdir() if p.is_dir() and p.name[:2].isdigit())


def source_notebook(lesson: str):
    return nbformat.read(lesson_notebook(lesson), as_version=4)


@pytest.mark.parametrize("lesson", LESSONS)
def test_one_setup_cell_above_the_first_exercise(lesson):
    cells = source_notebook(lesson).cells
    setups = [i for i, c in enumerate(cells) if is_setup_cell(c)]
    first_answer = next(i for i, c in enumerate(cells) if is_answer_cell(c))
    assert len(setups) == 1 and setups[0] < first_answer, (
        f"{lesson}: tag the cell with the lesson's imports 'setup' (once, above the first exercise)")


@pytest.mark.parametrize("lesson", LESSONS)
def test_every_test_cell_runs_in_the_grader(lesson):
    """The grader decides by reading each test cell where it runs (``contract.where_it_runs``); this course
    keeps every test in the grader, where no trick in the learner's kernel can reach its verdict."""
    for notebook in read_contract(SOLUTIONS / lesson).notebooks:
        in_kernel = {t.grade_id: t.why for t in notebook.tests if t.runs_in != IN_GRADER}
        assert not in_kernel, (
            f"{lesson}: these test cells would run in the learner's kernel, not the grader: {in_kernel}. A test cell "
            "may use only what the setup cell binds, the exercises' functions, builtins and what test cells define "
            "(tests run in the grader, where only the setup cell runs), and must not delete or rebind the learner's "
            "functions")
