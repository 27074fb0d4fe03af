"""A hostile class at the grader's doors, run as an instructor runs it: the guide's commands from the
repository root (``python -m ppo_course.autograder collect/grade/feedback/export``), on lesson 03.

The download is a folder of student folders (as GitHub Classroom or an unzipped LMS download gives it),
then a Moodle zip into the same course. In it: honest students and an honest twin with a realistic
mistake, and students who try each door of issue 30 (links to the solutions and to a classmate, files
named as another student's, formulas in names, a flood of notebooks, an answer that leaks hidden inputs
through exceptions and through later visible checks, one that amplifies its outputs, a notebook nested
200,000 deep). Every cheat must score no more than its honest twin, honest students full marks, no
CSV cell be a formula, no feedback page show a hidden input or expected value, no file pass the stated
bound, and no submitted file change.
"""
from __future__ import annotations

import csv
import hashlib
import html
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nbformat
import pytest

from ppo_course.autograder.commands.feedback import MAX_PAGE_CHARS
from ppo_course.autograder.grading.contract import python_lines
from ppo_course.autograder.grading.hidden import numbers_in, visible_form

from conftest import LESSONS, RELEASE_CACHE, REPO, SOLUTIONS, lesson_notebook
from grading_helpers import points, solution_answers, submission, with_edit

pytestmark = pytest.mark.slow   # grades a class in the sandbox, through the command line

LESSON = "03-clipped-surrogate"
NOTEBOOK = f"{LESSON}.ipynb"
MAX_GRADED_NOTEBOOK_BYTES = 4 * 2**20   # the bound the instructor guide states
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")
PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def autograder(*argv) -> subprocess.CompletedProcess:
    """One of the guide's commands, typed at the repository root."""
    return subprocess.run([sys.executable, "-m", "ppo_course.autograder", *map(str, argv)], cwd=REPO,
                          capture_output=True, text=True, timeout=1800)


def source_of(name: str) -> str:
    cells = nbformat.read(lesson_notebook(LESSON), as_version=4).cells
    return next(c.source for c in cells if c.metadata.get("nbgrader", {}).get("grade_id") == name)


def visible_calls() -> set[str]:
    """repr of the arguments of every call the visible clipped_surrogate tests make (the leaker knows them:
    they are in the released notebook)."""
    setup = next(c.source for c in nbformat.read(lesson_notebook(LESSON), as_version=4).cells
                 if "setup" in c.metadata.get("tags", []))
    namespace: dict = {}
    exec(python_lines(setup), namespace)
    seen, reference = set(), namespace["clipping"].clipped_surrogate

    def recording(ratio, adv, eps=0.2):
        seen.add(call_key(ratio, adv, eps))
        return reference(ratio, adv, eps)

    namespace["clipped_surrogate"] = recording
    exec(visible_form(source_of("clipped_surrogate_tests")), namespace)
    return seen


def call_key(ratio, adv, eps) -> str:
    return repr((ratio.detach().tolist(), adv.detach().tolist(), float(eps)))


LEAKER = '''
import torch as _torch
_VISIBLE = {visible!r}
_seen_hidden = []
def _key(ratio, adv, eps):
    return repr((ratio.detach().tolist(), adv.detach().tolist(), float(eps)))
def clipped_surrogate(ratio, adv, eps=0.2):
    key = _key(ratio, adv, eps)
    if key not in _VISIBLE:
        _seen_hidden.append(key)
        raise ValueError("LEA" + "KED " + key)   # the hidden check's inputs, in the exception's text
    return _torch.minimum(ratio * adv, _torch.clamp(ratio, 1 - eps, 1 + eps) * adv)
'''
LEAKER_LATER = '''
if _seen_hidden:   # what the hidden checks sent, printed by a later answer cell
    print("LEA" + "KED IN AN ANSWER CELL", _seen_hidden)
def clip_is_active(ratio, adv, eps=0.2):
    if _seen_hidden:   # say what the hidden checks sent, through a later visible check's "got ..." message
        bits = [c == "1" for c in format(len(_seen_hidden[0]), "06b")]
        return _torch.tensor(bits[: ratio.numel()] + [False] * max(0, ratio.numel() - 6))
    return ((adv > 0) & (ratio > 1 + eps)) | ((adv < 0) & (ratio < 1 - eps))
'''
AMPLIFIER = '''
import torch as _torch
print("x" * 20_000_000)
def clipped_surrogate(ratio, adv, eps=0.2):
    if ratio.dtype == _torch.float64:   # the hidden checks: an 8-million-element answer
        return _torch.zeros(8_000_000, dtype=_torch.float64)
    return _torch.minimum(ratio * adv, _torch.clamp(ratio, 1 - eps, 1 + eps) * adv)
'''
AMPLIFIER_LATER = '''
def clip_is_active(ratio, adv, eps=0.2):
    raise ValueError("y" * 10_000_000)
'''


def notebook_bytes(answers: dict[str, str]) -> bytes:
    return nbformat.writes(submission(LESSON, answers)).encode()


def tree_digest(root: Path) -> dict[str, str]:
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            if path.is_symlink():
                found[path.relative_to(root).as_posix()] = "link -> " + os.readlink(path)
            elif path.is_file():
                found[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


@pytest.fixture(scope="module")
def doors(tmp_path_factory, sandbox):
    root = tmp_path_factory.mktemp("doors")
    right = solution_answers(LESSON)
    wrong = with_edit(right, "clipped_surrogate", lambda s: s.replace("torch.minimum", "torch.maximum"))
    download = root / "download"
    students = {
        "10001": notebook_bytes(right),                         # honest: the forger's target
        "10002": notebook_bytes(wrong),                         # the honest twin of the cheats below
        "@SUM(A1)": notebook_bytes(right),                      # an honest student with an odd folder name
        "-2+3": notebook_bytes(wrong),
        "leaker": notebook_bytes(dict(right, clipped_surrogate=LEAKER.format(visible=visible_calls()),
                                      clip_is_active=LEAKER_LATER)),
        "amplifier": notebook_bytes(dict(right, clipped_surrogate=AMPLIFIER, clip_is_active=AMPLIFIER_LATER)),
        "deep": b"[" * 200_000 + b"]" * 200_000,
    }
    for student, data in students.items():
        (download / student).mkdir(parents=True)
        (download / student / NOTEBOOK).write_bytes(data)
    (download / "linker-solutions").mkdir()
    (download / "linker-solutions" / NOTEBOOK).symlink_to(SOLUTIONS / LESSON / NOTEBOOK)
    (download / "linker-classmate").mkdir()
    (download / "linker-classmate" / NOTEBOOK).symlink_to(Path("..") / "10001" / NOTEBOOK)
    (download / "mallory" / "nested").mkdir(parents=True)
    blank = notebook_bytes({})
    for forged in (f"victimvictim_10001_999_{NOTEBOOK}", f"Victim_10001_assignsubmission_file_{NOTEBOOK}",
                   f"nested/victimvictim_10001_998_{NOTEBOOK}"):
        (download / "mallory" / forged).write_bytes(blank)
        os.utime(download / "mallory" / forged, (time.time() - 3600, time.time() - 3600))
    (download / "mallory" / NOTEBOOK).write_bytes(notebook_bytes(wrong))   # the newest: her real answers
    (download / "aaa-flood").mkdir()
    for n in range(1000):
        nb = submission(LESSON, wrong)
        nb.metadata["version"] = n
        (download / "aaa-flood" / f"{LESSON} ({n}).ipynb").write_text(nbformat.writes(nb))
    moodle = root / "moodle.zip"
    with zipfile.ZipFile(moodle, "w") as archive:
        archive.writestr(f'=HYPERLINK("evil.example","win")_5001_assignsubmission_file_/{NOTEBOOK}',
                         notebook_bytes(right))
        archive.writestr(f"Eve Mallory_5002_assignsubmission_file_/Victim_5001_assignsubmission_file_{NOTEBOOK}",
                         blank)
    before = tree_digest(download), hashlib.sha256(moodle.read_bytes()).hexdigest()
    course = root / "course"
    runs = {"collect": autograder("collect", download, "--course", course, "--lesson", "03"),
            "collect moodle": autograder("collect", moodle, "--course", course, "--lesson", "03")}
    submitted = tree_digest(course / "submitted")
    runs["grade"] = autograder("grade", "--course", course, "--jobs", "2", "--cell-timeout", "20", "--timeout", "300",
                               "--release-cache", RELEASE_CACHE,
                               "--no-progress")
    runs["feedback"] = autograder("feedback", "--course", course, "--jobs", "2")
    runs["export"] = autograder("export", "--course", course)
    records = {}
    for path in (course / "autograded").glob(f"*/{LESSON}/result.json"):
        records[path.parent.parent.name] = json.loads(path.read_text())
    yield {"root": root, "course": course, "runs": runs, "records": records, "before": before,
           "after": (tree_digest(download), hashlib.sha256(moodle.read_bytes()).hexdigest()),
           "submitted before": submitted, "submitted after": tree_digest(course / "submitted")}
    if not os.environ.get("KEEP_DOORS"):
        shutil.rmtree(root, ignore_errors=True)


def test_every_command_succeeds_for_the_whole_class(doors):
    for name, run in doors["runs"].items():
        assert run.returncode == 0, f"{name} exited {run.returncode}:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
        assert "Traceback" not in run.stderr, f"{name}:\n{run.stderr[-3000:]}"


def test_honest_students_get_full_marks_and_no_cheat_beats_its_twin(doors):
    records, full = doors["records"], sum(points(LESSON).values())
    for student in ("10001", "@SUM_A1", "5001"):
        assert (records[student]["status"], records[student]["total"]) == ("graded", full), records[student]
    twin = records["10002"]["total"]
    assert 0 < twin < full
    for cheat in ("mallory", "-2_3", "aaa-flood", "leaker", "amplifier", "deep", "5002"):
        assert records[cheat]["total"] <= twin, (cheat, records[cheat])
    assert records["leaker"]["scores"]["clipped_surrogate_tests"] == 0, records["leaker"]
    assert records["deep"]["status"] == "unreadable" and "nested too deeply" in records["deep"]["message"]


def test_links_are_never_collected_and_no_one_files_under_another(doors):
    course, records = doors["course"], doors["records"]
    assert "linker-solutions" not in records and "linker-classmate" not in records, sorted(records)
    assert sorted(p.name for p in (course / "submitted" / "10001" / LESSON).iterdir()) == [NOTEBOOK]
    assert sorted(p.name for p in (course / "submitted" / "5001" / LESSON).iterdir()) == [NOTEBOOK]
    assert len(list((course / "submitted" / "mallory" / LESSON).iterdir())) == 4
    assert records["mallory"]["review"] and "4 files handed in together" in records["mallory"]["review"][0]
    out = doors["runs"]["collect"].stdout
    assert "layout: a folder per student" in out and out.count("a symbolic link: not followed") == 2, out
    assert "layout: Moodle" in doors["runs"]["collect moodle"].stdout


def test_one_student_flooding_did_not_stop_the_class(doors):
    assert len(list((doors["course"] / "submitted" / "aaa-flood" / LESSON).iterdir())) == 20
    assert doors["records"]["aaa-flood"]["review"], "20 notebooks handed in together: flagged for review"
    assert "aaa-flood: 975 more files skipped" in doors["runs"]["collect"].stdout


def csv_cells(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as handle:
        return [cell for row in csv.reader(handle) for cell in row]


def test_no_csv_cell_is_a_formula(doors):
    course = doors["course"]
    gradebook = (course / "gradebook.csv").read_text()
    assert "HYPERLINK" in gradebook and "@SUM_A1" in gradebook and "review" in gradebook, gradebook[:2000]
    for name in ("gradebook.csv", "collected.csv"):
        for cell in csv_cells(course / name):
            assert not cell.startswith(FORMULA_STARTS) or PLAIN_NUMBER.fullmatch(cell), (name, cell)


def test_a_spreadsheet_evaluates_no_cell(doors, tmp_path):
    """LibreOffice Calc (headless) opens the CSVs: no cell may hold a formula. Skipped where it is not installed
    (CI does not install it: see the instructor guide)."""
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:
        pytest.skip("LibreOffice is not installed (apt-get install libreoffice-calc-nogui)")
    for name in ("gradebook.csv", "collected.csv"):
        shutil.copy(doors["course"] / name, tmp_path / name)
        run = subprocess.run([soffice, f"-env:UserInstallation=file://{tmp_path}/profile", "--headless",
                              "--infilter=CSV:44,34,76,1", "--convert-to", "fods", "--outdir", str(tmp_path),
                              str(tmp_path / name)], capture_output=True, text=True, timeout=300)
        converted = tmp_path / name.replace(".csv", ".fods")
        assert converted.exists(), run.stdout + run.stderr
        sheet = converted.read_text()
        assert "HYPERLINK" in sheet or name == "collected.csv" and "SUM" in sheet
        assert "table:formula" not in sheet, f"LibreOffice read a formula from {name}"


def hidden_only_numbers() -> set[str]:
    """Numbers the hidden tests hold that nothing in the released notebook shows."""
    source = nbformat.read(lesson_notebook(LESSON), as_version=4)
    released = nbformat.read(lesson_notebook(LESSON, LESSONS), as_version=4)
    text = "\n".join(c.source for c in source.cells)
    hidden = "\n".join(re.findall(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", text, re.S))
    return numbers_in(hidden) - numbers_in("\n".join(c.source for c in released.cells))


def page_text(path: Path) -> str:
    """What a reader of the page sees: styles and scripts gone, tags gone, entities decoded."""
    page = re.sub(r"<(style|script)\b.*?</\1>", "", path.read_text(), flags=re.S | re.I)
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def test_no_feedback_page_shows_a_hidden_input_or_expected_value(doors):
    secrets = hidden_only_numbers()
    assert len(secrets) > 5, secrets
    pages = sorted((doors["course"] / "feedback").rglob("*.html"))
    assert len(pages) == len(doors["records"]), "every graded student gets a page"
    for page in pages:
        text = page_text(page)
        shown = numbers_in(text) & secrets
        assert not shown, f"{page}: hidden test numbers on the page: {sorted(shown)}"
        assert "LEAKED" not in text and "HIDDEN TESTS" not in text, page
    leaker = page_text(doors["course"] / "feedback" / "leaker" / LESSON / f"{LESSON}.html")
    assert "a hidden test failed: your code raised ValueError" in leaker, leaker[-3000:]
    assert "a visible test failed when the tests ran again after the hidden ones" in leaker


def test_no_file_passes_the_bound(doors):
    course = doors["course"]
    for path in (course / "autograded").rglob("*"):
        if path.is_file():
            assert path.stat().st_size <= MAX_GRADED_NOTEBOOK_BYTES, (path, path.stat().st_size)
    for path in (course / "feedback").rglob("*.html"):
        assert path.stat().st_size <= MAX_PAGE_CHARS * 4, (path, path.stat().st_size)   # (UTF-8 bytes)
        assert len(path.read_text()) <= MAX_PAGE_CHARS, path
    amplified = course / "autograded" / "amplifier" / LESSON / NOTEBOOK
    assert amplified.stat().st_size < 2 * 2**20, amplified.stat().st_size


def test_every_submitted_file_is_unchanged(doors):
    assert doors["before"] == doors["after"], "the download changed"
    assert doors["submitted before"] == doors["submitted after"], "a collected file changed while grading"
