"""The grader knows nothing of PPO: nbgrader's own documentation course graded with the instructor's commands.

``tests/data/nbgrader-ps1`` holds nbgrader's documentation example (``ps1``: two notebooks, manually
graded answers and a task, a test that deletes the learner's ``squares`` to check that
``sum_of_squares`` uses it) and its two example submissions (bitdiddle, hacker), with nbgrader's
licence. Through ``collect --id-pattern folders``, ``grade --source`` and ``export --source`` the
gradebook's ``ps1 total`` must hold the autograded points stock ``nbgrader autograde`` gives them; the
manually graded cells wait for a person (``manual``), and the one test that needs the learner's
namespace runs in the kernel and is said to.
"""
from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from ppo_course.autograder.grading.contract import IN_GRADER, IN_KERNEL, read_contract
from ppo_course.autograder.grading.pipeline import nbgrader_config

from conftest import RELEASE_CACHE, REPO

pytestmark = pytest.mark.slow   # grades a course in the sandbox, and with stock nbgrader

DATA = Path(__file__).parent / "data" / "nbgrader-ps1"
SOURCE, SUBMITTED = DATA / "source", DATA / "submitted"
STUDENTS = ("bitdiddle", "hacker")
AUTOGRADED = ("correct_squares", "squares_invalid_input", "correct_sum_of_squares", "sum_of_squares_uses_squares")
MANUAL = {"sum_of_squares_equation": 1.0, "sum_of_squares_application": 2.0, "cell-938593c4a215c6cc": 4.0,
          "part-a": 1.0, "part-b": 2.0}


def autograder(*argv) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ppo_course.autograder", *map(str, argv)], cwd=REPO,
                          capture_output=True, text=True, timeout=1200)


def test_the_contract_is_read_from_nbgrader_metadata_alone():
    contract = read_contract(SOURCE / "ps1")
    assert [nb.notebook for nb in contract.notebooks] == ["problem1.ipynb", "problem2.ipynb"]
    assert [(e.answer_id, e.test_ids) for e in contract.exercises] == [
        ("squares", ("correct_squares", "squares_invalid_input")),
        ("sum_of_squares", ("correct_sum_of_squares", "sum_of_squares_uses_squares"))]
    where = {t.grade_id: (t.runs_in, t.why) for t in contract.tests}
    assert where == {"correct_squares": (IN_GRADER, ""), "squares_invalid_input": (IN_GRADER, ""),
                     "correct_sum_of_squares": (IN_GRADER, ""),
                     "sum_of_squares_uses_squares": (IN_KERNEL, "deletes or rebinds the learner's squares")}
    assert {m.grade_id: m.points for m in contract.manual} == MANUAL and contract.max_points == 3.0


def stock_nbgrader_scores(root: Path) -> dict[str, dict[str, float | None]]:
    """What stock ``nbgrader autograde`` gives each example submission, per graded cell (None: waits for a person)."""
    from nbgrader.api import Gradebook
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    shutil.copytree(SOURCE, root / "source")
    shutil.copytree(SUBMITTED, root / "submitted")
    config = nbgrader_config(root)
    config.ExecutePreprocessor.timeout = 60
    api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
    assert api.generate_assignment("ps1")["success"]
    scores = {}
    for student in STUDENTS:
        result = api.autograde("ps1", student)
        assert result["success"], result.get("error") or result.get("log")
        with Gradebook(config.CourseDirectory.db_url) as gradebook:
            scores[student] = {grade.name: None if grade.needs_manual_grade else grade.score
                               for name in ("problem1", "problem2")
                               for grade in gradebook.find_submission_notebook(name, "ps1", student).grades}
    return scores


@pytest.fixture(scope="module")
def graded(tmp_path_factory, sandbox):
    root = tmp_path_factory.mktemp("ps1")
    course = root / "course"
    runs = {"collect": autograder("collect", SUBMITTED, "--course", course, "--lesson", "ps1",
                                  "--id-pattern", "folders"),
            "grade": autograder("grade", "--course", course, "--source", SOURCE, "ps1", "--no-progress", "--jobs", "2",
                                "--release-cache", RELEASE_CACHE),
            "export": autograder("export", "--course", course, "--source", SOURCE, "ps1")}
    with open(course / "gradebook.csv", newline="") as handle:
        rows = {row["student_id"]: row for row in csv.DictReader(handle)}
    return {"root": root, "course": course, "runs": runs, "rows": rows,
            "stock": stock_nbgrader_scores(root / "stock")}


def test_the_commands_succeed(graded):
    for name, run in graded["runs"].items():
        assert run.returncode == 0 and "Traceback" not in run.stderr, f"{name}:\n{run.stdout}\n{run.stderr}"
    assert "collected 4 file(s) from 2 student(s)" in graded["runs"]["collect"].stdout
    assert ("sum_of_squares_uses_squares (deletes or rebinds the learner's squares)" in graded["runs"]["grade"].stderr
            and "as trustworthy as stock nbgrader's" in graded["runs"]["grade"].stderr), graded["runs"]["grade"].stderr


def test_ps1_total_is_stock_nbgraders_autograded_total(graded):
    stock, rows = graded["stock"], graded["rows"]
    for student in STUDENTS:
        expected = sum(stock[student][cell] or 0 for cell in AUTOGRADED)
        assert float(rows[student]["ps1 total (13)"]) == expected, (student, rows[student], stock[student])
        for cell in AUTOGRADED:
            column = next(c for c in rows[student] if c.startswith(f"ps1 {cell} ("))
            assert float(rows[student][column]) == stock[student][cell], (student, cell, rows[student][column])
    assert [float(graded["rows"][s]["ps1 total (13)"]) for s in STUDENTS] == [1.5, 3.0], (
        "bitdiddle's squares starts at 0 (its correctness tests fail), hacker's passes every test")


def test_manual_cells_wait_for_a_person_never_silently_scored(graded):
    """As stock nbgrader: a manually graded answer left as released scores 0, every other one waits."""
    for student in STUDENTS:
        row, stock = graded["rows"][student], graded["stock"][student]
        waiting = {cell: points for cell, points in MANUAL.items() if stock[cell] is None}
        assert waiting, f"stock nbgrader leaves {student}'s written answers to a person: {stock}"
        assert "ps1 manual grading pending" in row["status"], row
        assert f"{sum(waiting.values()):g} points await manual grading" in row["comment"], (waiting, row)
        record = json.loads((graded["course"] / "autograded" / student / "ps1" / "result.json").read_text())
        assert record["manual"] == waiting, record
        assert record["manual_scores"] == {cell: stock[cell] for cell in MANUAL if stock[cell] is not None}, record


def test_the_class_report_reads_any_course(graded):
    """``report`` knows nothing of PPO: on ps1 it counts each exercise's outcomes and names bitdiddle's failing
    checks, which have no message, by their visible statements."""
    out = graded["root"] / "report"
    run = autograder("report", "--course", graded["course"], "--source", SOURCE, "ps1", "--output", out)
    assert run.returncode == 0 and (out / "report.html").exists(), run.stderr
    report = json.loads((out / "report.json").read_text())["assignments"][0]
    assert [(x["exercise"], x["full"], x["partial"]) for x in report["exercises"]] == [("squares", 1, 1),
                                                                                       ("sum_of_squares", 1, 1)]
    assert {(m["exercise"], m["label"], tuple(m["students"])) for m in report["mistakes"]} == {
        ("squares", "AssertionError at assert squares(1) == …", ("bitdiddle",)),
        ("sum_of_squares", "AssertionError at assert sum_of_squares(1) == 1", ("bitdiddle",))}, report["mistakes"]
    assert report["statuses"] == {"graded": 2, "manual grading pending": 2}, report["statuses"]


def test_manual_grading_then_export(graded):
    course = graded["course"]
    run = autograder("manual", "--course", course, "--source", SOURCE, "ps1")
    assert run.returncode == 0, run.stderr
    page = (course / "manual" / "ps1.html").read_text()
    assert "hypotenuse" in page and "sum_of_squares_equation" in page and "fibonacci" in page, page[:2000]
    sheet = course / "manual" / "ps1.csv"
    with open(sheet, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(MANUAL) * len(STUDENTS) and {r["points"] for r in rows} == {""}
    for row in rows:
        row["points"] = row["max"] if row["student_id"] == "hacker" else ""
    with open(sheet, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert autograder("manual", "--course", course, "--source", SOURCE, "ps1").returncode == 0   # keeps the points
    assert autograder("export", "--course", course, "--source", SOURCE, "ps1").returncode == 0
    with open(course / "gradebook.csv", newline="") as handle:
        exported = {row["student_id"]: row for row in csv.DictReader(handle)}
    assert float(exported["hacker"]["ps1 total (13)"]) == 13.0 and exported["hacker"]["status"] == "graded", exported
    assert float(exported["bitdiddle"]["ps1 total (13)"]) == 1.5
    assert "manual grading pending" in exported["bitdiddle"]["status"]
    rows[0]["points"] = "99"
    with open(sheet, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    run = autograder("export", "--course", course, "--source", SOURCE, "ps1")
    assert run.returncode == 2 and "takes 0 to" in run.stderr and run.stderr.count("\n") == 1, run.stderr


def test_feedback_pages_per_notebook(graded):
    run = autograder("feedback", "--course", graded["course"], "--jobs", "2")
    assert run.returncode == 0, run.stderr
    for student in STUDENTS:
        pages = sorted(p.name for p in (graded["course"] / "feedback" / student / "ps1").iterdir())
        assert pages == ["problem1.html", "problem2.html"], pages
    graded_notebook = nbformat.read(graded["course"] / "autograded" / "hacker" / "ps1" / "problem1.ipynb",
                                    as_version=4)
    application = next(c for c in graded_notebook.cells
                       if c.metadata.get("nbgrader", {}).get("grade_id") == "sum_of_squares_application")
    assert "hypotenuse" in application.source, "a manually graded answer is kept as the student wrote it"


def test_untouched_test_cells_are_not_reported_edited(graded):
    """The submissions were made from stock nbgrader's release, whose test cells lack the line this grader's
    release appends to announce a pass: that is not an edit."""
    record = json.loads((graded["course"] / "autograded" / "hacker" / "ps1" / "result.json").read_text())
    assert not [note for note in record["notes"] if "edited" in note], record["notes"]
    edited = json.loads((graded["course"] / "autograded" / "bitdiddle" / "ps1" / "result.json").read_text())["notes"]
    assert "problem1.ipynb: test cell correct_squares edited: restored" in edited, (
        f"bitdiddle commented out correct_squares' asserts: that is an edit {edited}")
