"""Grades any LMS imports: ``export --format canvas`` and ``--format moodle``, checked against the layouts the LMSs
document, on a course collected from each LMS's own download (no grading needed: the results are written here).

Canvas's layout, as its importer reads it (instructure/canvas-lms, app/models/gradebook_importer.rb): a header row
whose first cell holds "Student" and second "ID"; "SIS User ID" and "SIS Login ID" before "Section", the last
student column; each other column an assignment, "Title (assignment id)" matching the assignment by id (a bare
title by title, else a new assignment); a row whose first cell holds "Points Possible" gives each assignment's
points; every other row a student, found by ID, then SIS User ID, then SIS Login ID. Moodle's (docs.moodle.org,
Grade import): a header row, one row per user, one column chosen as the identifier and mapped to the users'
userid, username, ID number or email address, every other column mapped to a grade item (or ignored).
"""
from __future__ import annotations

import contextlib
import csv
import json
import re
import zipfile

import pytest

from ppo_course.autograder.commands.cli import main

LESSON = "03-clipped-surrogate"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def run(argv, capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def graded(course, student: str, total: float | None, status: str = "graded", manual: dict | None = None) -> None:
    folder = course / "autograded" / student / LESSON
    folder.mkdir(parents=True)
    record = {"student": student, "lesson": LESSON, "status": status, "message": "", "notes": [], "review": [],
              "scores": {} if total is None else {"clipped_surrogate_tests": total}, "max": 10.0,
              "total": total or 0, "manual": manual or {}}
    (folder / "result.json").write_text(json.dumps(record))


def collected(tmp_path, capsys, entries: dict[str, bytes], name: str):
    course = tmp_path / "course"
    with zipfile.ZipFile(tmp_path / name, "w") as archive:
        for entry, data in entries.items():
            archive.writestr(entry, data)
    code, out, err = run(["collect", tmp_path / name, "--course", course, "--lesson", "03"], capsys)
    assert code == 0, out + err
    return course


def rows_of(path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def read_as_canvas(path) -> dict:
    """What Canvas's gradebook importer makes of the file (its rules, above)."""
    header, *rows = rows_of(path)
    assert "Student" in header[0] and "ID" in header[1] and len(header) > 3, header
    assert header[2:5] == ["SIS User ID", "SIS Login ID", "Section"], "SIS columns, then Section (the last one)"
    assignments = []
    for title in header[5:]:
        found = re.fullmatch(r"(.*) \((\d+)\)", title)
        assignments.append({"title": found.group(1) if found else title, "id": found.group(2) if found else None})
    points = [row for row in rows if "Points Possible" in row[0]]
    assert len(points) == 1, "one Points Possible row"
    for assignment, value in zip(assignments, points[0][5:]):
        assignment["points"] = float(value)
    students = {}
    for row in rows:
        if "Points Possible" in row[0]:
            continue
        key = next((f"{column}:{value}" for column, value in zip(header[1:4], row[1:4]) if value), None)
        assert key and key not in students, f"every student row must be found by ID, SIS User ID or Login ID: {row}"
        students[key] = {"name": row[0], "section": row[4],
                         **{a["title"]: (float(v) if v else None) for a, v in zip(assignments, row[5:])}}
    return {"assignments": assignments, "students": students}


def canvas_course(tmp_path, capsys):
    course = collected(tmp_path, capsys, {
        f"smithjane_4001_11_{LESSON}.ipynb": b"a",
        f"doejohn_LATE_4002_12_{LESSON}.ipynb": b"b",
        f"=HYPERLINK(x)_4003_13_{LESSON}.ipynb": b"c",
        f"Points Possible_4004_14_{LESSON}.ipynb": b"d",
        f"erroredeve_4005_15_{LESSON}.ipynb": b"e",
    }, "canvas.zip")
    graded(course, "4001", 10.0)
    graded(course, "4002", 6.0)
    graded(course, "4003", 0.0, status="unreadable")
    graded(course, "4004", 3.5)
    graded(course, "4005", None, status="error")
    return course


def test_canvas_export_has_canvas_layout_and_its_user_ids(tmp_path, capsys):
    course = canvas_course(tmp_path, capsys)
    code, out, err = run(["export", "--course", course, "--format", "canvas", "--lms-assignment", "03=98765"], capsys)
    assert code == 0 and "canvas-grades.csv (canvas): 5 student(s)" in out, out + err
    canvas = read_as_canvas(course / "canvas-grades.csv")
    assert canvas["assignments"] == [{"title": LESSON, "id": "98765", "points": 10.0}], (
        "one column per assignment, matched to the Canvas assignment by its id, with its points")
    students = canvas["students"]
    assert set(students) == {f"ID:{n}" for n in range(4001, 4006)}, "Canvas's user ids, as collect read them"
    assert [students[f"ID:{n}"][LESSON] for n in range(4001, 4006)] == [10.0, 6.0, 0.0, 3.5, None], (
        "each total; a submission the grader failed on is left blank (no grade), never 0")
    assert students["ID:4001"]["name"] == "smithjane" and students["ID:4004"]["name"] == "", (
        "a name that would make Canvas read the row as the Points Possible row is left out (the ID finds it)")
    assert "1 submission(s) not graded" in err and "4005" in err, err
    assert not [c for row in rows_of(course / "canvas-grades.csv") for c in row if c.startswith(FORMULA_STARTS)]


def test_canvas_export_without_an_lms_id_matches_by_title(tmp_path, capsys):
    course = canvas_course(tmp_path, capsys)
    assert run(["export", "--course", course, "--format", "canvas", "--output", tmp_path / "c.csv"], capsys)[0] == 0
    assert read_as_canvas(tmp_path / "c.csv")["assignments"][0]["id"] is None


CANVAS_ROSTER = (
    "Student,ID,SIS User ID,SIS Login ID,Section,03-clipped-surrogate (98765),Current Score\n"
    "    Points Possible,,,,,10,(read only)\n"
    '"Smith, Jane",4001,S-1,jsmith,Lab A,,\n'
    '"Roe, Rick",4010,S-10,rroe,Lab B,,\n'
)


def test_canvas_export_with_the_canvas_roster_fills_the_sis_columns(tmp_path, capsys):
    download = tmp_path / "download"
    for folder in ("jsmith", "rroe", "stranger"):
        (download / folder).mkdir(parents=True)
        (download / folder / f"{LESSON}.ipynb").write_bytes(b"x")
    course = tmp_path / "course"
    assert run(["collect", download, "--course", course, "--lesson", "03"], capsys)[0] == 0
    for student, total in (("jsmith", 9.0), ("rroe", 4.0), ("stranger", 7.0)):
        graded(course, student, total)
    (tmp_path / "roster.csv").write_text(CANVAS_ROSTER)
    code, out, err = run(["export", "--course", course, "--format", "canvas", "--roster", tmp_path / "roster.csv"],
                         capsys)
    assert code == 0, err
    students = read_as_canvas(course / "canvas-grades.csv")["students"]
    assert students == {"ID:4001": {"name": "Smith, Jane", "section": "Lab A", LESSON: 9.0},
                        "ID:4010": {"name": "Roe, Rick", "section": "Lab B", LESSON: 4.0}}, students
    assert "stranger: not in the roster" in err, "a student the roster does not know is named, never guessed"


def test_canvas_export_without_a_roster_says_what_it_could_not_match(tmp_path, capsys):
    download = tmp_path / "download"
    (download / "jsmith").mkdir(parents=True)
    (download / "jsmith" / f"{LESSON}.ipynb").write_bytes(b"x")
    course = tmp_path / "course"
    assert run(["collect", download, "--course", course, "--lesson", "03"], capsys)[0] == 0
    graded(course, "jsmith", 9.0)
    code, out, err = run(["export", "--course", course, "--format", "canvas"], capsys)
    assert code == 0 and "did not come from a Canvas download" in err and "--roster" in err, err
    assert read_as_canvas(course / "canvas-grades.csv")["students"] == {
        "SIS Login ID:jsmith": {"name": "", "section": "", LESSON: 9.0}}


def read_as_moodle(path, identifier: str) -> dict[str, dict[str, str]]:
    """Moodle's CSV grade import: a header, one row per user, the identifier column unique and never empty,
    every grade column a number or blank."""
    header, *rows = rows_of(path)
    assert len(set(header)) == len(header) and identifier in header, header
    by_user = {}
    for row in rows:
        user = dict(zip(header, row))
        assert user[identifier] and user[identifier] not in by_user, f"a row Moodle cannot map to one user: {row}"
        by_user[user.pop(identifier)] = user
    return by_user


MOODLE_ROSTER = (
    "First name,Last name,ID number,Institution,Department,Email address,Last downloaded from this course\n"
    "Jane,Smith,S-1,,,jane@example.edu,1700000000\n"
    "Rick,Roe,S-10,,,rick@example.edu,1700000000\n"
    "Sam,Same,S-20,,,sam1@example.edu,1700000000\n"
    "Sam,Same,S-21,,,sam2@example.edu,1700000000\n"
)


def moodle_course(tmp_path, capsys):
    course = collected(tmp_path, capsys, {
        f"Jane Smith_501_assignsubmission_file_/{LESSON}.ipynb": b"a",
        f"Rick Roe_502_assignsubmission_file_/{LESSON}.ipynb": b"b",
        f"Sam Same_503_assignsubmission_file_/{LESSON}.ipynb": b"c",
        f"Nobody Known_504_assignsubmission_file_/{LESSON}.ipynb": b"d",
    }, "moodle.zip")
    for student, total in (("501", 10.0), ("502", 2.5), ("503", 7.0), ("504", 1.0)):
        graded(course, student, total)
    return course


def test_moodle_export_matches_participants_by_name_to_their_email(tmp_path, capsys):
    course = moodle_course(tmp_path, capsys)
    (tmp_path / "roster.csv").write_text(MOODLE_ROSTER)
    code, out, err = run(["export", "--course", course, "--format", "moodle", "--roster", tmp_path / "roster.csv"],
                         capsys)
    assert code == 0 and "moodle-grades.csv (moodle): 2 student(s)" in out, out + err
    users = read_as_moodle(course / "moodle-grades.csv", "Email address")
    assert users == {"jane@example.edu": {"Full name": "Jane Smith", LESSON: "10"},
                     "rick@example.edu": {"Full name": "Rick Roe", LESSON: "2.5"}}, users
    assert "503 (Sam Same): several rows of the roster" in err and "504 (Nobody Known): not in the roster" in err, (
        "a name shared by two users, or unknown, is never guessed: the student is named and left out")


def test_moodle_participant_numbers_are_never_exported_as_user_ids(tmp_path, capsys):
    """Moodle's download numbers its folders by the assignment's participant number, not the user id: a file
    that mapped them to userid would give grades to the wrong people."""
    course = moodle_course(tmp_path, capsys)
    code, out, err = run(["export", "--course", course, "--format", "moodle"], capsys)
    assert code == 2 and "participant numbers" in err and "--roster" in err, out + err
    assert not (course / "moodle-grades.csv").exists()


def test_moodle_export_of_usernames_needs_no_roster(tmp_path, capsys):
    download = tmp_path / "download"
    for folder in ("jsmith", "rroe"):
        (download / folder).mkdir(parents=True)
        (download / folder / f"{LESSON}.ipynb").write_bytes(b"x")
    course = tmp_path / "course"
    assert run(["collect", download, "--course", course, "--lesson", "03"], capsys)[0] == 0
    graded(course, "jsmith", 8.0)
    graded(course, "rroe", 0.0, manual={"essay": 2.0})
    code, out, err = run(["export", "--course", course, "--format", "moodle"], capsys)
    assert code == 0, err
    assert read_as_moodle(course / "moodle-grades.csv", "ID") == {
        "jsmith": {"Full name": "", LESSON: "8"}, "rroe": {"Full name": "", LESSON: "0"}}
    assert "still lack the points of manually graded cells" in err, err


def test_the_default_format_is_the_gradebook(tmp_path, capsys):
    course = canvas_course(tmp_path, capsys)
    assert run(["export", "--course", course], capsys)[0] == 0
    assert rows_of(course / "gradebook.csv")[0][:2] == ["student_id", "name"]
    assert not (course / "canvas-grades.csv").exists()


@pytest.mark.parametrize("argv, message", [
    (["--format", "blackboard"], "invalid choice"),
    (["--format", "canvas", "--lms-assignment", "03=abc"], "is not ASSIGNMENT=ID"),
    (["--format", "canvas", "--lms-assignment", "99=12"], "unknown assignment '99'"),
    (["--format", "moodle", "--roster", "/nonexistent.csv"], "no roster file"),
])
def test_bad_export_options_are_one_line_errors(tmp_path, capsys, argv, message):
    course = canvas_course(tmp_path, capsys)
    with pytest.raises(SystemExit) if message == "invalid choice" else contextlib.nullcontext():
        code, out, err = run(["export", "--course", course, *argv], capsys)
        assert code == 2 and message in err and "Traceback" not in err, err
    if message == "invalid choice":
        assert message in capsys.readouterr().err


def test_a_roster_that_is_not_an_lms_export_is_refused(tmp_path, capsys):
    course = canvas_course(tmp_path, capsys)
    (tmp_path / "roster.csv").write_text("name,score\njane,3\n")
    code, out, err = run(["export", "--course", course, "--format", "canvas", "--roster", tmp_path / "roster.csv"],
                         capsys)
    assert code == 2 and "not an LMS gradebook export" in err, err
