"""Autograde every submission of a lesson: rebuilt from the contract, one scratch course and one
fresh kernel per submission, in parallel, each under a wall-clock and a memory limit.

A submission ends with one of these statuses (the summary and the CSV show them):
  graded      nbgrader ran the course's tests; scores are in result.json (notes say what was repaired)
  missing     the student's folder holds no notebook
  unreadable  empty, truncated, not JSON, not a notebook: nothing to run
  timeout     a cell ignored the interrupt at --cell-timeout, or the run passed --timeout; killed
  crashed     the kernel died (os._exit, a segfault, killed for memory)
              For these two, the answer that was running is dropped (it scores 0) and the rest is
              graded again, so a student loses only that exercise; the status stays, for review.
  error       anything else; the message says what
"""
from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import multiprocessing
import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import nbformat
import psutil

from .contract import Contract, grade_id, is_answer_cell, read_contract
from .course import Course, pick_submission
from .paths import SOLUTIONS_DIR, CourseError
from .rebuild import SubmissionError, fill, rebuild
from .release import ensure_tools_on_path, release_in_course

GRADED = "graded"
RUNNING: set[multiprocessing.Process] = set()   # workers in flight, killed if the instructor presses Ctrl-C


@dataclass(frozen=True)
class Limits:
    cell_timeout: int = 30        # seconds per cell, then the kernel is interrupted
    timeout: int = 300            # seconds per submission, then its processes are killed
    memory_gb: float = 4.0        # address space of the grader and its kernel


@dataclass(frozen=True)
class LessonKit:
    """What grading one lesson needs, made once per run by nbgrader's generate_assignment."""
    lesson: str
    contract: Contract
    released: nbformat.NotebookNode
    gradebook: Path               # the assignment's gradebook (holds the hidden tests)
    extra_files: Path             # the released folder: data files a notebook reads
    source_sha256: str


def prepare_lesson(lesson: str, source: Path, workdir: Path) -> LessonKit:
    source_notebook = next((source / lesson).glob("*.ipynb"), None)
    if source_notebook is None:
        raise CourseError(f"no source notebook for {lesson} in {source}")
    root = workdir / lesson
    released_dir = release_in_course(lesson, source, root)
    shutil.rmtree(root / "source")  # solutions never sit next to a student's scratch course
    return LessonKit(lesson, read_contract(source_notebook),
                     nbformat.read(released_dir / source_notebook.name, as_version=4),
                     root / "gradebook.db", released_dir,
                     hashlib.sha256(source_notebook.read_bytes()).hexdigest())


KEPT_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ")


def grading_env() -> dict[str, str]:
    """A minimal environment for student code: none of the instructor's tokens or settings, no PYTHONPATH."""
    ensure_tools_on_path()
    env = {name: os.environ[name] for name in KEPT_ENV if name in os.environ}
    env.update(PPO_COURSE_FAST="1", MPLBACKEND="Agg", PYDEVD_DISABLE_FILE_VALIDATION="1")
    return env


def descendants(process: multiprocessing.Process, known: dict[int, psutil.Process]) -> None:
    """Remember the worker's descendants (its kernel runs in a session of its own, so no process
    group covers both); psutil.Process remembers each one's start time, so a reused pid is never hit."""
    try:
        for child in psutil.Process(process.pid).children(recursive=True):
            known.setdefault(child.pid, child)
    except psutil.NoSuchProcess:
        pass


def kill_all(process: multiprocessing.Process, known: dict[int, psutil.Process]) -> None:
    if process.is_alive():
        descendants(process, known)
        process.kill()
    for member in known.values():
        try:
            member.kill()  # psutil checks it is still the same process
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(list(known.values()), timeout=5)
    process.join()


PRELOAD = ["nbgrader.apps", "nbgrader.api", "nbgrader.converters", "nbgrader.preprocessors",
           "jupyter_client", "nbclient", "ppo_course.autograder.worker", "ppo_course.autograder.release"]


@functools.lru_cache(maxsize=None)
def worker_context():
    """Workers are forked from a forkserver that imported nbgrader once (fresh, single-threaded:
    safe to fork); each submission still gets a process, and a kernel, of its own."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def run_worker(scratch: Path, limits: Limits) -> dict:
    """Autograde the scratch course in a child process; its outcome, or a timeout/crash record."""
    from .worker import run_in_child

    family: dict[int, psutil.Process] = {}
    process = worker_context().Process(target=run_in_child, args=(str(scratch), grading_env()))
    process.start()
    RUNNING.add(process)
    deadline = time.monotonic() + limits.timeout
    try:
        while process.is_alive() and time.monotonic() < deadline:
            descendants(process, family)
            time.sleep(0.25)
    finally:
        timed_out = process.is_alive()
        kill_all(process, family)  # on time-out, and any kernel or child the worker left behind
        RUNNING.discard(process)
    outcome_path = scratch / "outcome.json"
    if timed_out:
        outcome = {"ok": False, "status": "timeout",
                   "log": f"still running after {limits.timeout} s (a loop that ignores interrupts?): killed"}
    elif outcome_path.exists():
        outcome = json.loads(outcome_path.read_text())
    else:
        outcome = {"ok": False, "log": f"the grader exited with status {process.exitcode}: " + last_line(scratch)}
    running = scratch / "running_cell"
    if running.exists():
        outcome["running_cell"] = int(running.read_text() or -1)
    return outcome


def last_line(scratch: Path) -> str:
    lines = [l for l in (scratch / "worker.log").read_text(errors="replace").splitlines() if l.strip()]
    return lines[-1][:300] if lines else "no output"


def failure_status(log: str) -> tuple[str, str]:
    """Classify nbgrader's failure log as (status, one-line message)."""
    if "CellTimeoutError" in log:
        return "timeout", "a cell kept running after it was interrupted at the time limit (a loop that ignores Ctrl-C?)"
    if "DeadKernelError" in log or "Kernel died" in log or "kernel died" in log:
        return "crashed", "the kernel died while running the notebook (os._exit, a crash, or out of memory)"
    if "MemoryError" in log:
        return "crashed", "out of memory"
    lines = [l.strip() for l in log.splitlines() if l.strip()]
    return "error", (lines[-1][:300] if lines else "nbgrader failed without a message")


def stage(scratch: Path, kit: LessonKit, student: str, notebook: nbformat.NotebookNode, limits: Limits) -> None:
    """A scratch nbgrader course holding the released files and one rebuilt submission."""
    course = scratch / "course"
    shutil.copytree(kit.extra_files, course / "source" / kit.lesson,
                    ignore=shutil.ignore_patterns("*.ipynb"))  # data files only: nbgrader copies them in
    submitted = course / "submitted" / student / kit.lesson
    submitted.mkdir(parents=True)
    nbformat.write(notebook, submitted / kit.contract.notebook)
    shutil.copy(kit.gradebook, scratch / "gradebook.db")
    job = {"lesson": kit.lesson, "student": student, "notebook": kit.contract.notebook,
           "cell_timeout": limits.cell_timeout, "memory_bytes": int(limits.memory_gb * 2**30)}
    (scratch / "job.json").write_text(json.dumps(job))


def keep_graded(scratch: Path, kit: LessonKit, student: str, destination: Path) -> None:
    """Move the graded notebook and its gradebook into the course (replacing an earlier grading)."""
    staged = destination.with_name(destination.name + ".new")
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir(parents=True)
    graded = scratch / "course" / "autograded" / student / kit.lesson / kit.contract.notebook
    if graded.exists():
        shutil.copy(graded, staged / kit.contract.notebook)
    shutil.copy(scratch / "gradebook.db", staged / "gradebook.db")
    shutil.copy(scratch / "worker.log", staged / "grading.log")
    shutil.rmtree(destination, ignore_errors=True)
    staged.rename(destination)


def grade_submission(course: Course, kit: LessonKit, student: str, limits: Limits, force: bool) -> dict:
    """Grade one student's submission of one lesson; returns (and saves) its result record."""
    record = {"student": student, "lesson": kit.lesson, "status": GRADED, "message": "", "notes": [],
              "scores": {}, "max": kit.contract.max_points, "source_sha256": kit.source_sha256}
    path, notes = pick_submission(course.submitted / student / kit.lesson)
    record["notes"] = notes
    if path is None:
        return save(course, record | {"status": "missing", "message": notes[0], "notes": []})
    data = path.read_bytes()
    record |= {"file": path.relative_to(course.root).as_posix(), "sha256": hashlib.sha256(data).hexdigest()}
    previous = course.result_path(student, kit.lesson)
    if not force and previous.exists():
        old = json.loads(previous.read_text())
        if (old.get("sha256"), old.get("source_sha256")) == (record["sha256"], kit.source_sha256):
            return old | {"skipped": True}
    try:
        rebuilt = rebuild(data, kit.released, kit.contract)
    except SubmissionError as error:
        return save(course, record | {"status": error.status, "message": str(error)})
    record["notes"] += rebuilt.notes
    started = time.monotonic()
    answers = {answer_id: answer.source for answer_id, answer in rebuilt.answers.items()}
    outcome, dropped = grade_answers(kit, student, answers, limits, previous.parent)
    record["seconds"] = round(time.monotonic() - started, 1)
    if dropped:  # keep the first failure's status so the instructor looks, but score the rest
        record |= {"status": dropped[0][1], "message": f"{dropped[0][0]}: {dropped[0][2]}"}
        record["notes"] += [f"graded again without {answer_id} ({status})" for answer_id, status, _ in dropped]
    if not outcome["ok"]:
        status, message = failure(outcome)
        return save(course, record | {"status": status, "message": message})
    if outcome["stopped_cells"]:
        record["notes"].append(f"{outcome['stopped_cells']} cell(s) stopped at the {limits.cell_timeout} s limit")
    record["scores"] = {e.test_id: outcome["scores"].get(e.test_id) for e in kit.contract.exercises if e.test_id}
    return save(course, record)


def failure(outcome: dict) -> tuple[str, str]:
    return (outcome["status"], outcome["log"]) if "status" in outcome else failure_status(outcome["log"])


def grade_answers(kit: LessonKit, student: str, answers: dict[str, str], limits: Limits,
                  keep: Path) -> tuple[dict, list[tuple[str, str, str]]]:
    """Autograde; when the kernel dies or hangs inside an exercise, grade again without that answer
    (it scores 0, the others are graded as usual). Returns the last outcome and what was dropped."""
    dropped: list[tuple[str, str, str]] = []   # (answer_id, status, message)
    while True:
        notebook = fill(kit.released, {k: v for k, v in answers.items() if k not in {d[0] for d in dropped}})
        with tempfile.TemporaryDirectory(prefix="ppo-grade-") as tmp:
            scratch = Path(tmp)
            stage(scratch, kit, student, notebook, limits)
            outcome = run_worker(scratch, limits)
            keep_graded(scratch, kit, student, keep)
        culprit = None if outcome["ok"] else culprit_of(outcome.get("running_cell"), kit)
        if culprit is None or culprit not in answers or culprit in {d[0] for d in dropped}:
            return outcome, dropped
        dropped.append((culprit, *failure(outcome)))


def culprit_of(running_cell: int | None, kit: LessonKit) -> str | None:
    """The exercise whose answer was running: the last answer cell at or above the running cell."""
    if running_cell is None:
        return None
    above = [grade_id(c) for i, c in enumerate(kit.released.cells) if is_answer_cell(c) and i <= running_cell]
    return above[-1] if above else None


def save(course: Course, record: dict) -> dict:
    record["total"] = sum(s or 0 for s in record["scores"].values())
    record["graded_at"] = dt.datetime.now().isoformat(timespec="seconds")
    path = course.result_path(record["student"], record["lesson"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1))
    return record


def safely(course: Course, kit: LessonKit, student: str, limits: Limits, force: bool) -> dict:
    """grade_submission that never raises: one student's surprise must not stop the batch."""
    try:
        return grade_submission(course, kit, student, limits, force)
    except Exception as error:  # noqa: BLE001 - reported per student, never lost
        record = {"student": student, "lesson": kit.lesson, "status": "error", "scores": {}, "notes": [],
                  "max": kit.contract.max_points, "message": f"{type(error).__name__}: {error}"}
        return save(course, record)


def grade(course: Course, lessons: list[str], limits: Limits, jobs: int, source: Path = SOLUTIONS_DIR,
          students: list[str] | None = None, force: bool = False, progress: bool | None = None) -> list[dict]:
    """Grade the chosen lessons' submissions in parallel; returns one record per submission.

    Workers come from a multiprocessing forkserver: a script that calls this must do so under
    ``if __name__ == "__main__":`` (``python -m ppo_course.autograder`` and notebooks are fine).
    """
    from tqdm.auto import tqdm

    with tempfile.TemporaryDirectory(prefix="ppo-grade-kit-") as tmp:
        kits = {lesson: prepare_lesson(lesson, source, Path(tmp)) for lesson in lessons}
        tasks = [(kits[lesson], student) for lesson in lessons for student in course.students(lesson)
                 if not students or student in students]
        if not tasks:
            raise CourseError(f"no submissions to grade under {course.submitted} for {', '.join(lessons)}")
        records = []
        with ThreadPoolExecutor(max_workers=jobs) as pool, \
                tqdm(total=len(tasks), unit="submission", disable=None if progress is None else not progress,
                     desc="grading") as bar:
            futures = [pool.submit(safely, course, kit, student, limits, force) for kit, student in tasks]
            try:
                for future in as_completed(futures):
                    records.append(future.result())
                    bar.update()
            except KeyboardInterrupt:
                pool.shutdown(wait=False, cancel_futures=True)
                for process in list(RUNNING):
                    process.kill()  # its thread then kills the kernel and cleans up
                raise
    return sorted(records, key=lambda r: (r["lesson"], r["student"]))


def summary(records: list[dict]) -> str:
    """What an instructor reads after a run: counts by status, then every problem, one line each."""
    counts: dict[str, int] = {}
    for record in records:
        counts[record["status"]] = counts.get(record["status"], 0) + 1
    skipped = sum(1 for r in records if r.get("skipped"))
    lines = [f"{len(records)} submissions: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
             + (f" ({skipped} unchanged since the last run, not regraded)" if skipped else "")]
    for record in records:
        who = f"{record['lesson']} {record['student']}"
        if record["status"] != GRADED:
            scored = f" ({record['total']:g}/{record['max']:g} for the rest)" if record["scores"] else ""
            lines.append(f"  {record['status'].upper():10} {who}: {record['message']}{scored}")
        elif record["notes"]:
            lines.append(f"  {'graded':10} {who}: {record['total']:g}/{record['max']:g}; " + "; ".join(record["notes"]))
    return "\n".join(lines)
