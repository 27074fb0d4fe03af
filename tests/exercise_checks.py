"""Run a lesson's own test cell (visible and hidden parts) against an answer we choose.

This is how the suite proves that the notebooks' tests can fail: each realistic wrong answer must be
rejected with an AssertionError, and the reference answer must pass.
"""
from __future__ import annotations

import functools
import re

import nbformat

from conftest import lesson_notebook
from grading_helpers import grade_id, solution_answers

MAGIC = re.compile(r"^\s*[%!].*$", re.MULTILINE)


def _solution_notebook(lesson: str):
    return nbformat.read(lesson_notebook(lesson), as_version=4)


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


HIDDEN = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS.*?^[ \t]*### END HIDDEN TESTS[^\n]*\n?", re.MULTILINE | re.DOTALL)


def test_source(lesson: str, test_id: str, visible_only: bool = False) -> str:
    """A test cell's source; ``visible_only`` drops the hidden part, leaving what a student sees and runs."""
    source = next(c.source for c in _solution_notebook(lesson).cells if grade_id(c) == test_id)
    return HIDDEN.sub("", source) if visible_only else source


def run_tests_against(lesson: str, exercise: str, answer: str, test_id: str | None = None,
                      visible_only: bool = False) -> None:
    """Define ``answer`` (source code) and run the exercise's test cell; raises what the tests raise."""
    test_id = test_id or f"{exercise}_tests"
    namespace = dict(_prelude(lesson, test_id))
    exec(answer, namespace)
    exec(test_source(lesson, test_id, visible_only), namespace)


def assert_rejected(lesson: str, exercise: str, answer: str, test_id: str | None = None,
                    visible_only: bool = False, hint: str | None = None) -> str:
    """The exercise's test cell must reject ``answer`` with an AssertionError that says what to check.

    ``visible_only``: the visible tests alone must reject it (what a student sees before submitting).
    ``hint``: a phrase the message must contain (case-insensitive), so the hint points at the real bug.
    Returns the message.
    """
    try:
        run_tests_against(lesson, exercise, answer, test_id, visible_only)
    except AssertionError as failure:
        message = str(failure).strip()
        assert message, "the rejection must tell the learner what to check"
        assert len(message) <= 600, f"a rejection should be a short hint, not a dump ({len(message)} chars):\n{message}"
        if hint is not None:
            assert hint.lower() in message.lower(), f"the hint should mention {hint!r}; it says:\n{message}"
        return message
    raise AssertionError(f"the {'visible ' if visible_only else ''}tests of {exercise} "
                         f"accepted a wrong answer:\n{answer}")
