"""End to end: a small class of lesson 03 submissions, good and bad, through the real commands.

One Canvas-style zip is collected, graded (in parallel, with short time limits), given feedback and
exported; the tests then check every student's status and scores, the CSV, the feedback pages, and
that no submitted file, source or released notebook changed by a single byte.
"""
from __future__ import annotations

import csv
import json
import re

import nbformat
import pytest

from ppo_course.autograder.commands.folder import safe_id

from conftest import SOLUTIONS
from grading_helpers import hidden_test_lines
from lesson03_class import EXPECTED, LESSON, graded_class_once

pytestmark = pytest.mark.slow   # grades a whole class


@pytest.fixture(scope="module")
def graded_class(sandbox):
    return graded_class_once()


def result(course, student: str) -> dict:
    return json.loads((course / "autograded" / student / LESSON / "result.json").read_text())


def test_every_command_succeeds(graded_class):
    assert {name: code for name, (code, _) in graded_class["outputs"].items()} == dict.fromkeys(
        ["collect", "grade", "feedback", "export"], 0), (
        f"every command must exit 0 on a class full of broken submissions; outputs: {graded_class['outputs']}")
    assert "skipped README.txt: no student id" in graded_class["outputs"]["collect"][1], (
        "collect must skip, and name, a file in the zip whose name carries no student id")


@pytest.mark.parametrize("student", sorted(EXPECTED))
def test_status_and_scores(graded_class, student):
    status, scores = EXPECTED[student]
    record = result(graded_class["course"], student)
    assert (record["status"], record["scores"]) == (status, scores), record


def test_repairs_are_reported(graded_class):
    notes = {s: " ".join(result(graded_class["course"], s)["notes"])
             for s in ("104", "105", "107", "108", "109", "110", "116")}
    assert "graded again without clip_is_active (timeout)" in notes["105"], (
        "105's clip_is_active ignores SIGINT in an endless loop: the note must say it was graded again without it")
    assert "without clip_is_active (crashed)" in notes["107"] and "without ppo_policy_loss (crashed)" in notes["107"], (
        f"107 crashes the kernel in two answers (a segfault, os._exit): the notes must name both: {notes['107']}")
    assert "2 cell(s) stopped at the 10 s limit" in notes["104"], (
        f"104's endless loop and long sleep must both be reported as stopped at the cell limit: {notes['104']}")
    assert "metadata missing" in notes["108"] and "clip_is_active: answer found by markdown cell" not in notes["108"], (
        f"108 (a VS Code round trip) lost its cell metadata: the note must say so, and a markdown cell "
        f"must not be taken as an answer: {notes['108']}")
    assert "clip_is_active: answer found by function name" in notes["108"], (
        f"without metadata, 108's clip_is_active answer must be found by its function name: {notes['108']}")
    assert "clipped_surrogate: answer found by function name (cell" in notes["108"], (
        f"108's clipped_surrogate is in a new cell below the stub: it must be found by name, with its cell: "
        f"{notes['108']}")
    assert "not named .ipynb" in notes["109"], f"109 handed in Untitled1.json: the note must say so: {notes['109']}"
    assert "(the assignment's notebook is 03-clipped-surrogate.ipynb)" in notes["116"] and "Copy" in notes["116"], (
        f"116 handed in 'Copy of ...': the note must name the file and the lesson's notebook: {notes['116']}")
    for repair in ("clipped_surrogate_tests edited", "clip_is_active_tests missing",
                   "ppo_policy_loss_tests duplicated"):
        assert repair in notes["110"], (
            f"every tampering with 110's test cells must be reported and repaired, '{repair}' too: {notes['110']}")


def test_summary_names_every_failure(graded_class):
    summary = graded_class["outputs"]["grade"][1]
    assert "14 submissions: 1 crashed, 8 graded, 1 missing, 1 timeout, 3 unreadable" in summary, (
        f"the summary must count every status of the 14 submissions (README.txt is none):\n{summary}")
    assert re.search(r"UNREADABLE +03-clipped-surrogate 112: not a notebook: broken JSON", summary), (
        f"the summary must list the truncated notebook (112) as UNREADABLE, with why:\n{summary}")
    assert re.search(r"MISSING +03-clipped-surrogate 115: no notebook handed in \(found answers.py\)", summary), (
        f"the summary must list 115 (only a .py handed in) as MISSING, naming the file found:\n{summary}")


def test_originals_and_course_notebooks_unchanged(graded_class):
    assert graded_class["before"] == graded_class["after"], (
        "the uploaded zip and the lesson's solution and released files must not change by a byte in grading")
    course, files = graded_class["course"], graded_class["files"]
    for name, data in files.items():
        if name == "README.txt":
            continue
        student, file_name = name.split("_")[1], safe_id(name.split("_", 3)[3])   # as collect names it
        assert (course / "submitted" / student / LESSON / file_name).read_bytes() == data, name
    assert not (course / "vandal.txt").exists(), (
        "110 tried to write ../../../../vandal.txt: the sandbox must keep that write out of the course folder")


def test_student_code_saw_no_solutions(graded_class):
    graded = (graded_class["course"] / "autograded" / "110" / LESSON / f"{LESSON}.ipynb").read_text()
    assert "solutions visible: False" in graded, (
        "110 globbed ../../../source/*/*.ipynb: the sandbox must hide the solution notebooks from student code")
    assert "grader's secret visible: False" in graded, (
        "PPO_GRADER_SECRET was set in the grader: the sandbox must not pass the grader's environment on")


def test_gradebook_csv(graded_class):
    with open(graded_class["course"] / "gradebook.csv", newline="") as handle:
        rows = {row["student_id"]: row for row in csv.DictReader(handle)}
    assert list(next(iter(rows.values()))) == [
        "student_id", "name", "03 clipped_surrogate (4)", "03 clip_is_active (3)", "03 ppo_policy_loss (3)",
        "03 total (10)", "total (10)", "status", "comment"]
    assert sorted(rows) == sorted(EXPECTED), "one gradebook row per student with an id, the ungraded included"
    assert (rows["101"]["name"], rows["101"]["total (10)"], rows["101"]["status"]) == ("good", "10", "graded"), (
        "the correct submission: its name from the file name, full marks, graded")
    assert rows["102"]["03 clipped_surrogate (4)"] == "0" and rows["102"]["total (10)"] == "6", (
        f"102's wrong clipped_surrogate must cost exactly its 4 points: {rows['102']}")
    assert rows["105"]["status"] == "03 timeout" and rows["105"]["total (10)"] == "7", (
        f"105 timed out in clip_is_active (3 points): status '03 timeout', the other 7 points kept: {rows['105']}")
    assert rows["112"]["comment"].startswith("03: not a notebook"), (
        f"an unreadable submission's comment must say why: {rows['112']['comment']!r}")


def visible(page: str) -> str:
    return re.sub(r"<[^>]+>", "", page).replace("&quot;", '"').replace("&#39;", "'").replace("&lt;", "<")


def solution_lines() -> list[str]:
    nb = nbformat.read(SOLUTIONS / LESSON / f"{LESSON}.ipynb", as_version=4)
    blocks = re.findall(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", "\n".join(c.source for c in nb.cells), re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if len(line.strip()) > 12]


@pytest.mark.parametrize("student", ["101", "102", "103", "108", "110"])
def test_feedback_shows_scores_but_no_hidden_tests(graded_class, student):
    page = visible((graded_class["course"] / "feedback" / student / LESSON / f"{LESSON}.html").read_text())
    hidden = hidden_test_lines(LESSON)
    assert hidden, "lesson 03 should have hidden tests to hide"
    assert [line for line in hidden if line in page] == [], "these hidden test lines leaked into the feedback"
    assert "HIDDEN TESTS" not in page, "the feedback page must not show the hidden-test markers"
    total = result(graded_class["course"], student)["total"]
    assert f"Score: {total:g} / 10" in page, "the page must show the student's score"
    if student == "103":
        assert [line for line in solution_lines() if line in page] == [], "feedback must not show the solutions"


def test_feedback_for_an_ungraded_submission_says_why(graded_class):
    page = (graded_class["course"] / "feedback" / "112" / LESSON / f"{LESSON}.html").read_text()
    assert "could not be graded" in page and "broken JSON" in page, (
        "the feedback for a truncated notebook must say it could not be graded, and why (broken JSON)")


def test_feedback_after_a_dropped_answer_explains_it(graded_class):
    page = visible((graded_class["course"] / "feedback" / "105" / LESSON / f"{LESSON}.html").read_text())
    assert "Your answer to clip_is_active: a cell kept running" in page, (
        "105's feedback must explain that its clip_is_active answer was dropped for running too long")
    assert "Score: 7 / 10" in page, "105's feedback must show the 7 points earned without that answer"
