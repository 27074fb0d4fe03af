"""Grade one class of lesson 03 submissions four ways, one after the other, and compare the speed:

  ours               python -m ppo_course.autograder grade --jobs N   (sandboxed kernels, tests in the grader)
  ours, no sandbox   the same with --no-sandbox              (the sandbox's own cost is the difference)
  ours, first run    the same in a fresh course folder       (pays for the lesson's release, cached after)
  stock (serial)     nbgrader autograde in a plain nbgrader course (its generate_assignment not timed)

Each is the command an instructor types, in a course folder of its own. The class is correct
submissions by default (--mixed: full marks, one wrong exercise, one missing, blank in turn); the
scores of all four must agree, so speed is not bought with different grades. Not a test: run it by hand,

    .venv-dev/bin/python benchmarks/bench_grading.py [--students 40] [--jobs N] [--mixed]
"""
from __future__ import annotations

import argparse
import json
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

LESSON = "03-clipped-surrogate"


def synthetic_class(n: int, mixed: bool) -> dict[str, nbformat.NotebookNode]:
    answers = solution_answers(LESSON)
    kinds = [answers]
    if mixed:
        kinds += [with_edit(answers, "clipped_surrogate", lambda s: s.replace("torch.minimum", "torch.maximum")),
                  {k: v for k, v in answers.items() if k != "clip_is_active"}, {}]
    return {f"s{i:03d}": submission(LESSON, kinds[i % len(kinds)]) for i in range(n)}


def hand_in(folder: Path, students: dict) -> None:
    for student, nb in students.items():
        target = folder / student / LESSON
        target.mkdir(parents=True)
        nbformat.write(nb, target / f"{LESSON}.ipynb")


def run_ours(root: Path, students: dict, jobs: int, sandbox: bool, warm: bool) -> tuple[float, dict[str, float]]:
    """``warm``: the course folder was graded before (its release is cached), as for every batch after the first."""
    hand_in(root / "submitted", students)
    command = [sys.executable, "-m", "ppo_course.autograder", "grade", "--course", str(root), "--jobs", str(jobs),
               "--no-progress", "--force"] + ([] if sandbox else ["--no-sandbox"])
    if warm:
        subprocess.run(command + ["--student", next(iter(students))], check=True, capture_output=True)
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    elapsed = time.perf_counter() - started
    totals = {s: json.loads((root / "autograded" / s / LESSON / "result.json").read_text())["total"] for s in students}
    return elapsed, totals


def run_stock(root: Path, students: dict) -> tuple[float, dict[str, float]]:
    from nbgrader.api import Gradebook

    shutil.copytree(REPO / "solutions" / LESSON, root / "source" / LESSON)
    (root / "nbgrader_config.py").write_text(
        "c = get_config()\nc.CourseDirectory.root = %r\nc.CourseDirectory.db_url = %r\n"
        % (str(root), f"sqlite:///{root / 'gradebook.db'}"))
    nbgrader = [str(Path(sys.executable).parent / "nbgrader")]
    subprocess.run(nbgrader + ["generate_assignment", LESSON, "--force"], cwd=root, check=True, capture_output=True)
    hand_in(root / "submitted", students)
    started = time.perf_counter()
    subprocess.run(nbgrader + ["autograde", LESSON, "--force"], cwd=root, check=True, capture_output=True)
    elapsed = time.perf_counter() - started
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        totals = {s: gradebook.find_submission(LESSON, s).score for s in students}
    return elapsed, totals


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=40, help="class size (default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="our parallel graders (default: %(default)s)")
    parser.add_argument("--mixed", action="store_true", help="a mixed class instead of correct submissions")
    args = parser.parse_args()
    students = synthetic_class(args.students, args.mixed)
    n = len(students)
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        runs = {"ours": run_ours(Path(tmp) / "ours", students, args.jobs, sandbox=True, warm=True),
                "ours, no sandbox": run_ours(Path(tmp) / "plain", students, args.jobs, sandbox=False, warm=True),
                "ours, first run": run_ours(Path(tmp) / "cold", students, args.jobs, sandbox=True, warm=False),
                "stock (serial)": run_stock(Path(tmp) / "stock", students)}
    print(f"machine: {os.cpu_count()} cores; class: {n} {'mixed' if args.mixed else 'correct'} submissions of {LESSON}")
    print(f"ours: --jobs {args.jobs}; 'first run' includes the lesson's release, which the others had cached "
          "(stock's generate_assignment is not timed)")
    print(f"{'':20} {'seconds':>8} {'per submission':>15} {'submissions/min':>16}")
    for name, (seconds, _) in runs.items():
        print(f"{name:20} {seconds:8.1f} {seconds / n:14.2f}s {60 * n / seconds:16.1f}")
    ours, plain, stock = (runs[k][0] for k in ("ours", "ours, no sandbox", "stock (serial)"))
    cold = runs["ours, first run"][0]
    print(f"speed-up over stock nbgrader, sandbox on: {stock / ours:.2f}x (target >= 2); first run {stock / cold:.2f}x")
    print(f"the sandbox's own cost: {(ours - plain) / n:+.2f} s per submission, {100 * (ours - plain) / plain:+.1f}% "
          "(target <= 10%)")
    totals = [r[1] for r in runs.values()]
    disagree = [s for s in students if len({round(t[s], 6) for t in totals}) > 1]
    print("scores: identical for every student" if not disagree else f"scores differ for {disagree}")
    return 1 if disagree else 0


if __name__ == "__main__":
    raise SystemExit(main())
