"""Lesson 03's class of every kind of submission, collected from a Canvas zip and graded once per test run.

The local grader's checks (test_autograder_class.py) and the cluster's (test_cluster_grading.py, which grades
the same collected class on Dask and compares every record) read this one grading.
"""
from __future__ import annotations

import atexit
import contextlib
import copy
import functools
import hashlib
import io
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import nbformat

from ppo_course.autograder.commands.cli import main

from conftest import LESSONS, RELEASE_CACHE, SOLUTIONS
from grading_helpers import solution_answers, submission, with_edit

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


@functools.lru_cache(maxsize=None)
def graded_class_once() -> dict:
    """collect, grade, feedback and export of the class, from the repository root's commands (once per run)."""
    root = Path(tempfile.mkdtemp(prefix="class-03-"))
    atexit.register(shutil.rmtree, root, True)
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


