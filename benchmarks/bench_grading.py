"""Grade one class of lesson 03 submissions five ways, one after the other, and compare the speed:

  ours --jobs N      python -m ppo_course.autograder grade --jobs N   (sandboxed kernels, tests in the grader)
  ours --dask local:N  the same on a Dask LocalCluster of N worker processes (its start-up included)
  ours, no sandbox   --jobs N with --no-sandbox              (the sandbox's own cost is the difference)
  ours, first run    --jobs N in a fresh course folder       (pays for the lesson's release, cached after)
  stock (serial)     nbgrader autograde in a plain nbgrader course (its generate_assignment not timed)

Each is the command an instructor types, in a course folder of its own. Then, in this process, the
steady state of the two parallel paths: the same class graded with ``grade(jobs=N)`` and on an
already started LocalCluster of N workers, both warmed up first (release cached, forkservers loaded),
so that the difference is the cluster path's cost per task (target: at most 5% over local), and
from the measured cost of one submission, how many machines grade 5,000 submissions in an hour.

The class is correct submissions by default (--mixed: full marks, one wrong exercise, one missing,
blank in turn); the scores of every run must agree, so speed is not bought with different grades.
Not a test: run it by hand (the cluster rows need the cluster extra),

    .venv-dev/bin/python benchmarks/bench_grading.py [--students 40] [--jobs N] [--mixed]
"""
from __future__ import annotations

import argparse
import json
import math
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


def run_ours(root: Path, students: dict, jobs: int, sandbox: bool, warm: bool,
             dask: bool = False) -> tuple[float, dict[str, float]]:
    """``warm``: the course folder was graded before (its release is cached), as for every batch after the first."""
    hand_in(root / "submitted", students)
    where = ["--dask", f"local:{jobs}"] if dask else ["--jobs", str(jobs)]
    command = [sys.executable, "-m", "ppo_course.autograder", "grade", "--course", str(root), *where,
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


def steady_state(root: Path, students: dict, jobs: int, rounds: int = 4) -> dict:
    """Seconds for the class with ``grade(jobs=N)`` and on a started LocalCluster of N, both warmed up,
    in alternating rounds (local, cluster, local, cluster, ...); the fastest round of each, since other
    work on the machine only ever adds time."""
    from ppo_course.autograder.commands.client import grade
    from ppo_course.autograder.commands.cluster import local_cluster
    from ppo_course.autograder.commands.folder import Course
    from ppo_course.autograder.grading.job import Limits

    course = Course(root)
    hand_in(course.submitted, students)
    warm = list(students)[:jobs]   # one submission per grader: each loads its forkserver before the clock starts

    def timed(**where) -> float:
        started = time.perf_counter()
        grade(course, [LESSON], Limits(), jobs, force=True, progress=False, **where)
        return time.perf_counter() - started

    found: dict[str, list[float]] = {"local": [], "dask": []}
    started = time.perf_counter()
    with local_cluster(jobs) as cluster:
        start_up = time.perf_counter() - started
        for where in ({}, {"dask": cluster.scheduler_address}):
            grade(course, [LESSON], Limits(), jobs, students=warm, force=True, progress=False, **where)
        for _ in range(rounds):
            found["local"].append(timed())
            found["dask"].append(timed(dask=cluster.scheduler_address))
    return {"start-up": start_up, "rounds": found, "local": min(found["local"]), "dask": min(found["dask"])}


def projection(seconds_per_submission: float, jobs: int, overhead: float) -> list[str]:
    """Machines for 5,000 submissions in an hour, from the measured cost of one submission here."""
    graders = min(jobs, os.cpu_count() or 1)
    core_seconds = seconds_per_submission * graders   # each grader keeps about one core busy
    lines = [f"cost of one submission: {core_seconds:.2f} core-seconds (wall time per submission x {graders} "
             f"graders), {100 * overhead:+.1f}% on the cluster path"]
    for cores in sorted({os.cpu_count() or 1, 16, 64}):
        machines = math.ceil(5000 * core_seconds * (1 + max(overhead, 0)) / (3600 * cores))
        lines.append(f"  5,000 submissions in one hour: {machines} machine(s) of {cores} cores "
                     f"(dask worker --nthreads {cores})")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=40, help="class size (default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="our parallel graders (default: %(default)s)")
    parser.add_argument("--mixed", action="store_true", help="a mixed class instead of correct submissions")
    args = parser.parse_args()
    students = synthetic_class(args.students, args.mixed)
    n, jobs = len(students), args.jobs
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        runs = {f"ours --jobs {jobs}": run_ours(Path(tmp) / "ours", students, jobs, sandbox=True, warm=True),
                f"ours --dask local:{jobs}": run_ours(Path(tmp) / "dask", students, jobs, sandbox=True, warm=True,
                                                      dask=True),
                "ours, no sandbox": run_ours(Path(tmp) / "plain", students, jobs, sandbox=False, warm=True),
                "ours, first run": run_ours(Path(tmp) / "cold", students, jobs, sandbox=True, warm=False),
                "stock (serial)": run_stock(Path(tmp) / "stock", students)}
        steady = steady_state(Path(tmp) / "steady", students, jobs)
    print(f"machine: {os.cpu_count()} cores, load average {load_before:.1f} before and {os.getloadavg()[0]:.1f} "
          f"after (other work on it slows every row alike); class: {n} "
          f"{'mixed' if args.mixed else 'correct'} submissions of {LESSON}")
    print(f"'first run' includes the lesson's release, which the others had cached (stock's generate_assignment is "
          f"not timed); the --dask row includes starting the cluster ({steady['start-up']:.1f} s here)")
    print(f"{'':24} {'seconds':>8} {'per submission':>15} {'submissions/min':>16}")
    for name, (seconds, _) in runs.items():
        print(f"{name:24} {seconds:8.1f} {seconds / n:14.2f}s {60 * n / seconds:16.1f}")
    ours, plain, stock = (runs[k][0] for k in (f"ours --jobs {jobs}", "ours, no sandbox", "stock (serial)"))
    cold = runs["ours, first run"][0]
    print(f"speed-up over stock nbgrader, sandbox on: {stock / ours:.2f}x (target >= 2); first run {stock / cold:.2f}x")
    print(f"the sandbox's own cost: {(ours - plain) / n:+.2f} s per submission, {100 * (ours - plain) / plain:+.1f}% "
          "(target <= 10%)")
    local, remote = steady["local"], steady["dask"]
    overhead = (remote - local) / local
    print(f"steady state, both warmed up, alternating rounds: --jobs {jobs} "
          f"{', '.join(f'{t:.1f}' for t in steady['rounds']['local'])} s, on a started LocalCluster of {jobs} "
          f"{', '.join(f'{t:.1f}' for t in steady['rounds']['dask'])} s; fastest: {local:.1f} s "
          f"({60 * n / local:.1f}/min) and {remote:.1f} s ({60 * n / remote:.1f}/min)")
    print(f"the cluster path's own cost: {(remote - local) / n:+.2f} s per task, {100 * overhead:+.1f}% "
          "(target <= 5%)")
    for line in projection(local / n, jobs, overhead):
        print(line)
    totals = [r[1] for r in runs.values()]
    disagree = [s for s in students if len({round(t[s], 6) for t in totals}) > 1]
    print("scores: identical for every student" if not disagree else f"scores differ for {disagree}")
    return 1 if disagree else 0


if __name__ == "__main__":
    raise SystemExit(main())
