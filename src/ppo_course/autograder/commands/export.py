"""The gradebook CSV: one row per student, one column per autograded test cell, totals, status, comment.

Columns: student_id, name, then per assignment "<A> <test> (<points>)" for each autograded test cell
(``<A>`` is ``03`` for ``03-clipped-surrogate``, else the assignment's name; a test named
``<exercise>_tests`` is shown as ``<exercise>``) and "<A> total (<max>)", then "total (<max>)", status
("graded", or "<A> <status>" for each assignment that was not) and a comment that says what was
repaired or why an assignment scored nothing. A submission flagged for review (several files handed in
at once) says "<A> review" in the status and why in the comment. Manually graded cells are not in the
totals until a person has graded them: "<A> manual grading pending" in the status, and how many points
wait, in the comment (``manual.py``; the totals then include the points given). An assignment a student
did not hand in leaves its cells empty and counts 0 in the total. Plain UTF-8 CSV with a header row;
no cell of it is a formula (``text.write_csv``), whatever names and messages the submissions brought.

Two more formats are the LMSs' own grade-import files (one column per assignment: its total):

* ``canvas``: Canvas's gradebook import CSV, laid out as Canvas's importer reads it
  (``app/models/gradebook_importer.rb``): the columns ``Student, ID, SIS User ID, SIS Login ID, Section``, then
  one column per assignment titled ``<assignment> (<Canvas assignment id>)`` (the id from ``--lms-assignment``;
  without one Canvas matches the column by title, or creates an assignment), and a ``Points Possible`` row.
  ``ID`` is Canvas's user id, which collect read from Canvas's file names; other ids go in ``SIS Login ID``.
* ``moodle``: a CSV for Moodle's "Import grades from CSV": an identifier column, which the import maps to
  the users' username, ID number or email address, and one column per grade item. The numbers in Moodle's
  download folders are the assignment's participant numbers, which that import cannot map, so such students
  are matched by name in ``--roster`` (Moodle's own grade export) to their email address.

``--roster FILE`` is the LMS's own gradebook export (Canvas: Grades -> Export; Moodle: Export -> Plain text
file); it fills in the identifying columns. A student the export cannot identify is left out and named.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CourseError
from ..grading.contract import Contract, read_contract
from ..text import write_csv
from .collect import id_layouts, student_names
from .folder import Course
from .manual import manual_scores

FORMATS = ("gradebook", "canvas", "moodle")
DEFAULT_OUTPUT = {"gradebook": "gradebook.csv", "canvas": "canvas-grades.csv", "moodle": "moodle-grades.csv"}
CANVAS_STUDENT_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
CANVAS_ID_COLUMNS = ("ID", "SIS User ID", "SIS Login ID")
MOODLE_ID_COLUMNS = ("Email address", "ID number", "Username")   # in Moodle's export; the import maps to these


def column_name(test_id: str) -> str:
    return test_id.removesuffix("_tests")


def columns(contracts: list[Contract]) -> list[str]:
    header = ["student_id", "name"]
    for contract in contracts:
        header += [f"{contract.label} {column_name(t.grade_id)} ({t.points:g})" for t in contract.tests]
        header.append(f"{contract.label} total ({contract.max_points + contract.manual_points:g})")
    return header + [f"total ({sum(c.max_points + c.manual_points for c in contracts):g})", "status", "comment"]


def student_row(student: str, name: str, contracts: list[Contract], results: dict[str, dict],
                manual: dict[str, dict[str, dict[str, float]]]) -> list:
    row, total, problems, comments = [student, name], 0.0, [], []
    for contract in contracts:
        label, record = contract.label, results[contract.assignment].get(student)
        if record is None:
            row += [""] * (len(contract.test_ids) + 1)
            problems.append(f"{label} missing")
            continue
        scores = record.get("scores", {})
        given = manual.get(contract.assignment, {}).get(student, {})
        subtotal = record.get("total", 0) + sum(given.values())
        row += [_number(scores.get(test_id)) for test_id in contract.test_ids]
        row.append(_number(subtotal))
        total += subtotal
        if record["status"] != "graded":
            problems.append(f"{label} {record['status']}")
            comments.append(f"{label}: {record['message']}")
        elif record.get("notes"):
            comments.append(f"{label}: " + "; ".join(record["notes"]))
        waiting = [m for m in contract.manual if m.grade_id in record.get("manual", {}) and m.grade_id not in given]
        if waiting and record["status"] not in ("missing", "unreadable"):
            problems.append(f"{label} manual grading pending")
            comments.append(f"{label}: {sum(m.points for m in waiting):g} points await manual grading ("
                            + ", ".join(f"{m.grade_id} {m.points:g}" for m in waiting) + ")")
        if record.get("review"):
            problems.append(f"{label} review")
            comments.append(f"{label} review: " + "; ".join(record["review"]))
    return row + [_number(total), ", ".join(problems) or "graded", " | ".join(comments)]


def _number(value) -> str:
    return "" if value is None else f"{float(value):g}"


@dataclass
class Exported:
    rows: int
    warnings: list[str] = field(default_factory=list)


@dataclass
class Grades:
    """Everything a format writes from: the contracts, the results, and who each student is."""
    contracts: list[Contract]
    results: dict[str, dict[str, dict]]
    students: list[str]
    names: dict[str, str]
    manual: dict[str, dict[str, dict[str, float]]]
    layouts: dict[str, str]

    def total(self, contract: Contract, student: str) -> float | None:
        """The assignment's total for an LMS (autograded plus points given by hand); None: not handed in or not
        graded by the grader's fault (an LMS would read a 0 as a grade)."""
        record = self.results[contract.assignment].get(student)
        if record is None or record["status"] == "error":
            return None
        given = self.manual.get(contract.assignment, {}).get(student, {})
        return record.get("total", 0) + sum(given.values())

    def warnings(self) -> list[str]:
        found = []
        for contract in self.contracts:
            results = self.results[contract.assignment]
            errors = sorted(s for s, r in results.items() if r["status"] == "error")
            if errors:
                found.append(f"{contract.assignment}: {len(errors)} submission(s) not graded (the grader failed: "
                             f"run grade again): left blank for {', '.join(errors[:10])}")
            pending = sorted(s for s, r in results.items() if r.get("manual") and r["status"] == "graded"
                             and set(r["manual"]) - set(self.manual.get(contract.assignment, {}).get(s, {})))
            if pending:
                found.append(f"{contract.assignment}: {len(pending)} total(s) still lack the points of manually "
                             "graded cells (run `manual`, fill in the points, export again)")
        return found


def export(course: Course, assignments: list[str], source: Path, output: Path, format: str = "gradebook",
           roster: Path | None = None, lms_ids: dict[str, str] | None = None) -> Exported:
    """Write ``assignments``' grades in ``format`` (one of FORMATS) to ``output``; returns the number of student
    rows and what the instructor should know (students left out, totals that are not final)."""
    contracts = [read_contract(source / assignment) for assignment in assignments]
    results = {assignment: course.results(assignment) for assignment in assignments}
    students = sorted(set().union(*(r.keys() for r in results.values())))
    if not students:
        raise CourseError(f"nothing graded yet under {course.autograded} (run `grade` first)")
    grades = Grades(contracts, results, students, student_names(course),
                    {contract.assignment: manual_scores(course, contract) for contract in contracts},
                    id_layouts(course))
    if format == "gradebook":
        write_csv(output, columns(contracts), (student_row(student, grades.names.get(student, ""), contracts,
                                                           results, grades.manual) for student in students))
        return Exported(len(students))
    roster_rows = read_roster(roster) if roster else None
    if format == "canvas":
        header, rows, left_out = canvas_table(grades, roster_rows, lms_ids or {})
    elif format == "moodle":
        header, rows, left_out = moodle_table(grades, roster_rows)
    else:
        raise CourseError(f"unknown format '{format}' (use: {', '.join(FORMATS)})")
    student_rows = [row for row in rows if row[0] != "Points Possible"]
    if not student_rows:
        raise CourseError(f"no student could be identified for {format}: " + "; ".join(left_out))
    write_csv(output, header, rows)
    return Exported(len(student_rows), left_out + grades.warnings())


def read_roster(path: Path) -> list[dict[str, str]]:
    """The LMS's own gradebook export: its rows by column name (Canvas's 'Points Possible' row left out)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items() if isinstance(v, str)}
                    for row in csv.DictReader(handle)]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise CourseError(f"--roster {path} cannot be read as a CSV file ({error})") from None
    rows = [row for row in rows if not row.get("Student", "").strip().startswith("Points Possible")]
    if not rows or not any(column in rows[0] for column in CANVAS_ID_COLUMNS + MOODLE_ID_COLUMNS):
        raise CourseError(f"--roster {path} is not an LMS gradebook export (no ID, SIS User ID, SIS Login ID, "
                          "Email address, ID number or Username column)")
    return rows


def _assignment_title(contract: Contract, lms_ids: dict[str, str]) -> str:
    lms_id = lms_ids.get(contract.assignment)
    return f"{contract.assignment} ({lms_id})" if lms_id else contract.assignment


def _score(value: float | None) -> str:
    return "" if value is None else f"{round(value, 2):g}"


def canvas_table(grades: Grades, roster: list[dict] | None, lms_ids: dict[str, str]
                 ) -> tuple[list[str], list[list[str]], list[str]]:
    """Canvas's gradebook import layout; the students it cannot identify are named in the third value."""
    header = CANVAS_STUDENT_COLUMNS + [_assignment_title(c, lms_ids) for c in grades.contracts]
    rows = [["Points Possible", "", "", "", ""] + [f"{c.max_points + c.manual_points:g}" for c in grades.contracts]]
    left_out, not_canvas = [], []
    for student in grades.students:
        if roster is not None:
            found = [r for r in roster if student in {r.get(column, "") for column in CANVAS_ID_COLUMNS}]
            if len(found) != 1:
                left_out.append(f"{student}: {'not in' if not found else 'several rows of'} the roster")
                continue
            identity = [found[0].get(column, "") for column in CANVAS_STUDENT_COLUMNS]
        elif grades.layouts.get(student) == "canvas":
            identity = [grades.names.get(student, ""), student, "", "", ""]
        else:   # not Canvas's user id (a folder's name, a regex's): Canvas can match it only as a login id
            identity = [grades.names.get(student, ""), "", "", student, ""]
            not_canvas.append(student)
        if "Points Possible" in identity[0]:   # Canvas would read this student's row as the points row
            identity[0] = ""
        rows.append(identity + [_score(grades.total(c, student)) for c in grades.contracts])
    if not_canvas:
        left_out.append(f"{len(not_canvas)} student id(s) did not come from a Canvas download (e.g. "
                        f"{', '.join(not_canvas[:5])}): written as SIS Login ID, which Canvas matches only if they "
                        "are its login ids; give --roster (Canvas's gradebook export) to match them")
    return header, rows, left_out


def _person(text: str) -> str:
    return " ".join(text.casefold().split())


def moodle_table(grades: Grades, roster: list[dict] | None) -> tuple[list[str], list[list[str]], list[str]]:
    """Moodle's "Import grades from CSV": an identifier column and one column per grade item."""
    titles = [c.assignment for c in grades.contracts]
    left_out, participants, rows = [], [], []
    id_column = next((c for c in MOODLE_ID_COLUMNS if roster and c in roster[0]), "ID")
    by_name: dict[str, list[dict]] = {}
    for row in roster or []:
        by_name.setdefault(_person(f"{row.get('First name', '')} {row.get('Last name', '')}"), []).append(row)
    for student in grades.students:
        participant = grades.layouts.get(student) == "moodle"
        if roster is None:
            if participant:
                participants.append(student)
                continue
            identifier = student
        else:
            found = [r for r in roster if student in {r.get(c, "") for c in MOODLE_ID_COLUMNS}]
            if not found and participant:   # Moodle's participant number: the download's name is the link
                found = by_name.get(_person(grades.names.get(student, "")), [])
            if len(found) != 1 or not found[0].get(id_column):
                name = grades.names.get(student, "")
                left_out.append(f"{student}{f' ({name})' if name else ''}: "
                                f"{'several rows of' if len(found) > 1 else 'not in'} the roster")
                continue
            identifier = found[0][id_column]
        rows.append([identifier, grades.names.get(student, "")]
                    + [_score(grades.total(c, student)) for c in grades.contracts])
    if participants:
        left_out.append(f"{len(participants)} student id(s) are Moodle's participant numbers from the download's "
                        f"folder names (e.g. {', '.join(participants[:5])}), which Moodle's grade import cannot match "
                        "to users: give --roster (Moodle's grade export, Export -> Plain text file) to match them "
                        "by name to their email address")
    return [id_column, "Full name", *titles], rows, left_out
