"""``manual``: grading by hand the cells an assignment leaves to a person (manually graded answers, tasks).

``python -m ppo_course.autograder manual --course C ps1`` writes, for each assignment:

  COURSE/manual/<assignment>.html   every student's answer to each manually graded cell, under the cell's
                                    prompt, one section per cell (plain, offline; answers shown as text)
  COURSE/manual/<assignment>.csv    one row per student and cell: student_id, cell, max, points, comment

The instructor fills in ``points`` (a blank is "not graded yet"); ``export`` adds them to the totals and
stops reporting those cells as pending. Running ``manual`` again adds rows for new submissions and keeps
every point already given.
"""
from __future__ import annotations

import html
import json
from pathlib import Path

from ..errors import CourseError
from ..grading.contract import Contract, grade_id, read_contract
from ..text import read_csv, write_csv
from .folder import Course

FIELDS = ["student_id", "cell", "max", "points", "comment"]


def sheet(course: Course, assignment: str) -> Path:
    return course.root / "manual" / f"{assignment}.csv"


def manual_scores(course: Course, contract: Contract) -> dict[str, dict[str, float]]:
    """{student: {cell: points}} as the instructor gave them (blank rows are not graded yet)."""
    path, limits = sheet(course, contract.assignment), {m.grade_id: m.points for m in contract.manual}
    if not path.exists():
        return {}
    given: dict[str, dict[str, float]] = {}
    for line, row in enumerate(read_csv(path), start=2):
        text = (row.get("points") or "").strip()
        if not text:
            continue
        cell = row.get("cell", "")
        try:
            points = float(text)
        except ValueError:
            raise CourseError(f"{path}, line {line}: points '{text}' is not a number") from None
        if cell not in limits or not 0 <= points <= limits[cell]:
            raise CourseError(f"{path}, line {line}: {cell} takes 0 to {limits.get(cell, 0):g} points, got {text}")
        given.setdefault(row.get("student_id", ""), {})[cell] = points
    return given


def answers(course: Course, contract: Contract, student: str) -> dict[str, str]:
    """{cell: what the student wrote} from their graded notebooks."""
    found = {}
    for notebook in contract.notebooks:
        path = course.autograded / student / contract.assignment / notebook.notebook
        if path.exists():
            for cell in json.loads(path.read_text()).get("cells", []):
                source = cell.get("source", "")
                found[grade_id(cell)] = "".join(source) if isinstance(source, list) else str(source)
    return found


def prompts(source: Path, contract: Contract) -> dict[str, str]:
    """{cell: the markdown just above it in the source notebook} (what the question asks)."""
    found = {}
    for notebook in contract.notebooks:
        cells = json.loads((source / contract.assignment / notebook.notebook).read_text())["cells"]
        for index, cell in enumerate(cells):
            above = next((c for c in reversed(cells[:index]) if c.get("cell_type") == "markdown"), None)
            if grade_id(cell) and above is not None:
                text = above.get("source", "")
                found[grade_id(cell)] = "".join(text) if isinstance(text, list) else text
    return found


def prepare_manual(course: Course, assignment: str, source: Path) -> tuple[Path, Path, int]:
    """Write the assignment's page and sheet; returns their paths and how many rows wait for points."""
    contract = read_contract(source / assignment)
    if not contract.manual:
        raise CourseError(f"{assignment} has no manually graded cell")
    students = sorted(course.results(assignment))
    if not students:
        raise CourseError(f"nothing graded yet for {assignment} under {course.autograded} (run `grade` first)")
    path = sheet(course, assignment)
    kept: dict[tuple[str, str], list[str]] = {}
    if path.exists():
        kept = {(r.get("student_id", ""), r.get("cell", "")): [r.get("points", ""), r.get("comment", "")]
                for r in read_csv(path)}
    rows = [[student, cell.grade_id, f"{cell.points:g}", *kept.get((student, cell.grade_id), ["", ""])]
            for cell in contract.manual for student in students]
    staged = path.with_name(path.name + ".new")
    write_csv(staged, FIELDS, rows)
    staged.replace(path)
    asked = prompts(source, contract)
    written_by = {student: answers(course, contract, student) for student in students}
    sections = []
    for cell in contract.manual:
        entries = "".join(f"<h3>{html.escape(student)}</h3>"
                          f"<pre>{html.escape(written.get(cell.grade_id) or '(no answer)')}</pre>"
                          for student, written in written_by.items())
        sections.append(f"<section><h2>{html.escape(cell.grade_id)} ({cell.points:g} points, {cell.kind})</h2>"
                        f"<blockquote><pre>{html.escape(asked.get(cell.grade_id, ''))}</pre></blockquote>"
                        f"{entries}</section>")
    page = path.with_suffix(".html")
    page.write_text(f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(assignment)}: manual "
                    "grading</title><style>pre{white-space:pre-wrap;background:#f6f6f6;padding:.5em}</style></head><body>"
                    f"<h1>{html.escape(assignment)}: cells to grade by hand</h1><p>Give points in "
                    f"{html.escape(path.name)} (next to this page), then run <code>export</code>.</p>"
                    + "".join(sections) + "</body></html>", encoding="utf-8")
    return page, path, sum(1 for row in rows if not row[3].strip())
