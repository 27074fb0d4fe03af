"""Grade a synthetic class of lesson 03 submissions twice, and print submissions per minute:

  ours   python -m ppo_course.autograder grade (rebuilt from the contract, parallel, limits)
  stock  nbgrader autograde, serial, on the same submissions in a plain nbgrader course

Both run in this one process's run, on this machine, one after the other; totals are compared so
the speed is not bought with different scores. Not a test: run it by hand,

    .venv-dev/bin/python benchmarks/bench_grading.py [--students 100] [--jobs N]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"]
os.environ["PPO_COURSE_FAST"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")

from grading_helpers import solution_answers, submission, with_edit  # noqa: E402
from ppo_course.autograder.course import Course  # noqa: E402
from ppo_course.autograder.grade import Limits, grade  # noqa: E402

LESSON = "03-clipped-surrogate"


def synthetic_class(n: int) -> dict[str, nbformat.NotebookNode]:
    """n submissions cycling through full marks, one wrong exercise, and blank."""
    answers = solution_answers(LESSON)
    kinds = [answers,
             with_edit(answers, "clipped_surrogate", lambda s: s.replace("torch.minimum", "torch.maximum")),
             {k: v for k, v in answers.items() if k != "clip_is_active"},
             {}]
    return {f"s{i:03d}": submission(LESSON, kinds[i % len(kinds)]) for i in range(n)}


def run_ours(root: Path, students: dict, jobs: int) -> tuple[float, dict[str, float]]:
    course = Course(root)
    for student, nb in students.items():
        folder = course.submitted / student / LESSON
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{LESSON}.ipynb")
    started = time.perf_counter()
    records = grade(course, [LESSON], Limits(), jobs)
    elapsed = time.perf_counter() - started
    return elapsed, {r["student"]: r["total"] for r in records}


def run_stock(root: Path, students: dict) -> tuple[float, dict[str, float]]:
    from nbgrader.api import Gradebook

    shutil.copytree(REPO / "solutions" / LESSON, root / "source" / LESSON)
    (root / "nbgrader_config.py").write_text(
        "c = get_config()\nc.CourseDirectory.root = %r\nc.CourseDirectory.db_url = %r\n"
        % (str(root), f"sqlite:///{root / 'gradebook.db'}"))
    nbgrader = [str(Path(sys.executable).parent / "nbgrader")]
    subprocess.run(nbgrader + ["generate_assignment", LESSON, "--force"], cwd=root, check=True, capture_output=True)
    for student, nb in students.items():
        folder = root / "submitted" / student / LESSON
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{LESSON}.ipynb")
    started = time.perf_counter()
    subprocess.run(nbgrader + ["autograde", LESSON, "--force"], cwd=root, check=True, capture_output=True)
    elapsed = time.perf_counter() - started
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        totals = {s: gradebook.find_submission(LESSON, s).score for s in students}
    return elapsed, totals


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=100, help="class size (default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="our parallel graders (default: %(default)s)")
    args = parser.parse_args()
    students = synthetic_class(args.students)
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        ours_s, ours = run_ours(Path(tmp) / "ours", students, args.jobs)
        stock_s, stock = run_stock(Path(tmp) / "stock", students)
    n = len(students)
    print(f"machine: {os.cpu_count()} cores; class: {n} submissions of {LESSON}")
    print(f"ours  (--jobs {args.jobs}): {ours_s:7.1f} s  {60 * n / ours_s:6.1f} submissions/min")
    print(f"stock (serial)  : {stock_s:7.1f} s  {60 * n / stock_s:6.1f} submissions/min")
    print(f"speed-up: {stock_s / ours_s:.2f}x")
    disagree = [s for s in students if abs(ours[s] - stock[s]) > 1e-9]
    print("scores: identical for every student" if not disagree else f"scores differ for {disagree}")
    return 1 if disagree else 0


if __name__ == "__main__":
    raise SystemExit(main())
