"""``grade``: every collected submission of the chosen assignments, graded in parallel, here or on a cluster.

The client owns the course folder: it picks each student's files (``folder.pick_submission``), skips
what was graded before and has not changed, hands each submission to a runner (``run_local``: threads
here, each grading in a process of its own; or ``cluster.DaskRunner``) that calls the pure
``grading.grade.grade_one``, and writes what comes back under autograded/, one submission's folder
replaced in one rename (``keep``). Releases are cached in ``COURSE/.grading-cache`` unless the caller
gives another cache (``release_cache``; the tests share one for a whole run).
"""
from __future__ import annotations

import ast
import contextlib
import datetime as dt
import json
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor, as_completed
from functools import partial
from pathlib import Path
from typing import Callable

from ..errors import CourseError
from ..grading.bundle import Bundle, prepare
from ..grading.contract import is_setup_cell, is_test_cell, python_lines
from ..grading.grade import (
    GRADED,
    ISOLATION,
    NO_ISOLATION,
    Graded,
    Submission,
    SubmittedFile,
    error_record,
    finished,
    grade_one,
)
from ..grading.job import Limits
from ..grading.supervise import WORKERS, worker_context
from ..sandbox.bubblewrap import SandboxUnavailable, probe
from ..syntax import parse_python
from ..text import printable
from .collect import downloads
from .folder import Course, pick_submission
from .source import SOLUTIONS_DIR
from .task import Task

MAX_LOG_CHARS = 2**20


def plan(course: Course, bundle: Bundle, student: str, limits: Limits, force: bool,
         download_of: dict[str, str] | None = None) -> Task | dict:
    """The task for one student's submission, or its final record when there is nothing to run: no
    notebook handed in (written as ``missing``), or unchanged since its last grading (``skipped``)."""
    pick = pick_submission(course.submitted / student / bundle.assignment, bundle.contract, download_of)
    isolation = ISOLATION if limits.sandbox else NO_ISOLATION
    if not pick.files:
        record = finished({"student": student, "lesson": bundle.assignment, "status": "missing",
                           "message": pick.notes[-1], "notes": [], "review": [], "scores": {},
                           "max": bundle.contract.max_points, "source_sha256": bundle.source_sha256,
                           "isolation": isolation})
        return keep(course, record)
    submission = Submission(student, {name: SubmittedFile(path.name, path.read_bytes())
                                      for name, path in pick.files.items()})
    task = Task(bundle.assignment, submission, [p.relative_to(course.root).as_posix() for p in pick.files.values()],
                pick.notes, pick.review)
    previous = course.result_path(student, bundle.assignment)
    if not force and previous.exists():
        try:
            old = json.loads(previous.read_text())
        except (OSError, ValueError):
            return task
        if (old.get("sha256"), old.get("source_sha256"), old.get("isolation"), old.get("review", [])) == (
                submission.sha256, bundle.source_sha256, isolation, task.review):
            return old | {"skipped": True}
    return task


def keep(course: Course, record: dict, graded: Graded | None = None, task: Task | None = None) -> dict:
    """Write one submission's folder under autograded/ (result.json, and the graded notebooks, their
    gradebook and grading.log when there are some), replacing an earlier grading in one rename:
    a reader, or a run stopped at any moment, finds the old folder or the new one, never a mix."""
    if task is not None:
        record["notes"] = task.notes + record["notes"]
        record["review"] = task.review
        record["file"] = task.files[0] if len(task.files) == 1 else task.files
    record["graded_at"] = dt.datetime.now().isoformat(timespec="seconds")
    files = {"result.json": json.dumps(record, indent=1).encode()}
    if graded is not None and task is not None:
        files |= graded.notebooks
        if graded.gradebook is not None:
            files["gradebook.db"] = graded.gradebook
        if graded.log:   # (every attempt's log: bounded, like everything a submission can make grow)
            log = graded.log if len(graded.log) <= MAX_LOG_CHARS else (
                graded.log[: MAX_LOG_CHARS // 2] + "\n... cut ...\n" + graded.log[-MAX_LOG_CHARS // 2:])
            files["grading.log"] = log.encode(errors="replace")
    destination = course.result_path(record["student"], record["lesson"]).parent
    incoming = course.root / ".grading-cache" / "incoming"   # same filesystem: renames are atomic
    incoming.mkdir(parents=True, exist_ok=True)
    staged = incoming / uuid.uuid4().hex
    staged.mkdir()
    for name, data in files.items():
        (staged / name).write_bytes(data)
    destination.parent.mkdir(parents=True, exist_ok=True)
    old = incoming / f"{staged.name}-replaced"
    if destination.exists():
        destination.rename(old)
    staged.rename(destination)
    shutil.rmtree(old, ignore_errors=True)
    return record


def check_sandbox(limits: Limits) -> None:
    """Stop with one line naming what is missing, unless the instructor chose --no-sandbox."""
    if limits.sandbox:
        problem = probe()
        if problem:
            raise SandboxUnavailable(problem)


def run_local(tasks: list[Task], bundles: dict[str, Bundle], limits: Limits,
              done: Callable[[Task, Graded], None], jobs: int) -> None:
    """Grade on ``jobs`` threads here, each submission in a worker process forked from the forkserver."""
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(grade_one, bundles[task.assignment], task.submission, limits): task for task in tasks}
        try:
            for future in as_completed(futures):
                task = futures[future]
                try:
                    graded = future.result()
                except Exception as error:  # noqa: BLE001 - the bundle could not be unpacked here
                    graded = Graded(error_record(bundles[task.assignment], task.submission.student,
                                                 f"{type(error).__name__}: {error}"))
                done(task, graded)
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            WORKERS.kill_all()
            raise


def course_modules(assignments: list[str], source: Path) -> tuple[str, ...]:
    """The modules the assignments' setup and test cells import (the grader's forkserver imports them once)."""
    found: set[str] = set()
    for assignment in assignments:
        for path in sorted((source / assignment).glob("*.ipynb")):
            for cell in json.loads(path.read_text()).get("cells", []):
                if not (is_setup_cell(cell) or is_test_cell(cell)):
                    continue
                tree = parse_python(python_lines("".join(cell["source"]) if isinstance(cell["source"], list)
                                                 else cell["source"]))
                for node in ast.walk(tree) if tree else []:
                    if isinstance(node, ast.Import):
                        found |= {alias.name for alias in node.names}
                    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                        found.add(node.module)
    return tuple(sorted(found))


def grade(course: Course, assignments: list[str], limits: Limits, jobs: int, source: Path = SOLUTIONS_DIR,
          students: list[str] | None = None, force: bool = False, progress: bool | None = None,
          dask: str | None = None, release_cache: Path | None = None) -> list[dict]:
    """Grade the chosen assignments' submissions in parallel; returns one record per submission.

    Here (``jobs`` threads), or on a Dask cluster when ``dask`` is its scheduler's address or
    ``local:N`` (``cluster.py``). Local workers come from a multiprocessing forkserver: a script
    that calls this must do so under ``if __name__ == "__main__":`` (``python -m
    ppo_course.autograder`` and notebooks are fine).
    """
    from tqdm.auto import tqdm

    modules = course_modules(assignments, source)
    if dask is None:
        check_sandbox(limits)
        worker_context(modules)   # the forkserver imports them on the other core meanwhile
    chosen = [(assignment, student) for assignment in assignments for student in course.students(assignment)
              if not students or student in students]
    if not chosen:
        raise CourseError(f"no submissions to grade under {course.submitted} for {', '.join(assignments)}")
    cache = release_cache or course.root / ".grading-cache"
    bundles = {assignment: prepare(assignment, source, cache) for assignment in assignments}
    records, tasks, download_of = [], [], downloads(course)
    for assignment, student in chosen:
        try:
            planned = plan(course, bundles[assignment], student, limits, force, download_of)
        except Exception as error:  # noqa: BLE001 - an unreadable folder, say: reported per student, never lost
            planned = keep(course, error_record(bundles[assignment], student, f"{type(error).__name__}: {error}"))
        (tasks.append if isinstance(planned, Task) else records.append)(planned)
    with contextlib.ExitStack() as stack:
        if tasks:   # (a cluster is started, or connected to, only when there is something to grade)
            runner = (partial(run_local, jobs=jobs) if dask is None
                      else stack.enter_context(cluster_runner(dask, limits, modules)))
        bar = stack.enter_context(tqdm(total=len(chosen), initial=len(records), unit="submission", desc="grading",
                                       disable=None if progress is None else not progress))

        def done(task: Task, graded: Graded) -> None:
            records.append(keep(course, graded.record, graded, task))
            bar.update()

        if tasks:
            runner(tasks, bundles, limits, done)
    return sorted(records, key=lambda r: (r["lesson"], r["student"]))


def cluster_runner(address: str, limits: Limits, modules: tuple[str, ...]):
    from .cluster import DaskRunner  # (only with the cluster extra installed)

    return DaskRunner(address, limits, modules)


def summary(records: list[dict]) -> str:
    """What an instructor reads after a run: counts by status, then every problem, one line each (text from
    submissions made printable: no escape codes reach the terminal)."""
    counts: dict[str, int] = {}
    for record in records:
        counts[record["status"]] = counts.get(record["status"], 0) + 1
    skipped = sum(1 for r in records if r.get("skipped"))
    review = sum(1 for r in records if r.get("review"))
    noun = "submission" if len(records) == 1 else "submissions"
    lines = [f"{len(records)} {noun}: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
             + (f"; {review} to review" if review else "")
             + (f" ({skipped} unchanged since the last run, not regraded)" if skipped else "")]
    if any(r.get("isolation") == NO_ISOLATION for r in records):
        lines.insert(0, f"WARNING: {NO_ISOLATION}")
    for record in records:
        who = f"{record['lesson']} {record['student']}"
        if record["status"] != GRADED:
            scored = f" ({record['total']:g}/{record['max']:g} for the rest)" if record["scores"] else ""
            lines.append(f"  {record['status'].upper():10} {who}: {printable(record['message'], 400)}{scored}")
        elif record["notes"]:
            notes = "; ".join(record["notes"])
            lines.append(f"  {'graded':10} {who}: {record['total']:g}/{record['max']:g}; {printable(notes, 600)}")
        for reason in record.get("review", []):
            lines.append(f"  {'REVIEW':10} {who}: {printable(reason, 400)}")
    manual = {r["lesson"]: sum(r["manual"].values()) for r in records if r.get("manual") and r["status"] == GRADED}
    for assignment, points in sorted(manual.items()):
        lines.append(f"  {'MANUAL':10} {assignment}: {points:g} points of each submission wait for a person "
                     "(the `manual` command)")
    return "\n".join(lines)
