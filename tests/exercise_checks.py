"""Run a lesson's own test cell (visible and hidden parts) against an answer we choose.

This is how the suite proves that the notebooks' tests can fail: each realistic wrong answer must be
rejected with an AssertionError, and the reference answer must pass.

The answers are data, one file per lesson: ``tests/answers/<lesson folder>.toml``. Per graded exercise it
lists ``[[EXERCISE.wrong]]`` entries (``mistake``, an optional ``hint``) and ``[[EXERCISE.right]]`` entries
(``name``), each answer given as exactly one of

    body = "..."                 a function body, put under the solution cell's own signature
                                 (or a whole ``def EXERCISE(...)``)
    replace = [[old, new], ...]  the solution cell itself with each ``old`` replaced by ``new`` in turn;
                                 each ``old`` must occur exactly once at its turn, so a mutant of the
                                 reference can never silently become the reference

Every wrong answer must be rejected by the whole test cell (what grading runs); one with a ``hint`` must
also be rejected by the VISIBLE tests alone, with a message containing the hint. Every right answer must
pass. ``lesson_answers`` reads a file, with a one-line ``AnswerFileError`` for a malformed one.
"""
from __future__ import annotations

import ast
import functools
import re
import tomllib
from pathlib import Path
from typing import NamedTuple

import nbformat

from conftest import REPO, lesson_notebook
from grading_helpers import grade_id, solution_answers

MAGIC = re.compile(r"^\s*[%!].*$", re.MULTILINE)
ANSWERS = Path(__file__).resolve().parent / "answers"


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


@functools.lru_cache(maxsize=None)
def _solution_answers(lesson: str) -> dict[str, str]:
    """``solution_answers``, read once per lesson (do not modify the dict)."""
    return solution_answers(lesson)


def signature(lesson: str, exercise: str) -> str:
    """The ``def ...:`` header of the exercise's solution cell, as the learner's stub has it."""
    source = _solution_answers(lesson)[exercise]
    node = next(n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef) and n.name == exercise)
    return "\n".join(source.splitlines()[node.lineno - 1:node.body[0].lineno - 1]).rstrip()


def exercise_answer(lesson: str, exercise: str, body: str) -> str:
    """An answer cell: ``body`` under the exercise's own signature (a ``def exercise(...)`` is taken whole)."""
    whole = body.lstrip().startswith(f"def {exercise}(")
    return body if whole else function_answer(signature(lesson, exercise), body)


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


class AnswerFileError(ValueError):
    """A malformed answers file; the message is one line naming the file, and the exercise and entry."""


class LessonAnswers(NamedTuple):
    """A lesson's answers as whole answer cells, keyed by exercise, then by mistake or name."""
    wrong: dict[str, dict[str, str]]                     # the whole test cell must reject each
    visible_wrong: dict[str, dict[str, tuple[str, str]]]  # (answer, hint): the visible tests alone reject each
    right: dict[str, dict[str, str]]                     # the whole test cell must pass each


ENTRY_FIELDS = {"wrong": ("mistake", {"mistake", "hint", "body", "replace"}),
                "right": ("name", {"name", "body", "replace"})}


def answers_file(lesson: str) -> Path:
    return ANSWERS / f"{lesson}.toml"


def with_replacements(source: str, replace) -> str:
    """``source`` with each ``[old, new]`` of ``replace`` applied in turn; each ``old`` must occur exactly once."""
    if not isinstance(replace, list) or not replace:
        raise ValueError("replace must be a non-empty list of [old, new] pairs")
    for pair in replace:
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(s, str) for s in pair)):
            raise ValueError(f"replace: {pair!r} is not an [old, new] pair of strings")
        old, new = pair
        if old == new:
            raise ValueError(f"replace: {old!r} is replaced by itself")
        count = source.count(old)
        if count != 1:
            where = "not found in" if count == 0 else f"found {count} times in"
            raise ValueError(f"replace: {old!r} {where} the solution cell (after the replacements before it)")
        source = source.replace(old, new)
    return source


def _answer(lesson: str, exercise: str, entry: dict, kind: str) -> tuple[str, str]:
    """(label, answer cell) of one entry; ValueError (one line, without the file) if it is malformed."""
    label_field, fields = ENTRY_FIELDS[kind]
    if not isinstance(entry, dict):
        raise ValueError(f"{exercise}.{kind}: an entry is not a table")
    label = entry.get(label_field)
    if not isinstance(label, str) or not label.strip():
        raise ValueError(f"{exercise}.{kind}: an entry has no {label_field} (a non-empty string)")
    where = f"{exercise}.{kind} {label!r}"
    unknown = sorted(set(entry) - fields)
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)} (allowed: {', '.join(sorted(fields))})")
    if ("body" in entry) == ("replace" in entry):
        raise ValueError(f"{where}: give exactly one of body and replace")
    if "hint" in entry and (not isinstance(entry["hint"], str) or not entry["hint"].strip()):
        raise ValueError(f"{where}: hint must be a non-empty string")
    if "body" in entry:
        if not isinstance(entry["body"], str) or not entry["body"].strip():
            raise ValueError(f"{where}: body must be a non-empty string")
        return label, exercise_answer(lesson, exercise, entry["body"])
    reference = _solution_answers(lesson)[exercise]
    try:
        answer = with_replacements(reference, entry["replace"])
    except ValueError as problem:
        raise ValueError(f"{where}: {problem}") from None
    if answer == reference:
        raise ValueError(f"{where}: the replacements give back the solution cell")
    return label, answer


def parse_answers(lesson: str, text: str) -> LessonAnswers:
    """The answers in ``text`` (a lesson's TOML file); ValueError with a one-line message if it is malformed."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as problem:
        raise ValueError(f"not TOML: {problem}") from None
    graded = _solution_answers(lesson)
    answers = LessonAnswers({}, {}, {})
    for exercise, tables in data.items():
        if exercise not in graded:
            raise ValueError(f"{exercise!r} is not a graded exercise of {lesson} ({', '.join(graded)})")
        if not isinstance(tables, dict) or not tables or set(tables) - set(ENTRY_FIELDS):
            raise ValueError(f"{exercise}: only [[{exercise}.wrong]] and [[{exercise}.right]] entries are allowed")
        for kind, entries in tables.items():
            if not isinstance(entries, list):
                raise ValueError(f"{exercise}.{kind}: write its entries as [[{exercise}.{kind}]] tables")
            for entry in entries:
                label, answer = _answer(lesson, exercise, entry, kind)
                table = answers.wrong if kind == "wrong" else answers.right
                if label in table.setdefault(exercise, {}):
                    raise ValueError(f"{exercise}.{kind} {label!r}: named twice")
                table[exercise][label] = answer
                if "hint" in entry:
                    answers.visible_wrong.setdefault(exercise, {})[label] = (answer, entry["hint"])
    return answers


@functools.lru_cache(maxsize=None)
def lesson_answers(lesson: str) -> LessonAnswers:
    """The answers of ``tests/answers/<lesson>.toml``; AnswerFileError (one line) if it is missing or malformed."""
    path = answers_file(lesson)
    name = path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else str(path)
    if not path.is_file():
        raise AnswerFileError(f"{name}: no such file (the answers of {lesson})")
    try:
        return parse_answers(lesson, path.read_text(encoding="utf-8"))
    except ValueError as problem:
        raise AnswerFileError(f"{name}: {problem}") from None


class LessonExerciseChecks:
    """The standard checks of one lesson's graded exercises against its own test cells.

    A lesson's test module declares them with ``class TestExercises(LessonExerciseChecks, lesson=LESSON):``;
    the answers come from ``tests/answers/<lesson>.toml`` (see the module docstring):
      each wrong answer        the whole test cell (what grading runs) rejects it
      each one with a hint     the VISIBLE tests alone reject it too, with a message containing the hint
                               (what a student sees before submitting)
      each right answer        the whole test cell passes it
    and each graded exercise's reference answer (its solution cell) passes the whole and the visible tests.
    """

    def __init_subclass__(cls, lesson: str, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.lesson = lesson
        cls.answers = lesson_answers(lesson)

    def pytest_generate_tests(self, metafunc):
        """Parametrize each check below from the lesson's answers (pytest calls this per test method)."""
        names = metafunc.fixturenames
        if "hint" in names:
            rows = [(e, n, answer, hint) for e, named in self.answers.visible_wrong.items()
                    for n, (answer, hint) in named.items()]
            metafunc.parametrize("exercise,name,answer,hint", rows, ids=[f"{e}: {n}" for e, n, _, _ in rows])
        elif "answer" in names:
            table = self.answers.right if "correct" in metafunc.function.__name__ else self.answers.wrong
            rows = [(e, n, answer) for e, named in table.items() for n, answer in named.items()]
            metafunc.parametrize("exercise,name,answer", rows, ids=[f"{e}: {n}" for e, n, _ in rows])
        elif "exercise" in names:
            metafunc.parametrize("exercise", list(_solution_answers(self.lesson)))

    def test_reference_answer_passes(self, exercise):
        run_tests_against(self.lesson, exercise, _solution_answers(self.lesson)[exercise])

    def test_reference_answer_passes_the_visible_tests(self, exercise):
        run_tests_against(self.lesson, exercise, _solution_answers(self.lesson)[exercise], visible_only=True)

    def test_other_correct_answer_passes(self, exercise, name, answer):
        run_tests_against(self.lesson, exercise, answer)

    def test_wrong_answer_is_rejected(self, exercise, name, answer):
        assert_rejected(self.lesson, exercise, answer)

    def test_visible_tests_reject_the_common_mistake_with_its_hint(self, exercise, name, answer, hint):
        assert_rejected(self.lesson, exercise, answer, visible_only=True, hint=hint)
