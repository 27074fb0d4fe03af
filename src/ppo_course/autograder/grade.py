"""Autograde every submission of a lesson: rebuilt from the contract, one scratch course and one
fresh sandboxed kernel per submission, in parallel, each under time, memory and process limits.

Grading one submission is a pure function, ``grade_one(bundle, submission, limits) -> Graded``: the
lesson's release bundle (``bundle.py``), the submitted bytes and the limits in; the result record,
the graded notebook, its gradebook (what ``feedback`` renders) and the log out. It touches no course
folder, so it runs the same in a thread here (``--jobs N``) and on a Dask worker elsewhere
(``--dask``, ``cluster.py``); the client alone reads submitted/ and writes autograded/, each
submission's folder replaced in one rename.

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

import contextlib
import datetime as dt
import hashlib
import json
import shutil
import tempfile
import time
import traceback
import uuid
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable

import nbformat

from .bundle import KITS, LessonBundle, make_bundle
from .collect import downloads
from .contract import Contract, grade_id, is_answer_cell, read_contract
from .course import Course, pick_submission
from .paths import SOLUTIONS_DIR, CourseError, lesson_notebook
from .rebuild import SubmissionError, fill, rebuild
from .release import release_in_course
from .safe_text import printable
from .sandbox import SandboxLimits, SandboxUnavailable, probe
from .supervise import WORKERS, worker_context

GRADED = "graded"
MAX_LOG_CHARS = 2**20
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
    """A release bundle as one grader unpacked it (``bundle.KITS`` keeps one per bundle and process)."""
    lesson: str
    contract: Contract
    released: nbformat.NotebookNode
    gradebook: Path               # the assignment's gradebook (holds the hidden tests: never in a sandbox)
    extra_files: Path             # the released folder: data files a notebook reads
    source_sha256: str
    student_package: Path         # ppo_course with this lesson's references stubbed (student_package.py)

    @classmethod
    def unpacked(cls, bundle: LessonBundle, folder: Path) -> "LessonKit":
        from .student_package import build_student_package

        package = folder / "ppo_course"
        build_student_package(bundle.contract.function_names, package)
        released = folder / "release"
        return cls(bundle.lesson, bundle.contract, nbformat.read(released / bundle.contract.notebook, as_version=4),
                   folder / "gradebook.db", released, bundle.source_sha256, package)


@dataclass(frozen=True)
class Submission:
    student: str
    name: str                     # the file's name as handed in (a note says when it is not the lesson's)
    data: bytes

    def __repr__(self) -> str:
        return f"Submission({self.student}, {self.name}, {len(self.data)} bytes)"


@dataclass
class Graded:
    """What grading one submission produced; the client writes it under autograded/<student>/<lesson>/."""
    record: dict
    notebook: bytes | None = None     # the notebook as it ran, outputs and scores in it
    gradebook: bytes | None = None    # its nbgrader gradebook (the feedback page is rendered from both)
    log: str = ""                     # grading.log: the grader's and the kernel's messages, every attempt


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


def prepare_lesson(lesson: str, source: Path, cache: Path) -> LessonBundle:
    """The release bundle of ``lesson`` (the nbgrader release is cached in the course folder)."""
    source_notebook = lesson_notebook(lesson, source)
    root = cached_release(lesson, source, cache)
    return make_bundle(lesson, read_contract(source_notebook), hashlib.sha256(source_notebook.read_bytes()).hexdigest(),
                       root)


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


def attempt_files(scratch: Path, kit: LessonKit, student: str) -> tuple[bytes | None, bytes, str]:
    """The graded notebook (if nbgrader got that far), its gradebook and the log of one attempt."""
    graded = scratch / "course" / "autograded" / student / kit.lesson / kit.contract.notebook
    log = (scratch / "worker.log").read_text(errors="replace")
    kernel_log = scratch / "kernel.log"
    if kernel_log.exists() and kernel_log.stat().st_size:
        with open(kernel_log, "rb") as handle:   # the kernel's own stderr (capped: student code writes there)
            handle.seek(max(0, kernel_log.stat().st_size - 16384))
            log += "\n--- the kernel's stderr (last 16 KB) ---\n" + handle.read().decode(errors="replace")
    return (graded.read_bytes() if graded.exists() else None), (scratch / "gradebook.db").read_bytes(), log


def new_record(kit: LessonKit | LessonBundle, submission: Submission, limits: Limits) -> dict:
    return {"student": submission.student, "lesson": kit.lesson, "status": GRADED, "message": "", "notes": [],
            "review": [], "scores": {}, "max": kit.contract.max_points, "source_sha256": kit.source_sha256,
            "isolation": ISOLATION if limits.sandbox else NO_ISOLATION,
            "sha256": hashlib.sha256(submission.data).hexdigest()}


def finished(record: dict) -> dict:
    record["total"] = sum(s or 0 for s in record["scores"].values())
    return record


def error_record(bundle: LessonBundle, student: str, message: str) -> dict:
    """A submission the grader failed on (not the student's doing): no digest, so the next run grades it again."""
    return finished({"student": student, "lesson": bundle.lesson, "status": "error", "scores": {}, "notes": [],
                     "max": bundle.contract.max_points, "message": message})


def grade_one(bundle: LessonBundle, submission: Submission, limits: Limits) -> Graded:
    """Grade one submission: (release bundle, submitted bytes, limits) -> Graded. Reads and writes no
    course folder. Raises only when this grader cannot grade at all (the bundle cannot be unpacked
    here): on a cluster, another worker then tries. Any failure on the submission is in the record."""
    kit = KITS.kit(bundle)
    try:
        return grade_kit(kit, submission, limits)
    except Exception as error:  # noqa: BLE001 - reported per student, never lost
        return Graded(error_record(bundle, submission.student, f"{type(error).__name__}: {error}"),
                      log=traceback.format_exc())


def grade_kit(kit: LessonKit, submission: Submission, limits: Limits) -> Graded:
    record = new_record(kit, submission, limits)
    if submission.name.lower().endswith(".ipynb") and submission.name != kit.contract.notebook:
        record["notes"].append(f"graded {submission.name} (the lesson's notebook is {kit.contract.notebook})")
    try:
        rebuilt = rebuild(submission.data, kit.released, kit.contract)
    except SubmissionError as error:
        return Graded(finished(record | {"status": error.status, "message": str(error)}))
    record["notes"] += rebuilt.notes
    started = time.monotonic()
    answers = {answer_id: answer.source for answer_id, answer in rebuilt.answers.items()}
    outcome, dropped, graded = grade_answers(kit, submission.student, answers, limits)
    record["seconds"] = round(time.monotonic() - started, 1)
    if outcome.get("memory"):
        record["memory_limit"] = outcome["memory"]
    if dropped:  # keep the first failure's status so the instructor looks, but score the rest
        record |= {"status": dropped[0][1], "message": f"{dropped[0][0]}: {dropped[0][2]}"}
        record["notes"] += [f"graded again without {answer_id} ({status})" for answer_id, status, _ in dropped]
    if not outcome["ok"]:
        graded.record = finished(record | {"status": outcome["status"], "message": outcome["log"]})
        return graded
    if outcome["stopped_cells"]:
        record["notes"].append(f"{outcome['stopped_cells']} cell(s) stopped at the {limits.cell_timeout} s limit")
    record["notes"] += outcome.get("notes", [])
    record["scores"] = {e.test_id: outcome["scores"].get(e.test_id) for e in kit.contract.exercises if e.test_id}
    graded.record = finished(record)
    return graded


def grade_answers(kit: LessonKit, student: str, answers: dict[str, str], limits: Limits
                  ) -> tuple[dict, list[tuple[str, str, str]], Graded]:
    """Autograde; when the kernel dies or hangs inside an exercise, grade again without that answer
    (it scores 0, the others are graded as usual). Returns the last outcome, what was dropped, and
    the last attempt's files with every attempt's log."""
    dropped: list[tuple[str, str, str]] = []   # (answer_id, status, message)
    graded = Graded({})
    while True:
        notebook = fill(kit.released, {k: v for k, v in answers.items() if k not in {d[0] for d in dropped}})
        with tempfile.TemporaryDirectory(prefix="ppo-grade-") as tmp, \
                tempfile.TemporaryDirectory(prefix="ppo-run-", dir=short_tmp()) as run_dir:
            scratch = Path(tmp)
            stage(scratch, Path(run_dir), kit, student, notebook, limits)
            outcome = WORKERS.run(scratch, limits.timeout)
            graded.notebook, graded.gradebook, log = attempt_files(scratch, kit, student)
        if dropped:
            graded.log += f"\n--- graded again without {', '.join(d[0] for d in dropped)} ---\n"
        graded.log += log
        culprit = None if outcome["ok"] else culprit_of(outcome.get("running_cell"), kit)
        if culprit is None or culprit not in answers or culprit in {d[0] for d in dropped}:
            return outcome, dropped, graded
        dropped.append((culprit, outcome["status"], outcome["log"]))


def culprit_of(running_cell: int | None, kit: LessonKit) -> str | None:
    """The exercise whose answer was running: the last answer cell at or above the running cell
    (for a test cell, the exercise it tests)."""
    if running_cell is None:
        return None
    above = [grade_id(c) for i, c in enumerate(kit.released.cells) if is_answer_cell(c) and i <= running_cell]
    return above[-1] if above else None


# ------------------------------------------------------------------ the client: the course folder


@dataclass
class Task:
    """One submission to grade, with what only the client knows (where it lies, how it was picked)."""
    lesson: str
    submission: Submission
    file: str                                   # its path in the course folder
    notebook: str                               # the lesson's notebook name: the graded copy is saved as it
    notes: list[str] = field(default_factory=list)
    review: list[str] = field(default_factory=list)   # why an instructor should look (several files at once)


def plan(course: Course, bundle: LessonBundle, student: str, limits: Limits, force: bool,
         download_of: dict[str, str] | None = None) -> Task | dict:
    """The task for one student's submission, or its final record when there is nothing to run: no
    notebook handed in (written as ``missing``), or unchanged since its last grading (``skipped``)."""
    pick = pick_submission(course.submitted / student / bundle.lesson, download_of)
    if pick.path is None:
        record = finished({"student": student, "lesson": bundle.lesson, "status": "missing", "message": pick.notes[0],
                           "notes": [], "review": [], "scores": {}, "max": bundle.contract.max_points,
                           "source_sha256": bundle.source_sha256,
                           "isolation": ISOLATION if limits.sandbox else NO_ISOLATION})
        return keep(course, record)
    task = Task(bundle.lesson, Submission(student, pick.path.name, pick.path.read_bytes()),
                pick.path.relative_to(course.root).as_posix(), bundle.contract.notebook, pick.notes, pick.review)
    previous = course.result_path(student, bundle.lesson)
    if not force and previous.exists():
        old = json.loads(previous.read_text())
        if (old.get("sha256"), old.get("source_sha256"), old.get("isolation"), old.get("review", [])) == (
                hashlib.sha256(task.submission.data).hexdigest(), bundle.source_sha256,
                ISOLATION if limits.sandbox else NO_ISOLATION, task.review):
            return old | {"skipped": True}
    return task


def keep(course: Course, record: dict, graded: Graded | None = None, task: Task | None = None) -> dict:
    """Write one submission's folder under autograded/ (result.json, and the graded notebook, its
    gradebook and grading.log when there are some), replacing an earlier grading in one rename:
    a reader, or a run stopped at any moment, finds the old folder or the new one, never a mix."""
    if task is not None:
        record["notes"] = task.notes + record["notes"]
        record["review"] = task.review
        record["file"] = task.file
    record["graded_at"] = dt.datetime.now().isoformat(timespec="seconds")
    files = {"result.json": json.dumps(record, indent=1).encode()}
    if graded is not None and task is not None:
        if graded.notebook is not None:
            files[task.notebook] = graded.notebook
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


def run_local(tasks: list[Task], bundles: dict[str, LessonBundle], limits: Limits,
              done: Callable[[Task, Graded], None], jobs: int) -> None:
    """Grade on ``jobs`` threads here, each submission in a worker process forked from the forkserver."""
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(grade_one, bundles[task.lesson], task.submission, limits): task for task in tasks}
        try:
            for future in as_completed(futures):
                task = futures[future]
                try:
                    graded = future.result()
                except Exception as error:  # noqa: BLE001 - the bundle could not be unpacked here
                    graded = Graded(error_record(bundles[task.lesson], task.submission.student,
                                                 f"{type(error).__name__}: {error}"))
                done(task, graded)
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            WORKERS.kill_all()
            raise


def grade(course: Course, lessons: list[str], limits: Limits, jobs: int, source: Path = SOLUTIONS_DIR,
          students: list[str] | None = None, force: bool = False, progress: bool | None = None,
          dask: str | None = None) -> list[dict]:
    """Grade the chosen lessons' submissions in parallel; returns one record per submission.

    Here (``jobs`` threads), or on a Dask cluster when ``dask`` is its scheduler's address or
    ``local:N`` (``cluster.py``). Local workers come from a multiprocessing forkserver: a script
    that calls this must do so under ``if __name__ == "__main__":`` (``python -m
    ppo_course.autograder`` and notebooks are fine).
    """
    from tqdm.auto import tqdm

    if dask is None:
        check_sandbox(limits)
        worker_context()   # the worker server loads nbgrader and torch on the other core meanwhile
    chosen = [(lesson, student) for lesson in lessons for student in course.students(lesson)
              if not students or student in students]
    if not chosen:
        raise CourseError(f"no submissions to grade under {course.submitted} for {', '.join(lessons)}")
    bundles = {lesson: prepare_lesson(lesson, source, course.root / ".grading-cache") for lesson in lessons}
    records, tasks, download_of = [], [], downloads(course)
    for lesson, student in chosen:
        try:
            planned = plan(course, bundles[lesson], student, limits, force, download_of)
        except Exception as error:  # noqa: BLE001 - an unreadable folder, say: reported per student, never lost
            planned = keep(course, error_record(bundles[lesson], student, f"{type(error).__name__}: {error}"))
        (tasks.append if isinstance(planned, Task) else records.append)(planned)
    with contextlib.ExitStack() as stack:
        if tasks:   # (a cluster is started, or connected to, only when there is something to grade)
            runner = (partial(run_local, jobs=jobs) if dask is None
                      else stack.enter_context(cluster_runner(dask, limits)))
        bar = stack.enter_context(tqdm(total=len(chosen), initial=len(records), unit="submission", desc="grading",
                                       disable=None if progress is None else not progress))

        def done(task: Task, graded: Graded) -> None:
            records.append(keep(course, graded.record, graded, task))
            bar.update()

        if tasks:
            runner(tasks, bundles, limits, done)
    return sorted(records, key=lambda r: (r["lesson"], r["student"]))


def cluster_runner(address: str, limits: Limits):
    from .cluster import DaskRunner

    return DaskRunner(address, limits)


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
    return "\n".join(lines)
