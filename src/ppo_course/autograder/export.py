"""The gradebook CSV: one row per student, one column per graded exercise, totals, status, comment.

Columns: student_id, name, then per lesson "<NN> <exercise> (<points>)" and "<NN> total (<max>)",
then "total (<max>)", status ("graded", or "<NN> <status>" for each lesson that was not), and a
comment that says what was repaired or why a lesson scored nothing; a submission flagged for review
(several files handed in at once) says "<NN> review" in the status and why in the comment. A lesson a
student did not hand in leaves that lesson's cells empty and counts 0 in the total. Plain UTF-8 CSV
with a header row: Canvas, Moodle and spreadsheets import it as it is, and no cell of it is a formula
(``safe_text.write_csv``), whatever names and messages the submissions brought.
"""
from __future__ import annotations

from pathlib import Path

from .collect import student_names
from .contract import Contract, read_contract
from .course import Course
from .paths import CourseError, lesson_notebook
from .safe_text import write_csv


def lesson_contract(lesson: str, source: Path) -> Contract:
    return read_contract(lesson_notebook(lesson, source))


def columns(contracts: list[Contract]) -> list[str]:
    header = ["student_id", "name"]
    for contract in contracts:
        number = contract.lesson[:2]
        header += [f"{number} {e.answer_id} ({e.points:g})" for e in contract.exercises if e.test_id]
        header.append(f"{number} total ({contract.max_points:g})")
    return header + [f"total ({sum(c.max_points for c in contracts):g})", "status", "comment"]


def student_row(student: str, name: str, contracts: list[Contract], results: dict[str, dict]) -> list:
    row, total, problems, comments = [student, name], 0.0, [], []
    for contract in contracts:
        number, record = contract.lesson[:2], results[contract.lesson].get(student)
        if record is None:
            row += [""] * (len(contract.test_ids) + 1)
            problems.append(f"{number} missing")
            continue
        scores = record.get("scores", {})
        row += [_number(scores.get(test_id)) for test_id in contract.test_ids]
        row.append(_number(record.get("total", 0)))
        total += record.get("total", 0)
        if record["status"] != "graded":
            problems.append(f"{number} {record['status']}")
            comments.append(f"{number}: {record['message']}")
        elif record.get("notes"):
            comments.append(f"{number}: " + "; ".join(record["notes"]))
        if record.get("review"):
            problems.append(f"{number} review")
            comments.append(f"{number} review: " + "; ".join(record["review"]))
    return row + [_number(total), ", ".join(problems) or "graded", " | ".join(comments)]


def _number(value) -> str:
    return "" if value is None else f"{float(value):g}"


def export(course: Course, lessons: list[str], source: Path, output: Path) -> int:
    """Write the gradebook CSV for ``lessons``; returns the number of student rows."""
    contracts = [lesson_contract(lesson, source) for lesson in lessons]
    results = {lesson: course.results(lesson) for lesson in lessons}
    students = sorted(set().union(*(r.keys() for r in results.values())))
    if not students:
        raise CourseError(f"nothing graded yet under {course.autograded} (run `grade` first)")
    names = student_names(course)
    write_csv(output, columns(contracts),
              (student_row(student, names.get(student, ""), contracts, results) for student in students))
    return len(students)
