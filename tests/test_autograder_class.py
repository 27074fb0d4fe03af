"""End to end: a small class of lesson 03 submissions, good and bad, through the real commands.

One Canvas-style zip is collected, graded (in parallel, with short time limits), given feedback and
exported; the tests then check every student's status and scores, the CSV, the feedback pages, and
that no submitted file, source or released notebook changed by a single byte.
"""
from __future__ import annotations

import contextlib
import copy
import csv
import hashlib
import io
import json
import os
import re
import zipfile

import nbformat
import pytest

from ppo_course.autograder.commands.cli import main
from ppo_course.autograder.commands.folder import safe_id

from conftest import LESSONS, RELEASE_CACHE, SOLUTIONS
from grading_helpers import hidden_test_lines, solution_answers, submission, with_edit

pytestmark = pytest.mark.slow   # grades a whole class

LESSON = "03-clipped-surrogate"
FULL = {"clipped_surrogate_tests": 4.0, "clip_is_active_tests": 3.0, "ppo_policy_loss_tests": 3.0}
ZERO = dict.fromkeys(FULL, 0.0)
LIMITS = ["--cell-timeout", "10", "--timeout", "90", "--memory-gb", "3", "--jobs", "2"]


def to_bytes(nb) -> bytes:
    return nbformat.writes(nb).encode()


def with_answers(**changes) -> nbformat.NotebookNode:
    return submission(LESSON, dict(solution_answers(LESSON), **changes))


def cell_index(nb, grade_id: str) -> int:
    return next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def runaway() -> bytes:
    """A memory blow-up, an infinite loop, and a sleep after a correct definition."""
    answers = solution_answers(LESSON)
    return to_bytes(with_answers(
        clipped_surrogate="big = bytearray(64 * 2**30)\n" + answers["clipped_surrogate"],
        clip_is_active="while True:\n    pass\n",
        ppo_policy_loss=answers["ppo_policy_loss"] + "\nimport time\ntime.sleep(10**6)\n"))


def vscode_round_trip() -> bytes:
    """Metadata gone, answer in a new cell below the stub, an answer cell turned markdown, a warning."""
    answers = solution_answers(LESSON)
    nb = submission(LESSON, {"ppo_policy_loss": answers["ppo_policy_loss"]})
    warning = ("\nimport warnings\n_plain = clipped_surrogate\n"
               "def clipped_surrogate(*args, **kwargs):\n"
               "    warnings.warn('a harmless warning on stderr', UserWarning)\n    return _plain(*args, **kwargs)\n")
    below = cell_index(nb, "clipped_surrogate") + 1
    active = nb.cells[cell_index(nb, "clip_is_active")]
    active.cell_type, active.source = "markdown", "```python\n" + answers["clip_is_active"] + "\n```"
    active.pop("outputs"), active.pop("execution_count")
    nb.cells.insert(below, nbformat.v4.new_code_cell(answers["clipped_surrogate"] + warning))
    for cell in nb.cells:
        cell.metadata = {}
    return to_bytes(nb)


def older_release() -> bytes:
    """Saved from an earlier version of the lesson: other prose, other visible tests, a cell fewer."""
    nb = with_answers()
    nb.cells[0].source = "# Lesson 03, first draft"
    nb.cells[cell_index(nb, "clip_is_active_tests")].source = "assert True  # the old, weaker test"
    del nb.cells[4]
    return to_bytes(nb)


def tampered() -> bytes:
    """A wrong answer behind a test replaced by `pass`, a deleted test, a duplicated one, cells reordered,
    and code that deletes files, writes outside its folder and looks for the solutions."""
    answers = solution_answers(LESSON)
    wrong = with_edit(answers, "clipped_surrogate", lambda s: s.replace("torch.minimum", "torch.maximum"))
    wrong["ppo_policy_loss"] += VANDAL
    nb = submission(LESSON, wrong)
    nb.cells[cell_index(nb, "clipped_surrogate_tests")].source = "pass"
    del nb.cells[cell_index(nb, "clip_is_active_tests")]
    duplicate = copy.deepcopy(nb.cells[cell_index(nb, "ppo_policy_loss_tests")])
    duplicate.id = "pasted-twice"
    nb.cells.append(duplicate)
    answer = nb.cells.pop(cell_index(nb, "ppo_policy_loss"))
    nb.cells.insert(3, answer)
    return to_bytes(nb)


VANDAL = """
import glob, os
for path in glob.glob("*.ipynb"):
    os.remove(path)          # its own copy: grading must not care
try:
    open("../../../../vandal.txt", "w").write("was here")
except OSError as error:
    print("write outside refused:", type(error).__name__)
print("solutions visible:", bool(glob.glob("../../../source/*/*.ipynb")))
print("grader's secret visible:", "PPO_GRADER_SECRET" in os.environ)
"""


def build_class() -> dict[str, bytes]:
    """Canvas file names -> bytes. Each student shows one case; `expected` says what each gets."""
    answers = solution_answers(LESSON)
    good = to_bytes(with_answers())
    return {
        "good_101_1_03-clipped-surrogate.ipynb": good,
        "partial_102_2_03-clipped-surrogate.ipynb": to_bytes(submission(LESSON, with_edit(
            answers, "clipped_surrogate", lambda s: s.replace("torch.minimum", "torch.maximum")))),
        "blank_103_3_03-clipped-surrogate.ipynb": to_bytes(submission(LESSON, {})),
        "runaway_104_4_03-clipped-surrogate.ipynb": runaway(),
        "deaf_105_5_03-clipped-surrogate.ipynb": to_bytes(with_answers(
            clip_is_active="import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass\n")),
        "crasher_107_7_03-clipped-surrogate.ipynb": to_bytes(with_answers(
            clip_is_active="import ctypes\nctypes.string_at(0)  # a segfault\n",
            ppo_policy_loss="import os\nos._exit(1)\n")),
        "vscode_108_8_03-clipped-surrogate.ipynb": vscode_round_trip(),
        "older_109_9_Untitled1.json": older_release(),
        "copy_116_16_Copy of 03-clipped-surrogate.ipynb": good,
        "tampered_110_10_03-clipped-surrogate.ipynb": tampered(),
        "truncated_112_12_03-clipped-surrogate.ipynb": good[: len(good) // 2],
        "notjson_113_13_03-clipped-surrogate.ipynb": b"<html>Canvas error page</html>",
        "empty_114_14_03-clipped-surrogate.ipynb": b"",
        "script_115_15_answers.py": b"def clipped_surrogate(ratio, adv, eps=0.2):\n    return ratio\n",
        "README.txt": b"not a submission: no student id in this name",
    }


EXPECTED = {  # student -> (status, scores)
    "101": ("graded", FULL),
    "102": ("graded", dict(FULL, clipped_surrogate_tests=0.0)),
    "103": ("graded", ZERO),
    "104": ("graded", dict(ZERO, ppo_policy_loss_tests=3.0)),
    "105": ("timeout", dict(FULL, clip_is_active_tests=0.0)),     # graded again without the culprit
    "107": ("crashed", dict(ZERO, clipped_surrogate_tests=4.0)),   # two crashes, each answer dropped
    "108": ("graded", FULL),
    "109": ("graded", FULL),
    "116": ("graded", FULL),
    "110": ("graded", dict(FULL, clipped_surrogate_tests=0.0)),
    "112": ("unreadable", {}),
    "113": ("unreadable", {}),
    "114": ("unreadable", {}),
    "115": ("missing", {}),
}


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(list(argv))
    return code, out.getvalue()


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory, sandbox):
    root = tmp_path_factory.mktemp("class")
    files = build_class()
    upload = root / "canvas.zip"
    with zipfile.ZipFile(upload, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    protected = [upload, *(SOLUTIONS / LESSON).glob("*"), *(LESSONS / LESSON).glob("*")]
    before = {p: digest(p) for p in protected}
    course = root / "course"
    os.environ["PPO_GRADER_SECRET"] = "an LMS token"   # student code must not see the grader's environment
    outputs = {"collect": run("collect", str(upload), "--course", str(course), "--lesson", "03"),
               "grade": run("grade", "--course", str(course), "--no-progress", *LIMITS,
                           "--release-cache", str(RELEASE_CACHE)),
               "feedback": run("feedback", "--course", str(course)),
               "export": run("export", "--course", str(course))}
    del os.environ["PPO_GRADER_SECRET"]
    return {"course": course, "files": files, "outputs": outputs, "before": before,
            "after": {p: digest(p) for p in protected}}


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
