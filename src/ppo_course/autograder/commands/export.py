"""The gradebook CSV: one row per student, one column per autograded test cell, totals, status, comment.

Columns: student_id, name, then per assignment "<A> <test> (<points>)" for each autograded test cell
(``<A>`` is ``03`` for ``03-clipped-surrogate``, else the assignment's name; a test named
``<exercise>_tests`` is shown as ``<exercise>``) and "<A> total (<max>)", then "total (<max>)", status
("graded", or "<A> <status>" for each assignment that was not) and a comment that says what was
repaired or why an assignment scored nothing. A submission flagged for review (several files handed in
at once) says "<A> review" in the status and why in the comment. Manually graded cells are not in the
totals until a person has graded them: "<A> manual grading pending" in the status, and how many points
wait, in the comment (``manual.py``; the totals then include the points given). An assignment a student
did not hand in leaves its cells empty and counts 0 in the total. Plain UTF-8 CSV with a header row:
Canvas, Moodle and spreadsheets import it as it is, and no cell of it is a formula (``text.write_csv``),
whatever names and messages the submissions brought.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import CourseError
from ..grading.contract import Contract, read_contract
from ..text import write_csv
from .collect import student_names
from .folder import Course
from .manual import manual_scores


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


def export(course: Course, assignments: list[str], source: Path, output: Path) -> int:
    """Write the gradebook CSV for ``assignments``; returns the number of student rows."""
    contracts = [read_contract(source / assignment) for assignment in assignments]
    results = {assignment: course.results(assignment) for assignment in assignments}
    students = sorted(set().union(*(r.keys() for r in results.values())))
    if not students:
        raise CourseError(f"nothing graded yet under {course.autograded} (run `grade` first)")
    names = student_names(course)
    manual = {contract.assignment: manual_scores(course, contract) for contract in contracts}
    write_csv(output, columns(contracts),
              (student_row(student, names.get(student, ""), contracts, results, manual) for student in students))
    return len(students)
