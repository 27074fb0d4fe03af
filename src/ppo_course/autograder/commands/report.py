"""``report``: the class report, what an instructor asks the morning after the deadline.

``python -m ppo_course.autograder report --course C [ASSIGNMENT...] [--source SRC]`` reads only what
grading left in the course folder (``autograded/<student>/<assignment>/result.json`` and the graded
notebooks, ``collected.csv``) and the course's source notebooks (the exercises and their stubs), and writes
to ``COURSE/report/``:

  report.html    one self-contained page (plots inline, no script, style or font from anywhere else)
  report.json    every number on the page
  students.csv   one row per student and assignment: status, points, seconds, each exercise's outcome and mistake
  exercises.csv  per exercise: how many students got full marks, partial, zero, no answer
  tests.csv      per test cell: how many of the graded submissions passed it
  mistakes.csv   per exercise: each named mistake, how many students made it, and who
  similar.csv    pairs of students whose answers share code few others wrote, by score

What each number means is in ``report_data``; the page is ``report_page``. Every CSV goes through
``text.write_csv``: no cell is a spreadsheet formula, whatever a submission's name or message says.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict
from pathlib import Path

from ..errors import CourseError
from ..text import write_csv
from .folder import Course
from .report_data import OUTCOMES, AssignmentReport, assignment_report
from .report_page import page


def as_json(report: AssignmentReport) -> dict:
    data = {k: v for k, v in asdict(report).items() if k not in ("submissions", "pairs")}
    data["students"] = report.students
    data["submissions"] = [{k: v for k, v in asdict(s).items() if k != "answers"} for s in report.submissions]
    data["pairs"] = [asdict(p) for p in report.pairs]
    return data


def write_report(course: Course, assignments: list[str], source: Path, out: Path) -> list[Path]:
    """Write the page, its JSON and its CSVs into ``out``; returns the files written."""
    if not assignments:
        raise CourseError(f"nothing graded yet under {course.autograded} (run `grade` first)")
    unknown = [a for a in assignments if not (source / a).is_dir()]
    if unknown:
        raise CourseError(f"{', '.join(unknown)} is not an assignment of {source} (give its course with --source)")
    reports = [assignment_report(course, assignment, source) for assignment in assignments]
    try:
        return write_files(reports, course.root.name, out)
    except OSError as error:   # a full disk, a read-only folder, --output naming a file
        raise CourseError(f"could not write the report into {out}: {error.strerror or error}") from None


def write_files(reports: list[AssignmentReport], course: str, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    generated = dt.datetime.now().isoformat(timespec="seconds")
    written = {name: out / name for name in ("report.html", "report.json", "students.csv", "exercises.csv",
                                              "tests.csv", "mistakes.csv", "similar.csv")}
    written["report.html"].write_text(page(reports, course, generated), encoding="utf-8")
    written["report.json"].write_text(json.dumps({"course": course, "generated": generated,
                                                  "assignments": [as_json(r) for r in reports]}, indent=1))
    exercise_ids = {r.assignment: [e["exercise"] for e in r.exercises] for r in reports}
    write_csv(written["students.csv"], ["assignment", "student_id", "name", "status", "points", "max", "seconds",
                                        "review", "outcomes", "mistakes"],
              ([r.assignment, s.student, s.name, s.status, f"{s.points:g}", f"{s.max:g}",
                "" if s.seconds is None else s.seconds, "; ".join(s.review),
                "; ".join(f"{e}: {s.outcomes.get(e, '')}" for e in exercise_ids[r.assignment]),
                "; ".join(f"{e}: #{n}" for e, n in s.mistakes.items())]
               for r in reports for s in r.submissions))
    write_csv(written["exercises.csv"], ["assignment", "exercise", "points", "students", *OUTCOMES],
              ([r.assignment, e["exercise"], f"{e['points']:g}", r.students, *(e[o] for o in OUTCOMES)]
               for r in reports for e in r.exercises))
    write_csv(written["tests.csv"], ["assignment", "test", "exercise", "points", "graded", "passed", "pass_rate"],
              ([r.assignment, t["test"], t["exercise"], f"{t['points']:g}", t["graded"], t["passed"],
                f"{t['passed'] / t['graded']:.3f}" if t["graded"] else ""] for r in reports for t in r.tests))
    write_csv(written["mistakes.csv"], ["assignment", "exercise", "number", "test", "mistake", "count", "share",
                                        "students"],
              ([r.assignment, m["exercise"], m["number"], m["test"], m["label"], m["count"], f"{m['share']:.3f}",
                " ".join(m["students"])] for r in reports for m in r.mistakes))
    write_csv(written["similar.csv"], ["assignment", "student_a", "student_b", "score", "share_a", "share_b",
                                       "exercises"],
              ([r.assignment, p.first, p.second, p.score, f"{p.shares[0]:.3f}", f"{p.shares[1]:.3f}",
                "; ".join(f"{e}: {a:.2f}/{b:.2f}" for e, (a, b) in p.exercises.items())]
               for r in reports for p in r.pairs))
    return list(written.values())
