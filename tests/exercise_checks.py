"""Run a lesson's own test cell (visible and hidden parts) against an answer we choose.

This is how the suite proves that the notebooks' tests can fail: each realistic wrong answer must be
rejected with an AssertionError, and the reference answer must pass.
"""
from __future__ import annotations

import functools
import re

import nbformat

from conftest import SOLUTIONS
from grading_helpers import grade_id, solution_answers

MAGIC = re.compile(r"^\s*[%!].*$", re.MULTILINE)


def _solution_notebook(lesson: str):
    return nbformat.read(next((SOLUTIONS / lesson).glob("*.ipynb")), as_version=4)


def _is_plain_cell(cell) -> bool:
    tags = cell.metadata.get("tags", [])
    return (cell.cell_type == "code" and "nbgrader" not in cell.metadata
            and "colab-setup" not in tags and "requires-exercise" not in tags)


@functools.lru_cache(maxsize=None)
def _prelude(lesson: str, test_id: str) -> dict:
    """The namespace a test cell sees: every plain cell above it, with the reference answers."""
    nb = _solution_notebook(lesson)
    answers = solution_answers(lesson)
    namespace: dict = {"__name__": "__main__"}
    for cell in nb.cells:
        if grade_id(cell) == test_id:
            return namespace
        if grade_id(cell) in answers:
            exec(answers[grade_id(cell)], namespace)
        elif _is_plain_cell(cell):
            exec(MAGIC.sub("", cell.source), namespace)
    raise KeyError(f"{lesson} has no test cell {test_id}")


def indented(body: str) -> str:
    """``body`` as an indented block (a function's or a loop's)."""
    return "\n".join("    " + line for line in body.strip().splitlines())


def function_answer(signature: str, body: str) -> str:
    """A learner's answer cell: the ``def ...:`` line ``signature`` with ``body`` indented under it."""
    return f"{signature}\n{indented(body)}"


def answer_cases(answers: dict[str, dict[str, str]]) -> list[tuple[str, str, str]]:
    """``{exercise: {name: body}}`` flattened into (exercise, name, body) rows for ``pytest.mark.parametrize``."""
    return [(exercise, name, body) for exercise, named in answers.items() for name, body in named.items()]


def test_source(lesson: str, test_id: str) -> str:
    return next(c.source for c in _solution_notebook(lesson).cells if grade_id(c) == test_id)


def run_tests_against(lesson: str, exercise: str, answer: str, test_id: str | None = None) -> None:
    """Define ``answer`` (source code) and run the exercise's test cell; raises what the tests raise."""
    test_id = test_id or f"{exercise}_tests"
    namespace = dict(_prelude(lesson, test_id))
    exec(answer, namespace)
    exec(test_source(lesson, test_id), namespace)


def assert_rejected(lesson: str, exercise: str, answer: str, test_id: str | None = None) -> None:
    """The exercise's test cell must reject ``answer`` with an AssertionError that says what to check."""
    try:
        run_tests_against(lesson, exercise, answer, test_id)
    except AssertionError as failure:
        assert str(failure).strip(), "the rejection must tell the learner what to check"
    else:
        raise AssertionError(f"the tests of {exercise} accepted a wrong answer:\n{answer}")
