"""The grader's doors, without kernels: what ``collect`` lets in, and what leaves as CSV, terminal lines and
feedback text. Each test is a door a student tried (tests/test_hostile_doors.py grades a whole class that
tries them all, through the command line)."""
from __future__ import annotations

import csv
import io
import json
import os
import stat
import zipfile
from pathlib import Path

import pytest

from ppo_course.autograder.commands import collect as collect_module
from ppo_course.autograder.commands import feedback as feedback_module
from ppo_course.autograder.commands.cli import main
from ppo_course.autograder.grading.hidden import authored_text, elided, hidden_failure_message, numbers_in, visible_form
from ppo_course.autograder.grading.rebuild import SubmissionError, read_submission
from ppo_course.autograder.text import printable, spreadsheet_cell

from conftest import REPO

LESSON = "03-clipped-surrogate"
SOURCE_NOTEBOOK = REPO / "solutions" / LESSON / f"{LESSON}.ipynb"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def stored(course: Path) -> list[str]:
    return sorted(p.relative_to(course / "submitted").as_posix() for p in (course / "submitted").rglob("*")
                  if p.is_file())


def log(course: Path) -> list[dict]:
    with open(course / "collected.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def zip_with(path: Path, entries: dict[str, bytes], links: dict[str, str] = {}) -> Path:  # noqa: B006
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
        for name, target in links.items():   # as `zip --symlinks` stores them
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return path


# ------------------------------------------------------------------ regular files only


def test_links_and_special_files_are_skipped_never_followed(tmp_path, capsys):
    download = tmp_path / "download"
    for student in ("alice", "bob", "carol", "dan", "erin", "frank"):
        (download / student).mkdir(parents=True)
    (download / "carol" / f"{LESSON}.ipynb").write_bytes(b"carol's own work")
    (download / "frank" / "nested" / "deeper").mkdir(parents=True)
    (download / "frank" / "nested" / "deeper" / f"{LESSON}.ipynb").write_bytes(b"frank's own work")
    (download / "alice" / f"{LESSON}.ipynb").symlink_to(SOURCE_NOTEBOOK)                  # the course's solutions
    (download / "bob" / f"{LESSON}.ipynb").symlink_to(Path("..") / "carol" / f"{LESSON}.ipynb")   # a classmate's
    (download / "dan" / "carols").symlink_to(download / "carol", target_is_directory=True)
    os.mkfifo(download / "erin" / f"{LESSON}.ipynb")                                      # would block a reader
    course = tmp_path / "course"
    code, out, _ = run(["collect", download, "--course", course, "--lesson", "03"], capsys)
    assert code == 0, out
    assert stored(course) == [f"carol/{LESSON}/{LESSON}.ipynb", f"frank/{LESSON}/{LESSON}.ipynb"], (
        "only the two regular files may be collected: a link to the course's solutions, to a classmate's file or "
        f"folder, and a pipe are never read:\n{out}")
    reasons = {row["entry"]: row["outcome"] for row in log(course) if row["outcome"].startswith("skipped")}
    assert "symbolic link" in reasons[f"alice/{LESSON}.ipynb"] and "symbolic link" in reasons[f"bob/{LESSON}.ipynb"]
    assert "symbolic link" in reasons["dan/carols"] and "not a regular file" in reasons[f"erin/{LESSON}.ipynb"], (
        f"each skipped entry must be in collected.csv with its reason: {reasons}")
    assert out.count("symbolic link") == 3 and "not a regular file" in out, f"and in the summary:\n{out}"


def test_links_in_a_zip_are_skipped(tmp_path, capsys):
    upload = zip_with(tmp_path / "canvas.zip", {f"carolcarol_301_1_{LESSON}.ipynb": b"carol's own work"},
                      links={f"bobbob_302_1_{LESSON}.ipynb": str(SOURCE_NOTEBOOK),
                             f"evee_303_1_{LESSON}.ipynb": f"../../../{LESSON}.ipynb"})
    course = tmp_path / "course"
    code, out, _ = run(["collect", upload, "--course", course, "--lesson", "03"], capsys)
    assert code == 0 and stored(course) == [f"301/{LESSON}/{LESSON}.ipynb"], out
    assert out.count("a symbolic link in the zip") == 2, out


# ------------------------------------------------------------------ whose file is it


@pytest.mark.parametrize("pattern", ["auto", "folders"])
def test_a_file_in_ones_folder_is_never_filed_under_another(tmp_path, capsys, pattern):
    download = tmp_path / "download"
    (download / "10001").mkdir(parents=True)
    (download / "10001" / f"{LESSON}.ipynb").write_bytes(b"the victim's correct work")
    (download / "mallory" / "sub").mkdir(parents=True)
    for forged in (f"victimvictim_10001_99999_{LESSON}.ipynb",
                   f"Victim Name_10001_assignsubmission_file_{LESSON}.ipynb",
                   f"sub/victimvictim_LATE_10001_1_{LESSON}.ipynb"):
        (download / "mallory" / forged).write_bytes(b"blank, to replace the victim's")
    course = tmp_path / "course"
    code, out, _ = run(["collect", download, "--course", course, "--lesson", "03", "--id-pattern", pattern], capsys)
    assert code == 0 and "layout: a folder per student" in out, out
    victim = [p for p in stored(course) if p.startswith("10001/")]
    assert victim == [f"10001/{LESSON}/{LESSON}.ipynb"], f"nothing may be filed under the victim's id: {stored(course)}"
    assert sum(p.startswith("mallory/") for p in stored(course)) == 3, "mallory's files stay mallory's"


def test_moodle_folders_cannot_be_forged_from_inside(tmp_path, capsys):
    entries = {
        f"Victim Name_222_assignsubmission_file_/{LESSON}.ipynb": b"the victim's work",
        f"Mallory Evil_111_assignsubmission_file_/Victim Name_222_assignsubmission_file_{LESSON}.ipynb": b"forged",
        f"Mallory Evil_111_assignsubmission_file_/x/Victim Name_222_assignsubmission_file_/{LESSON}.ipynb": b"forged",
        f"Mallory Evil_111_assignsubmission_file_/victimvictim_222_1_{LESSON}.ipynb": b"forged",
    }
    for pattern in ("auto", "moodle"):
        course = tmp_path / pattern
        code, out, _ = run(["collect", zip_with(tmp_path / "moodle.zip", entries), "--course", course, "--lesson", "03",
                            "--id-pattern", pattern], capsys)
        assert code == 0 and "layout: Moodle" in out, out
        assert [p for p in stored(course) if p.startswith("222/")] == [f"222/{LESSON}/{LESSON}.ipynb"], (
            f"--id-pattern {pattern}: a file inside Mallory's Moodle folder must stay Mallory's: {stored(course)}")
        assert sum(p.startswith("111/") for p in stored(course)) == 3


def test_canvas_names_are_read_at_the_top_only_and_from_the_left(tmp_path, capsys):
    upload = zip_with(tmp_path / "canvas.zip", {
        f"victimvictim_222_5_{LESSON}.ipynb": b"the victim's work",
        f"mallorymallory_111_6_victimvictim_222_7_{LESSON}.ipynb": b"forged by its original name",
        f"folder/victimvictim_222_8_{LESSON}.ipynb": b"not a Canvas entry",
    })
    course = tmp_path / "course"
    code, out, _ = run(["collect", upload, "--course", course, "--lesson", "03", "--id-pattern", "canvas"], capsys)
    assert code == 0, out
    assert stored(course) == [f"111/{LESSON}/victimvictim_222_7_{LESSON}.ipynb", f"222/{LESSON}/{LESSON}.ipynb"], (
        stored(course))
    assert f"skipped folder/victimvictim_222_8_{LESSON}.ipynb: no student id" in out, out


def test_a_custom_pattern_takes_the_id_from_the_top_level_only(tmp_path, capsys):
    download = tmp_path / "download"
    (download / "s222").mkdir(parents=True)
    (download / "s222" / "work.ipynb").write_bytes(b"victim")
    (download / "mallory").mkdir()
    (download / "mallory" / "s222-work.ipynb").write_bytes(b"forged")
    course = tmp_path / "course"
    code, out, _ = run(["collect", download, "--course", course, "--lesson", "03", "--id-pattern",
                        r"(?P<student>s\d+)"], capsys)
    assert code == 0 and stored(course) == ["s222/03-clipped-surrogate/work.ipynb"], (stored(course), out)
    assert "skipped mallory/s222-work.ipynb: no student id" in out, out


@pytest.mark.parametrize("entries, layout", [
    ({f"smithjane_12_34_{LESSON}.ipynb": b"x", f"doejohn_56_78_{LESSON}.ipynb": b"y", "readme.txt": b"z"}, "Canvas"),
    ({f"Jane Smith_12_assignsubmission_file_/{LESSON}.ipynb": b"x",
      f"John Doe_56_assignsubmission_file_{LESSON}.ipynb": b"y"}, "Moodle"),
    ({f"jsmith/{LESSON}.ipynb": b"x", f"jdoe/work/{LESSON}.ipynb": b"y"}, "a folder per student"),
])
def test_auto_chooses_one_layout_for_the_download_and_says_which(tmp_path, capsys, entries, layout):
    code, out, _ = run(["collect", zip_with(tmp_path / "d.zip", entries), "--course", tmp_path / "c", "--lesson", "03"],
                       capsys)
    assert code == 0 and f"layout: {layout}" in out and "collected 2 file(s) from 2 student(s)" in out, out


def test_a_folder_around_a_download_is_one_students_never_read_as_a_layout(tmp_path, capsys):
    """What is inside a folder may be a student's doing, so it never decides whose files are whose."""
    entries = {f"mallory/victimvictim_12_34_{LESSON}.ipynb": b"x", f"mallory/doejohn_56_78_{LESSON}.ipynb": b"y",
               f'=HYPERLINK("http://x")_5_assignsubmission_file_/{LESSON}.ipynb': b"z"}
    code, out, _ = run(["collect", zip_with(tmp_path / "d.zip", entries), "--course", tmp_path / "c", "--lesson", "03"],
                       capsys)
    assert code == 0 and stored(tmp_path / "c") == [f"mallory/{LESSON}/doejohn_56_78_{LESSON}.ipynb",
                                                    f"mallory/{LESSON}/victimvictim_12_34_{LESSON}.ipynb"], out
    assert "the whole download went to one student, mallory" in out, out


# ------------------------------------------------------------------ limits per student, a log as it goes


def test_one_student_cannot_stop_the_class(tmp_path, capsys):
    download = tmp_path / "download"
    (download / "aaa-flood").mkdir(parents=True)
    for n in range(1000):
        (download / "aaa-flood" / f"{LESSON} ({n}).ipynb").write_bytes(f"version {n}".encode())
    for student in ("bob", "carol"):
        (download / student).mkdir()
        (download / student / f"{LESSON}.ipynb").write_bytes(student.encode())
    course = tmp_path / "course"
    code, out, err = run(["collect", download, "--course", course, "--lesson", "03"], capsys)
    assert code == 0, err
    files = stored(course)
    assert f"bob/{LESSON}/{LESSON}.ipynb" in files and f"carol/{LESSON}/{LESSON}.ipynb" in files, (
        "students sorted after the flooder must still be collected")
    assert sum(p.startswith("aaa-flood/") for p in files) == collect_module.MAX_FILES_PER_STUDENT
    assert len(out.splitlines()) < 60, f"a flood must not flood the terminal:\n{out[:2000]}"
    rows = log(course)
    assert sum(r["outcome"] == "stored" for r in rows) == collect_module.MAX_FILES_PER_STUDENT + 2
    assert any("more files of this student" in r["outcome"] for r in rows), "the excess is counted in collected.csv"
    code, out, _ = run(["collect", download, "--course", course, "--lesson", "03"], capsys)
    assert code == 0 and "collected 0 file(s)" in out and stored(course) == files, (
        f"a second run must continue, not stop, and store nothing twice:\n{out}")


def test_rows_reach_the_log_as_files_are_stored(tmp_path, capsys, monkeypatch):
    download = tmp_path / "download"
    for student in ("a1", "a2", "a3", "a4", "a5"):
        (download / student).mkdir(parents=True)
        (download / student / f"{LESSON}.ipynb").write_bytes(student.encode())
    real_store, calls = collect_module.StudentFolder.store, []

    def store_then_stop(self, *args):
        if len(calls) == 3:
            raise KeyboardInterrupt   # Ctrl-C, a full disk, a killed process: the run stops here
        calls.append(args)
        return real_store(self, *args)

    monkeypatch.setattr(collect_module.StudentFolder, "store", store_then_stop)
    course = tmp_path / "course"
    assert main(["collect", str(download), "--course", str(course), "--lesson", "03"]) == 130
    assert "run the same command again to continue" in capsys.readouterr().err
    assert [r["student"] for r in log(course) if r["outcome"] == "stored"] == ["a1", "a2", "a3"], (
        "each stored file must be in collected.csv as soon as it is stored")
    monkeypatch.setattr(collect_module.StudentFolder, "store", real_store)
    assert main(["collect", str(download), "--course", str(course), "--lesson", "03"]) == 0
    assert [r["student"] for r in log(course) if r["outcome"] == "stored"] == ["a1", "a2", "a3", "a4", "a5"]


def test_an_older_log_gets_the_new_columns(tmp_path, capsys):
    course = tmp_path / "course"
    course.mkdir()
    old = "collected_at,source,entry,student,name,lesson,stored_as,bytes,sha256\n" \
          f"2026-01-01T00:00:00,x.zip,e,jane,Jane,{LESSON},submitted/jane/{LESSON}/a.ipynb,3,abc\n"
    (course / "collected.csv").write_text(old)
    (tmp_path / "d" / "bob").mkdir(parents=True)
    (tmp_path / "d" / "bob" / "w.ipynb").write_bytes(b"bob")
    assert run(["collect", tmp_path / "d", "--course", course, "--lesson", "03"], capsys)[0] == 0
    rows = log(course)
    assert [(r["student"], r["name"], r["outcome"]) for r in rows] == [
        ("jane", "Jane", "stored"), ("bob", "", "stored")]


# ------------------------------------------------------------------ spreadsheets and terminals


@pytest.mark.parametrize("value, cell", [
    ("=HYPERLINK(\"http://x\",\"y\")", "'=HYPERLINK(\"http://x\",\"y\")"), ("+1+2", "'+1+2"), ("-x", "'-x"),
    ("@SUM(A1)", "'@SUM(A1)"), ("\t=1", "'\t=1"), ("\r=1", "'\r=1"), ("\uff1d1+1", "'\uff1d1+1"),
    ("-3", "-3"), ("+2.5", "+2.5"), ("-1e-3", "-1e-3"), (7.5, "7.5"), ("jane", "jane"), ("", ""), (None, ""),
])
def test_spreadsheet_cells(value, cell):
    assert spreadsheet_cell(value) == cell


def test_names_from_the_download_reach_no_csv_as_formulas(tmp_path, capsys):
    upload = zip_with(tmp_path / "moodle.zip", {
        f'=HYPERLINK("http://evil.example","win")_401_assignsubmission_file_/{LESSON}.ipynb': b"{}",
        "@SUM(1+1)_402_assignsubmission_file_/-2+3.ipynb": b"{}",
        f"+cmd|' /C calc'!A0_403_assignsubmission_file_/{LESSON}.ipynb": b"{}",
    })
    course = tmp_path / "course"
    assert run(["collect", upload, "--course", course, "--lesson", "03"], capsys)[0] == 0
    text = (course / "collected.csv").read_text()
    assert '=HYPERLINK' in text, "the name is kept (as text)"
    for row in csv.reader(io.StringIO(text)):
        for value in row:
            assert not value.startswith(FORMULA_STARTS) or value.lstrip("+-").replace(".", "", 1).isdigit(), (
                f"a cell of collected.csv a spreadsheet would evaluate: {value!r}")


def test_terminal_lines_carry_no_escape_codes():
    assert printable("a\x1b[2J\x1b[31mred\u202eevil\x00") == "a\\x1b[2J\\x1b[31mred\\u202eevil\\x00"
    assert len(printable("x" * 10_000)) == 300
    assert printable("caf\udce9") == "caf\ufffd"   # a file name's undecodable byte


# ------------------------------------------------------------------ unreadable however it fails


@pytest.mark.parametrize("data, why", [
    (b"[" * 200_000 + b"]" * 200_000, "nested too deeply"),
    (b'{"cells": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested too deeply"),
    (b'{"nbformat": 4, "cells": {"a": 1}}', "without cells"),
])
def test_a_notebook_that_cannot_be_parsed_is_unreadable(data, why):
    with pytest.raises(SubmissionError, match=why) as caught:
        read_submission(data)
    assert caught.value.status == "unreadable"


def test_odd_cell_fields_are_read_as_nothing():
    cells = read_submission(json.dumps({"cells": [
        {"cell_type": "code", "source": [["nested"], 3, "x = 1"], "metadata": [1]},
        {"cell_type": 5, "source": {"a": 1}, "metadata": {"nbgrader": {"grade_id": ["x"], "solution": True}}},
    ]}).encode())
    assert cells == [{"cell_type": "code", "source": "x = 1", "metadata": {}},
                     {"cell_type": "raw", "source": "", "metadata": {"nbgrader": {"solution": True}}}]


# ------------------------------------------------------------------ hidden tests' values


HIDDEN_CELL = '''assert_close(f(1.0), 2.0, "visible check", "double it")
### BEGIN HIDDEN TESTS
for eps in (0.15, 0.35):
    assert_close(f(eps), expected(eps), f"f at eps={eps}", "Use the eps argument, not 0.2.")
got = f(7.25)
assert got == [1, 2, 3], f"expected [1, 2, 3] for 7.25, got {got}"
check(f(9.5), "the mask at " + str(9.5) + " and beyond")
### END HIDDEN TESTS
'''


def test_the_visible_form_is_what_the_learner_sees():
    assert visible_form(HIDDEN_CELL) == 'assert_close(f(1.0), 2.0, "visible check", "double it")\n'


def test_the_page_check_reads_hidden_blocks_as_the_grader_does(tmp_path):
    """The feedback page's leak check finds the hidden lines wherever the grader finds hidden blocks: an
    indented marker, or one with words after it, too (the check's own pattern once missed both)."""
    cell = HIDDEN_CELL.replace("### BEGIN HIDDEN TESTS", "    ### BEGIN HIDDEN TESTS (edge cases)")
    notebook = tmp_path / "graded.ipynb"
    notebook.write_text(json.dumps({"cells": [{"cell_type": "code", "source": cell, "metadata": {}}]}))
    found = feedback_module.hidden_lines(notebook)
    assert "got = f(7.25)" in found and not any("HIDDEN TESTS" in line for line in found), found
    assert "visible check" not in " ".join(found), "a visible line is not hidden"


@pytest.mark.parametrize("line, shown", [
    (4, "f at eps=…. Use the eps argument, not 0.2"),
    (6, "expected … for …, got …"),
    (7, "the mask at … and beyond"),
])
def test_a_hidden_check_shows_its_words_without_values(line, shown):
    visible = numbers_in(visible_form(HIDDEN_CELL)) | numbers_in("eps = 0.2")
    assert elided(authored_text(HIDDEN_CELL, line), visible) == shown


def test_a_learners_exception_in_a_hidden_check_is_named_not_quoted():
    error = ValueError("((0.15,), {}) and [1, 2, 3]")
    error.raised_by_learner = True
    message = hidden_failure_message(error, HIDDEN_CELL, 4, set(), {"ValueError": ValueError})
    assert message == "a hidden test failed: your code raised ValueError (hidden tests do not show its message)"
    odd = type("Leak_0_15", (Exception,), {})("x")
    odd.raised_by_learner = True
    assert "Leak" not in hidden_failure_message(odd, HIDDEN_CELL, 4, set(), {"ValueError": ValueError})


# ------------------------------------------------------------------ feedback and export: never one student's fault


def test_one_students_broken_files_never_fail_feedback_or_export(tmp_path, capsys):
    course = tmp_path / "course"
    for student, notebook in (("broken", "{ not a notebook"), ("damaged", None)):
        folder = course / "autograded" / student / LESSON
        folder.mkdir(parents=True)
        record = {"student": student, "lesson": LESSON, "status": "graded", "message": "", "notes": [],
                  "review": [], "scores": {"clipped_surrogate_tests": 4.0}, "max": 10.0, "total": 4.0}
        (folder / "result.json").write_text(json.dumps(record) if notebook else '{"student": "dam')
        if notebook:
            (folder / f"{LESSON}.ipynb").write_text(notebook)
            (folder / "gradebook.db").write_bytes(b"")
    failed = course / "autograded" / "failed" / LESSON   # a grading that failed: its page says so
    failed.mkdir(parents=True)
    (failed / "result.json").write_text(json.dumps({
        "student": "failed", "lesson": LESSON, "status": "error", "message": "the grader exited with status 1",
        "notes": [], "review": [], "scores": {}, "max": 10.0, "total": 0.0}))
    code, out, err = run(["feedback", "--course", course, "--jobs", "1"], capsys)
    assert code == 0, err
    assert "scores only" in err and "broken" in err, err
    assert "wrote the feedback of 2 submission(s)" in out and "failed" not in err, (out, err)
    assert (course / "feedback" / "failed" / LESSON / f"{LESSON}.html").is_file()
    page = (course / "feedback" / "broken" / LESSON / f"{LESSON}.html").read_text()
    assert "Score: 4 / 10" in page and "could not be made" in page, page
    code, out, err = run(["export", "--course", course], capsys)
    assert code == 0, err
    gradebook = (course / "gradebook.csv").read_text()
    assert "damaged" in gradebook and "cannot be read" in gradebook, gradebook
