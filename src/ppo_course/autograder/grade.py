"""Autograde every submission of a lesson: rebuilt from the contract, one scratch course and one
fresh sandboxed kernel per submission, in parallel, each under time, memory and process limits.

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
import hashlib
import json
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .contract import Contract, grade_id, is_answer_cell, read_contract
from .course import Course, pick_submission
from .paths import SOLUTIONS_DIR, CourseError, lesson_notebook
from .rebuild import SubmissionError, fill, rebuild
from .release import release_in_course
from .sandbox import SandboxLimits, SandboxUnavailable, probe
from .supervise import Workers, worker_context

GRADED = "graded"
ISOLATION = "sandbox: bubblewrap (user, mount, pid, network, ipc namespaces); tests run in the grader"
NO_ISOLATION = ("no sandbox (--no-sandbox): student code ran with the grader's rights; "
                "tests still ran in the grader")


@dataclass(frozen=True)
class Limits:
    cell_timeout: int = 30        # seconds per cell, then the kernel is interrupted
    timeout: int = 300            # seconds per submission, then its processes are killed
    memory_gb: float = 4.0        # resident memory of each kernel (address space where no cgroup can be made)
    max_pids: int = 256           # processes and threads of each kernel
    scratch_mb: int = 512         # the kernel's writable home (a tmpfs)
    sandbox: bool = True          # False: --no-sandbox

    def sandbox_limits(self) -> SandboxLimits:
        return SandboxLimits(memory_bytes=int(self.memory_gb * 2**30), cpu_seconds=self.timeout,
                             max_pids=self.max_pids, scratch_bytes=self.scratch_mb * 2**20)


@dataclass(frozen=True)
class LessonKit:
    """What grading one lesson needs, made once per run (the release is cached in the course folder)."""
    lesson: str
    contract: Contract
    released: nbformat.NotebookNode
    gradebook: Path               # the assignment's gradebook (holds the hidden tests: never in a sandbox)
    extra_files: Path             # the released folder: data files a notebook reads
    source_sha256: str
    student_package: Path         # ppo_course with this lesson's references stubbed (student_package.py)


def lesson_digest(folder: Path) -> str:
    """A digest of a lesson's source folder and of the tools that release it (the cache key)."""
    from importlib.metadata import version  # (importing nbgrader itself takes seconds)

    digest = hashlib.sha256(f"nbgrader {version('nbgrader')}\n".encode())
    digest.update(Path(__file__).with_name("release.py").read_bytes())
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def cached_release(lesson: str, source: Path, cache: Path) -> Path:
    """nbgrader's release of ``lesson`` (gradebook.db + release/), made once per source version."""
    folder = cache / f"{lesson}-{lesson_digest(source / lesson)[:16]}"
    if not (folder / "release" / lesson).is_dir():
        cache.mkdir(parents=True, exist_ok=True)
        staged = Path(tempfile.mkdtemp(prefix=f".{lesson}-", dir=cache))
        release_in_course(lesson, source, staged)
        shutil.rmtree(staged / "source")  # solutions never sit next to a student's scratch course
        try:
            staged.rename(folder)
        except OSError:  # another grader made it meanwhile
            shutil.rmtree(staged, ignore_errors=True)
    return folder


def prepare_lesson(lesson: str, source: Path, workdir: Path, cache: Path) -> LessonKit:
    from .student_package import build_student_package

    source_notebook = lesson_notebook(lesson, source)
    root = cached_release(lesson, source, cache)
    contract = read_contract(source_notebook)
    package = workdir / lesson / "ppo_course"
    build_student_package(contract.function_names, package)
    released_dir = root / "release" / lesson
    return LessonKit(lesson, contract, nbformat.read(released_dir / source_notebook.name, as_version=4),
                     root / "gradebook.db", released_dir,
                     hashlib.sha256(source_notebook.read_bytes()).hexdigest(), package)


def short_tmp() -> str:
    """A temp folder whose paths fit a Unix socket address (108 bytes), for the kernel's sockets."""
    folder = tempfile.gettempdir()
    return folder if len(folder) < 60 else "/tmp"


def stage(scratch: Path, run_dir: Path, kit: LessonKit, student: str, notebook: nbformat.NotebookNode,
          limits: Limits) -> None:
    """A scratch nbgrader course holding the released files and one rebuilt submission, and the job."""
    course = scratch / "course"
    shutil.copytree(kit.extra_files, course / "source" / kit.lesson,
                    ignore=shutil.ignore_patterns("*.ipynb"))  # data files only: nbgrader copies them in
    submitted = course / "submitted" / student / kit.lesson
    submitted.mkdir(parents=True)
    nbformat.write(notebook, submitted / kit.contract.notebook)
    shutil.copy(kit.gradebook, scratch / "gradebook.db")
    job = {"lesson": kit.lesson, "student": student, "notebook": kit.contract.notebook,
           "cell_timeout": limits.cell_timeout, "sandboxed": limits.sandbox,
           "limits": vars(limits.sandbox_limits()), "package_dir": str(kit.student_package),
           "data_files": [str(p) for p in sorted(kit.extra_files.iterdir()) if p.is_file() and p.suffix != ".ipynb"],
           "functions": sorted(kit.contract.function_names),
           "run_dir": str(run_dir), "kernel_log": str(scratch / "kernel.log"),
           "running_file": str(scratch / "running_cell"), "abort_file": str(scratch / "abort.json"),
           "limits_file": str(scratch / "limits.json")}
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
    log = (scratch / "worker.log").read_text(errors="replace")
    kernel_log = scratch / "kernel.log"
    if kernel_log.exists() and kernel_log.stat().st_size:
        with open(kernel_log, "rb") as handle:   # the kernel's own stderr (capped: student code writes there)
            handle.seek(max(0, kernel_log.stat().st_size - 16384))
            log += "\n--- the kernel's stderr (last 16 KB) ---\n" + handle.read().decode(errors="replace")
    (staged / "grading.log").write_text(log)
    shutil.rmtree(destination, ignore_errors=True)
    staged.rename(destination)


def grade_submission(course: Course, kit: LessonKit, student: str, limits: Limits, force: bool,
                     workers: Workers) -> dict:
    """Grade one student's submission of one lesson; returns (and saves) its result record."""
    record = {"student": student, "lesson": kit.lesson, "status": GRADED, "message": "", "notes": [],
              "scores": {}, "max": kit.contract.max_points, "source_sha256": kit.source_sha256,
              "isolation": ISOLATION if limits.sandbox else NO_ISOLATION}
    path, notes = pick_submission(course.submitted / student / kit.lesson)
    record["notes"] = notes
    if path is None:
        return save(course, record | {"status": "missing", "message": notes[0], "notes": []})
    if path.suffix.lower() == ".ipynb" and path.name != kit.contract.notebook:
        record["notes"].append(f"graded {path.name} (the lesson's notebook is {kit.contract.notebook})")
    data = path.read_bytes()
    record |= {"file": path.relative_to(course.root).as_posix(), "sha256": hashlib.sha256(data).hexdigest()}
    previous = course.result_path(student, kit.lesson)
    if not force and previous.exists():
        old = json.loads(previous.read_text())
        if (old.get("sha256"), old.get("source_sha256"), old.get("isolation")) == (
                record["sha256"], kit.source_sha256, record["isolation"]):
            return old | {"skipped": True}
    try:
        rebuilt = rebuild(data, kit.released, kit.contract)
    except SubmissionError as error:
        return save(course, record | {"status": error.status, "message": str(error)})
    record["notes"] += rebuilt.notes
    started = time.monotonic()
    answers = {answer_id: answer.source for answer_id, answer in rebuilt.answers.items()}
    outcome, dropped = grade_answers(kit, student, answers, limits, previous.parent, workers)
    record["seconds"] = round(time.monotonic() - started, 1)
    if outcome.get("memory"):
        record["memory_limit"] = outcome["memory"]
    if dropped:  # keep the first failure's status so the instructor looks, but score the rest
        record |= {"status": dropped[0][1], "message": f"{dropped[0][0]}: {dropped[0][2]}"}
        record["notes"] += [f"graded again without {answer_id} ({status})" for answer_id, status, _ in dropped]
    if not outcome["ok"]:
        return save(course, record | {"status": outcome["status"], "message": outcome["log"]})
    if outcome["stopped_cells"]:
        record["notes"].append(f"{outcome['stopped_cells']} cell(s) stopped at the {limits.cell_timeout} s limit")
    record["notes"] += outcome.get("notes", [])
    record["scores"] = {e.test_id: outcome["scores"].get(e.test_id) for e in kit.contract.exercises if e.test_id}
    return save(course, record)


def grade_answers(kit: LessonKit, student: str, answers: dict[str, str], limits: Limits, keep: Path,
                  workers: Workers) -> tuple[dict, list[tuple[str, str, str]]]:
    """Autograde; when the kernel dies or hangs inside an exercise, grade again without that answer
    (it scores 0, the others are graded as usual). Returns the last outcome and what was dropped."""
    dropped: list[tuple[str, str, str]] = []   # (answer_id, status, message)
    while True:
        notebook = fill(kit.released, {k: v for k, v in answers.items() if k not in {d[0] for d in dropped}})
        with tempfile.TemporaryDirectory(prefix="ppo-grade-") as tmp, \
                tempfile.TemporaryDirectory(prefix="ppo-run-", dir=short_tmp()) as run_dir:
            scratch = Path(tmp)
            stage(scratch, Path(run_dir), kit, student, notebook, limits)
            outcome = workers.run(scratch, limits.timeout)
            keep_graded(scratch, kit, student, keep)
        culprit = None if outcome["ok"] else culprit_of(outcome.get("running_cell"), kit)
        if culprit is None or culprit not in answers or culprit in {d[0] for d in dropped}:
            return outcome, dropped
        dropped.append((culprit, outcome["status"], outcome["log"]))


def culprit_of(running_cell: int | None, kit: LessonKit) -> str | None:
    """The exercise whose answer was running: the last answer cell at or above the running cell
    (for a test cell, the exercise it tests)."""
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


def safely(course: Course, kit: LessonKit, student: str, limits: Limits, force: bool, workers: Workers) -> dict:
    """grade_submission that never raises: one student's surprise must not stop the batch."""
    try:
        return grade_submission(course, kit, student, limits, force, workers)
    except Exception as error:  # noqa: BLE001 - reported per student, never lost
        record = {"student": student, "lesson": kit.lesson, "status": "error", "scores": {}, "notes": [],
                  "max": kit.contract.max_points, "message": f"{type(error).__name__}: {error}"}
        return save(course, record)


def check_sandbox(limits: Limits) -> None:
    """Stop with one line naming what is missing, unless the instructor chose --no-sandbox."""
    if limits.sandbox:
        problem = probe()
        if problem:
            raise SandboxUnavailable(problem)


def grade(course: Course, lessons: list[str], limits: Limits, jobs: int, source: Path = SOLUTIONS_DIR,
          students: list[str] | None = None, force: bool = False, progress: bool | None = None) -> list[dict]:
    """Grade the chosen lessons' submissions in parallel; returns one record per submission.

    Workers come from a multiprocessing forkserver: a script that calls this must do so under
    ``if __name__ == "__main__":`` (``python -m ppo_course.autograder`` and notebooks are fine).
    """
    from tqdm.auto import tqdm

    check_sandbox(limits)
    tasks = [(lesson, student) for lesson in lessons for student in course.students(lesson)
             if not students or student in students]
    if not tasks:
        raise CourseError(f"no submissions to grade under {course.submitted} for {', '.join(lessons)}")
    workers = Workers()
    worker_context()   # the worker server loads nbgrader and torch on the other core meanwhile
    with tempfile.TemporaryDirectory(prefix="ppo-grade-kit-") as tmp:
        kits = {lesson: prepare_lesson(lesson, source, Path(tmp), course.root / ".grading-cache")
                for lesson in lessons}
        records = []
        with ThreadPoolExecutor(max_workers=jobs) as pool, \
                tqdm(total=len(tasks), unit="submission", disable=None if progress is None else not progress,
                     desc="grading") as bar:
            futures = [pool.submit(safely, course, kits[lesson], student, limits, force, workers)
                       for lesson, student in tasks]
            try:
                for future in as_completed(futures):
                    records.append(future.result())
                    bar.update()
            except KeyboardInterrupt:
                pool.shutdown(wait=False, cancel_futures=True)
                workers.kill_all()
                raise
    return sorted(records, key=lambda r: (r["lesson"], r["student"]))


def summary(records: list[dict]) -> str:
    """What an instructor reads after a run: counts by status, then every problem, one line each."""
    counts: dict[str, int] = {}
    for record in records:
        counts[record["status"]] = counts.get(record["status"], 0) + 1
    skipped = sum(1 for r in records if r.get("skipped"))
    noun = "submission" if len(records) == 1 else "submissions"
    lines = [f"{len(records)} {noun}: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
             + (f" ({skipped} unchanged since the last run, not regraded)" if skipped else "")]
    if any(r.get("isolation") == NO_ISOLATION for r in records):
        lines.insert(0, f"WARNING: {NO_ISOLATION}")
    for record in records:
        who = f"{record['lesson']} {record['student']}"
        if record["status"] != GRADED:
            scored = f" ({record['total']:g}/{record['max']:g} for the rest)" if record["scores"] else ""
            lines.append(f"  {record['status'].upper():10} {who}: {record['message']}{scored}")
        elif record["notes"]:
            lines.append(f"  {'graded':10} {who}: {record['total']:g}/{record['max']:g}; " + "; ".join(record["notes"]))
    return "\n".join(lines)
