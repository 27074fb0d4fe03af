"""Every lesson through the course's own grader (sandbox, tests in the grader) and feedback.

The same three submissions per lesson as the stock-nbgrader round trips (full marks, blank, one
realistic mistake), graded in one class with `grade`, then `feedback` for all: scores must match the
stock round trips' expectations, and every page must be written, show its score and no hidden test.
"""
from __future__ import annotations

import json
import re

import nbformat
import pytest
from test_grading_round_trips import MISTAKES

from ppo_course.autograder.commands.client import grade
from ppo_course.autograder.commands.feedback import feedback
from ppo_course.autograder.commands.folder import Course
from ppo_course.autograder.grading.job import Limits

from conftest import RELEASE_CACHE
from grading_helpers import hidden_test_lines, points, solution_answers, submission, with_edit

pytestmark = pytest.mark.slow   # grades every lesson in the sandbox

LESSONS = list(MISTAKES)


@pytest.fixture(scope="module")
def graded_course(tmp_path_factory, sandbox):
    course = Course(tmp_path_factory.mktemp("every-lesson") / "course")
    for lesson, (exercise, correct, wrong) in MISTAKES.items():
        answers = solution_answers(lesson)
        mistaken = with_edit(answers, exercise, lambda s, correct=correct, wrong=wrong: s.replace(correct, wrong))
        for student, chosen in (("perfect", answers), ("blank", {}), ("mistaken", mistaken)):
            folder = course.submitted / student / lesson
            folder.mkdir(parents=True)
            nbformat.write(submission(lesson, chosen), folder / f"{lesson}.ipynb")
    records = grade(course, LESSONS, Limits(cell_timeout=60, timeout=300), jobs=2, progress=False,
                    release_cache=RELEASE_CACHE)
    pages = feedback(course, LESSONS, jobs=2)
    return course, {(r["lesson"], r["student"]): r for r in records}, pages


@pytest.mark.parametrize("lesson", LESSONS)
def test_scores_match_the_stock_round_trip(graded_course, lesson):
    _, records, _ = graded_course
    exercise = MISTAKES[lesson][0]
    full = points(lesson)
    assert {s: records[lesson, s]["status"] for s in ("perfect", "blank", "mistaken")} == dict.fromkeys(
        ("perfect", "blank", "mistaken"), "graded"), (
        f"all three {lesson} submissions must be graded, not time out or crash: "
        f"{ {s: records[lesson, s].get('message') for s in ('perfect', 'blank', 'mistaken')} }")
    assert records[lesson, "perfect"]["scores"] == full, "the reference answers must get full marks in every test cell"
    assert records[lesson, "blank"]["scores"] == dict.fromkeys(full, 0.0), (
        "a blank submission (the released stubs) must get 0 in every test cell")
    assert records[lesson, "mistaken"]["scores"] == dict(full, **{f"{exercise}_tests": 0.0}), (
        f"the mistake in {exercise} must cost only {exercise}_tests' points: later tests swap in the reference")


@pytest.mark.parametrize("lesson", LESSONS)
def test_feedback_is_written_with_its_score_and_without_hidden_tests(graded_course, lesson):
    course, records, pages = graded_course
    assert [row for row in pages if row[0] == lesson and row[2].startswith("error")] == [], (
        f"feedback could not be written for these {lesson} pages")
    hidden = hidden_test_lines(lesson)
    assert hidden, f"lesson {lesson} has hidden tests to hide"
    for student in ("perfect", "blank", "mistaken"):
        page = (course.feedback / student / lesson / f"{lesson}.html").read_text()
        seen = " ".join(re.sub(r"<[^>]+>", "", page).replace("&quot;", '"').replace("&#39;", "'")
                        .replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").split())
        assert [line for line in hidden if " ".join(line.split()) in seen] == [], (lesson, student)
        total, maximum = records[lesson, student]["total"], records[lesson, student]["max"]
        assert f"Score: {total:g} / {maximum:g}" in page, (
            f"{student}'s {lesson} feedback must show the score it was graded with, {total:g} / {maximum:g}")


def test_teaching_cells_are_not_run_while_grading(graded_course):
    """Only setup, answer and test cells run: the graded notebook shows no outputs elsewhere."""
    course, _, _ = graded_course
    notebook = json.loads((course.autograded / "perfect" / "04-ppo-cartpole" / "04-ppo-cartpole.ipynb").read_text())
    ran = [cell for cell in notebook["cells"] if cell["cell_type"] == "code" and cell.get("execution_count")]
    kinds = {("setup" in cell["metadata"].get("tags", []), bool(cell["metadata"].get("nbgrader"))) for cell in ran}
    assert kinds <= {(True, False), (False, True)}, kinds
