"""Run a lesson's own test cell (visible and hidden parts) against an answer we choose.

This is how the suite proves that the notebooks' tests can fail: each realistic wrong answer must be
rejected with an AssertionError, and the reference answer must pass.
"""
from __future__ import annotations

import ast
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


def signature(lesson: str, exercise: str) -> str:
    """The ``def ...:`` header of the exercise's solution cell, as the learner's stub has it."""
    source = solution_answers(lesson)[exercise]
    node = next(n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef) and n.name == exercise)
    return "\n".join(source.splitlines()[node.lineno - 1:node.body[0].lineno - 1]).rstrip()


def exercise_answer(lesson: str, exercise: str, body: str) -> str:
    """An answer cell: ``body`` under the exercise's own signature (a ``def exercise(...)`` is taken whole)."""
    whole = body.lstrip().startswith(f"def {exercise}(")
    return body if whole else function_answer(signature(lesson, exercise), body)


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


class LessonExerciseChecks:
    """The standard checks of one lesson's graded exercises against its own test cells.

    A lesson's test module declares them with its tables of answers, each a function body (put under the
    exercise's own signature) or a whole ``def``:

        class TestExercises(LessonExerciseChecks, lesson=LESSON, wrong_answers=...,
                            visible_wrong_answers=..., right_answers=...):

      wrong_answers          {exercise: {mistake: body}}: the whole test cell (what grading runs) rejects each
      visible_wrong_answers  {exercise: {mistake: (body, hint)}}: the VISIBLE tests alone reject each, with a
                             message containing ``hint`` (what a student sees before submitting)
      right_answers          {exercise: {name: body}}: other correct answers pass
    The reference answers are the solution cells; the exercises are ``wrong_answers``' keys.
    """

    def __init_subclass__(cls, lesson: str, wrong_answers=None, visible_wrong_answers=None, right_answers=None,
                          **kwargs):
        super().__init_subclass__(**kwargs)
        cls.lesson = lesson
        cls.wrong_answers = wrong_answers or {}
        cls.visible_wrong_answers = visible_wrong_answers or {}
        cls.right_answers = right_answers or {}

    def pytest_generate_tests(self, metafunc):
        """Parametrize each check below from the subclass's tables (pytest calls this per test method)."""
        names = metafunc.fixturenames
        if "hint" in names:
            rows = [(e, n, body, hint) for e, named in self.visible_wrong_answers.items()
                    for n, (body, hint) in named.items()]
            metafunc.parametrize("exercise,name,body,hint", rows, ids=[f"{e}: {n}" for e, n, _, _ in rows])
        elif "body" in names:
            table = self.right_answers if "correct" in metafunc.function.__name__ else self.wrong_answers
            rows = answer_cases(table)
            metafunc.parametrize("exercise,name,body", rows, ids=[f"{e}: {n}" for e, n, _ in rows])
        elif "exercise" in names:
            metafunc.parametrize("exercise", list(self.wrong_answers))

    def test_reference_answer_passes(self, exercise):
        run_tests_against(self.lesson, exercise, solution_answers(self.lesson)[exercise])

    def test_reference_answer_passes_the_visible_tests(self, exercise):
        run_tests_against(self.lesson, exercise, solution_answers(self.lesson)[exercise], visible_only=True)

    def test_other_correct_answer_passes(self, exercise, name, body):
        run_tests_against(self.lesson, exercise, exercise_answer(self.lesson, exercise, body))

    def test_wrong_answer_is_rejected(self, exercise, name, body):
        assert_rejected(self.lesson, exercise, exercise_answer(self.lesson, exercise, body))

    def test_visible_tests_reject_the_common_mistake_with_its_hint(self, exercise, name, body, hint):
        answer = exercise_answer(self.lesson, exercise, body)
        assert_rejected(self.lesson, exercise, answer, visible_only=True, hint=hint)
