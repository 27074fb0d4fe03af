"""Grading one submission: a pure function, ``grade_one(bundle, submission, limits) -> Graded``.

The assignment's release bundle (``bundle``), the submitted files and the limits in; the result record,
the graded notebooks, their gradebook (what ``feedback`` renders) and the log out. It touches no course
folder, so it runs the same in a thread of the ``grade`` command (``--jobs N``) and on a Dask worker
elsewhere (``--dask``). Each notebook is rebuilt from the contract (the course's released notebook with
the learner's answers: ``rebuild``), then nbgrader autogrades them in a scratch course, in a process of
their own (``supervise``, ``worker``), the answers in a sandboxed kernel and the tests in the grader
(``execute``).

A submission ends with one of these statuses (the summary and the CSV show them):
  graded      nbgrader ran the course's tests; scores are in the record (notes say what was repaired)
  missing     the student's folder holds no notebook
  unreadable  empty, truncated, not JSON, not a notebook: nothing to run
  timeout     a cell ignored the interrupt at --cell-timeout, or the run passed --timeout; killed
  crashed     the kernel died (os._exit, a segfault, killed for memory)
              For these two, the answer that was running is dropped (it scores 0) and the rest is
              graded again, so a student loses only that exercise; the status stays, for review.
  error       anything else; the message says what
"""
from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from ..sandbox.package import GRADING_STUB_MESSAGE
from .bundle import KITS, Bundle, Kit
from .contract import grade_id, is_answer_cell
from .job import Job, Limits, NotebookJob, Outcome
from .rebuild import SubmissionError, fill, rebuild
from .supervise import WORKERS

GRADED = "graded"
ISOLATION = "sandbox: bubblewrap (user, mount, pid, network, ipc namespaces); tests run in the grader"
NO_ISOLATION = ("no sandbox (--no-sandbox): student code ran with the grader's rights; "
                "tests still ran in the grader")


@dataclass(frozen=True)
class SubmittedFile:
    name: str                     # as handed in (a note says when it is not the notebook's name)
    data: bytes


@dataclass(frozen=True)
class Submission:
    """A student's files for one assignment: for each of its notebooks, the file handed in for it."""
    student: str
    files: dict[str, SubmittedFile]   # the assignment's notebook name -> the file graded as that notebook

    def __repr__(self) -> str:
        return f"Submission({self.student}, {sorted(self.files)}, {sum(len(f.data) for f in self.files.values())} B)"

    @property
    def sha256(self) -> str:
        digest = hashlib.sha256()
        for notebook in sorted(self.files):
            digest.update(notebook.encode() + b"\0" + hashlib.sha256(self.files[notebook].data).digest())
        return digest.hexdigest()


@dataclass
class Graded:
    """What grading one submission produced; the client writes it under autograded/<student>/<assignment>/."""
    record: dict
    notebooks: dict[str, bytes] = field(default_factory=dict)   # as they ran, outputs and scores in them
    gradebook: bytes | None = None    # their nbgrader gradebook (the feedback pages are rendered from both)
    log: str = ""                     # grading.log: the grader's and the kernel's messages, every attempt


def new_record(bundle: Bundle, submission: Submission, limits: Limits) -> dict:
    return {"student": submission.student, "lesson": bundle.assignment, "status": GRADED, "message": "",
            "notes": [], "review": [], "scores": {}, "max": bundle.contract.max_points,
            "manual": {m.grade_id: m.points for m in bundle.contract.manual},
            "source_sha256": bundle.source_sha256, "isolation": ISOLATION if limits.sandbox else NO_ISOLATION,
            "sha256": submission.sha256}


def finished(record: dict) -> dict:
    record["total"] = sum(s or 0 for s in (*record["scores"].values(), *record.get("manual_scores", {}).values()))
    return record


def error_record(bundle: Bundle, student: str, message: str) -> dict:
    """A submission the grader failed on (not the student's doing): no digest, so the next run grades it again."""
    return finished({"student": student, "lesson": bundle.assignment, "status": "error", "scores": {}, "notes": [],
                     "review": [], "max": bundle.contract.max_points, "message": message})


def grade_one(bundle: Bundle, submission: Submission, limits: Limits) -> Graded:
    """Grade one submission: (release bundle, submitted files, limits) -> Graded. Reads and writes no
    course folder. Raises only when this grader cannot grade at all (the bundle cannot be unpacked
    here): on a cluster, another worker then tries. Any failure on the submission is in the record."""
    kit = KITS.kit(bundle)
    try:
        return grade_kit(kit, submission, limits)
    except Exception as error:  # noqa: BLE001 - reported per student, never lost
        return Graded(error_record(bundle, submission.student, f"{type(error).__name__}: {error}"),
                      log=traceback.format_exc())


def grade_kit(kit: Kit, submission: Submission, limits: Limits) -> Graded:
    record = new_record(kit.bundle, submission, limits)
    answers: dict[tuple[str, str], str] = {}   # (notebook, grade_id) -> source
    unreadable = []
    for contract in kit.contract.notebooks:
        handed_in = submission.files.get(contract.notebook)
        if handed_in is None:
            record["notes"].append(f"no {contract.notebook} handed in: its tests score 0")
            continue
        if handed_in.name.lower().endswith(".ipynb") and handed_in.name != contract.notebook:
            record["notes"].append(f"graded {handed_in.name} (the assignment's notebook is {contract.notebook})")
        try:
            rebuilt = rebuild(handed_in.data, kit.released[contract.notebook], contract)
        except SubmissionError as error:
            unreadable.append((contract.notebook, error))
            continue
        prefix = f"{contract.notebook}: " if len(kit.contract.notebooks) > 1 else ""
        record["notes"] += [prefix + note for note in rebuilt.notes]
        for answer_id, error in rebuilt.syntax_errors.items():
            record.setdefault("syntax_errors", {})[answer_id] = dict(error, notebook=contract.notebook)
        for cell in rebuilt.notebook.cells:   # the answers, and the manually graded cells as written
            cell_id = grade_id(cell)
            if cell_id and cell.source != _released_source(kit, contract.notebook, cell_id):
                answers[(contract.notebook, cell_id)] = cell.source
    if unreadable and len(unreadable) == len(submission.files):
        notebook, error = unreadable[0]
        return Graded(finished(record | {"status": error.status, "message": str(error)}))
    record["notes"] += [f"{notebook} {error.status}: {error}" for notebook, error in unreadable]
    started = time.monotonic()
    outcome, dropped, graded = grade_answers(kit, submission.student, answers, limits)
    record["seconds"] = round(time.monotonic() - started, 1)
    if outcome.memory:
        record["memory_limit"] = outcome.memory
    if dropped:  # keep the first failure's status so the instructor looks, but score the rest
        record |= {"status": dropped[0][1], "message": f"{dropped[0][0][1]}: {dropped[0][2]}"}
        record["notes"] += [f"graded again without {answer_id} ({status})" for (_, answer_id), status, _ in dropped]
    if not outcome.ok:
        graded.record = finished(record | {"status": outcome.status, "message": outcome.message})
        return graded
    if outcome.stopped_cells:
        record["notes"].append(f"{outcome.stopped_cells} cell(s) stopped at the {limits.cell_timeout} s limit")
    record["notes"] += outcome.notes
    record["scores"] = {test_id: outcome.scores.get(test_id) for test_id in kit.contract.test_ids}
    # nbgrader scores a manually graded answer left as released (0, as stock nbgrader does); the rest wait.
    given = {m.grade_id: outcome.scores.get(m.grade_id) for m in kit.contract.manual}
    record["manual"] = {m.grade_id: m.points for m in kit.contract.manual if given[m.grade_id] is None}
    record["manual_scores"] = {cell: score for cell, score in given.items() if score is not None}
    graded.record = finished(record)
    return graded


def _released_source(kit: Kit, notebook: str, cell_id: str) -> str | None:
    return next((c.source for c in kit.released[notebook].cells if grade_id(c) == cell_id), None)


def grade_answers(kit: Kit, student: str, answers: dict[tuple[str, str], str], limits: Limits
                  ) -> tuple[Outcome, list[tuple[tuple[str, str], str, str]], Graded]:
    """Autograde; when the kernel dies or hangs inside an exercise, grade again without that answer
    (it scores 0, the others are graded as usual). Returns the last outcome, what was dropped, and
    the last attempt's files with every attempt's log."""
    dropped: list[tuple[tuple[str, str], str, str]] = []   # ((notebook, answer_id), status, message)
    graded = Graded({})
    while True:
        gone = {d[0] for d in dropped}
        notebooks = {name: fill(released, {cell: source for (nb, cell), source in answers.items()
                                           if nb == name and (nb, cell) not in gone})
                     for name, released in kit.released.items()}
        with tempfile.TemporaryDirectory(prefix="grade-") as tmp, \
                tempfile.TemporaryDirectory(prefix="run-", dir=short_tmp()) as run_dir:
            scratch = Path(tmp)
            stage(scratch, Path(run_dir), kit, student, notebooks, limits)
            outcome = WORKERS.run(scratch, limits.timeout, kit.bundle.settings.kernel_env)
            graded.notebooks, graded.gradebook, log = attempt_files(scratch, kit, student)
        if dropped:
            graded.log += f"\n--- graded again without {', '.join(d[0][1] for d in dropped)} ---\n"
        graded.log += log
        culprit = None if outcome.ok else culprit_of(outcome.running, kit)
        if culprit is None or culprit not in answers or culprit in gone:
            return outcome, dropped, graded
        dropped.append((culprit, outcome.status, outcome.message))


def culprit_of(running: tuple[str, int] | None, kit: Kit) -> tuple[str, str] | None:
    """The exercise whose answer was running: the last answer cell at or above the running cell of that
    notebook (for a test cell, the exercise it tests)."""
    if running is None or running[0] not in kit.released:
        return None
    notebook, index = running
    above = [grade_id(c) for i, c in enumerate(kit.released[notebook].cells) if is_answer_cell(c) and i <= index]
    return (notebook, above[-1]) if above else None


def short_tmp() -> str:
    """A temp folder whose paths fit a Unix socket address (108 bytes), for the kernel's sockets."""
    folder = tempfile.gettempdir()
    return folder if len(folder) < 60 else "/tmp"


def stage(scratch: Path, run_dir: Path, kit: Kit, student: str, notebooks: dict[str, nbformat.NotebookNode],
          limits: Limits) -> None:
    """A scratch nbgrader course holding the released files and the rebuilt notebooks, and the job."""
    course = scratch / "course"
    shutil.copytree(kit.extra_files, course / "source" / kit.assignment,
                    ignore=shutil.ignore_patterns("*.ipynb"))  # data files only: nbgrader copies them in
    submitted = course / "submitted" / student / kit.assignment
    submitted.mkdir(parents=True)
    for name, notebook in notebooks.items():
        nbformat.write(notebook, submitted / name)
    shutil.copy(kit.gradebook, scratch / "gradebook.db")
    settings = kit.bundle.settings
    Job(assignment=kit.assignment, student=student, limits=limits, scratch=str(scratch), run_dir=str(run_dir),
        notebooks=tuple(NotebookJob(nb.notebook, tuple(sorted(nb.function_names)), nb.tests_in_kernel)
                        for nb in kit.contract.notebooks),
        packages=kit.packages,
        data_files=tuple(str(p) for p in sorted(kit.extra_files.iterdir()) if p.is_file() and p.suffix != ".ipynb"),
        kernel_env=tuple(sorted(settings.kernel_env.items())), run_teaching_cells=settings.run_teaching_cells,
        stub_marker=GRADING_STUB_MESSAGE if settings.reference_package else "").save(scratch / "job.json")


def attempt_files(scratch: Path, kit: Kit, student: str) -> tuple[dict[str, bytes], bytes, str]:
    """The graded notebooks (those nbgrader got to), their gradebook and the log of one attempt."""
    folder = scratch / "course" / "autograded" / student / kit.assignment
    log = (scratch / "worker.log").read_text(errors="replace") if (scratch / "worker.log").exists() else ""
    kernel_log = scratch / "kernel.log"
    if kernel_log.exists() and kernel_log.stat().st_size:
        with open(kernel_log, "rb") as handle:   # the kernel's own stderr (capped: student code writes there)
            handle.seek(max(0, kernel_log.stat().st_size - 16384))
            log += "\n--- the kernel's stderr (last 16 KB) ---\n" + handle.read().decode(errors="replace")
    notebooks = {name: (folder / name).read_bytes() for name in kit.released if (folder / name).exists()}
    return notebooks, (scratch / "gradebook.db").read_bytes(), log
