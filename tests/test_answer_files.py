"""The answer files (tests/answers/<lesson>.toml, the data of tests/exercise_checks.py) are complete and sound.

Each parses and names only graded exercises of its lesson; every graded exercise has a wrong answer that the
visible tests must reject with a hint, and another correct answer; each file is run by its lesson's test
module. A malformed file gets a one-line error that says where and what.
"""
from __future__ import annotations

import re

import pytest

import exercise_checks
from conftest import REPO, SOLUTIONS
from exercise_checks import ANSWERS, AnswerFileError, lesson_answers, parse_answers
from grading_helpers import solution_answers

ANSWER_LESSONS = sorted(path.stem for path in ANSWERS.glob("*.toml"))


def lessons_declaring_exercise_checks() -> set[str]:
    """The LESSON of each test module that declares ``TestExercises(LessonExerciseChecks, lesson=LESSON)``."""
    found = set()
    for module in (REPO / "tests").glob("test_*.py"):
        text = module.read_text(encoding="utf-8")
        if re.search(r"^class \w+\(LessonExerciseChecks, lesson=LESSON\):", text, re.MULTILINE):
            found.add(re.search(r'^LESSON = "([^"]+)"', text, re.MULTILINE).group(1))
    return found


def test_each_answer_file_is_run_by_its_lessons_test_module():
    assert ANSWER_LESSONS, f"no answer files in {ANSWERS}"
    assert set(ANSWER_LESSONS) == lessons_declaring_exercise_checks(), (
        "each tests/answers/<lesson>.toml needs a test module declaring its LessonExerciseChecks, and back")


@pytest.mark.parametrize("lesson", ANSWER_LESSONS)
def test_answer_file_covers_every_graded_exercise(lesson):
    assert (SOLUTIONS / lesson).is_dir(), f"tests/answers/{lesson}.toml is not named after a lesson folder"
    answers = lesson_answers(lesson)   # parses; names only graded exercises (AnswerFileError otherwise)
    graded = solution_answers(lesson)
    assert set(answers.wrong) | set(answers.right) <= set(graded)
    for exercise in graded:
        assert answers.visible_wrong.get(exercise), f"{lesson}: {exercise} has no wrong answer with a hint"
        assert answers.right.get(exercise), f"{lesson}: {exercise} has no other correct answer"
        visible = {name: answer for name, (answer, _hint) in answers.visible_wrong[exercise].items()}
        assert visible.items() <= answers.wrong[exercise].items(), "the whole cell must reject each one too"


ENTRY = '[[trpo_step_size.wrong]]\nmistake = "m"\n'
MALFORMED = {
    "not TOML": ("[[trpo_step_size.wrong]\n", "not TOML"),
    "unknown exercise": ('[[step_size.wrong]]\nmistake = "m"\nbody = "return 1"\n',
                         "'step_size' is not a graded exercise of 02-trpo"),
    "unknown kind": ('[[trpo_step_size.wrongs]]\nmistake = "m"\nbody = "return 1"\n', "only [[trpo_step_size.wrong]]"),
    "unknown field": (ENTRY + 'body = "return 1"\nhnit = "factor 2"\n', "'m': unknown field(s) hnit"),
    "hint on a right answer": ('[[trpo_step_size.right]]\nname = "n"\nbody = "return 1"\nhint = "h"\n',
                               "trpo_step_size.right 'n': unknown field(s) hint"),
    "no mistake": ('[[trpo_step_size.wrong]]\nbody = "return 1"\n', "an entry has no mistake"),
    "neither body nor replace": (ENTRY + 'hint = "factor 2"\n', "'m': give exactly one of body and replace"),
    "both body and replace": (ENTRY + 'body = "return 1"\nreplace = [["2 * delta", "delta"]]\n',
                              "'m': give exactly one of body and replace"),
    "replacement not found": (ENTRY + 'replace = [["3 * delta", "delta"]]\n',
                              "'m': replace: '3 * delta' not found in the solution cell"),
    "replacement ambiguous": (ENTRY + 'replace = [["delta", "0.01"]]\n', "'m': replace: 'delta' found 5 times"),
    "replacement not a pair": (ENTRY + 'replace = [["2 * delta"]]\n', "is not an [old, new] pair"),
    "named twice": (ENTRY + 'body = "return 1"\n' + ENTRY + 'body = "return 2"\n', "'m': named twice"),
}


@pytest.mark.parametrize("text,expected", MALFORMED.values(), ids=MALFORMED)
def test_a_malformed_answer_file_gets_a_one_line_error(text, expected):
    with pytest.raises(ValueError) as raised:
        parse_answers("02-trpo", text)
    message = str(raised.value)
    assert expected in message and "\n" not in message, message


def test_the_error_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(exercise_checks, "ANSWERS", tmp_path)
    (tmp_path / "02-trpo.toml").write_text(ENTRY + 'replace = [["3 * delta", "delta"]]\n', encoding="utf-8")
    with pytest.raises(AnswerFileError, match=r"02-trpo\.toml: trpo_step_size\.wrong 'm': replace: '3 \* delta'"):
        lesson_answers.__wrapped__("02-trpo")
