"""One submission, autograded by nbgrader in a scratch course: ``python -m ppo_course.autograder.worker DIR``.

The grade command runs this in a fresh process per submission, with a wall-clock limit: forked from a
forkserver that has nbgrader and torch imported (``run_in_child``; saves seconds per submission), or
as a command. DIR holds job.json (``job.Job``), gradebook.db (the assignment's, as generate_assignment left it) and
course/submitted/<student>/<assignment>/<notebook>.ipynb (the rebuilt notebooks). nbgrader's pipeline
runs with ``SandboxedExecute`` in place of its Execute step: answers run in the learner's sandboxed
kernel, tests here. The outcome goes to DIR/outcome.json (``job.OutcomeFile``, written as grading goes):

    Outcome(ok=True, scores={test_id: points}, stopped_cells=n, notes=[...], memory="...")
    Outcome(ok=False, status="crashed" | "timeout" | "error", message="one line", running=(notebook, cell))
"""
from __future__ import annotations

import json
import os
import re
import select
import sys
from pathlib import Path

from .contract import grade_id, is_test_cell
from .job import Job, Outcome, OutcomeFile

STOPPED = {"CellTimeoutError", "KeyboardInterrupt"}


def autograde(job: Job) -> Outcome:
    from nbgrader.api import Gradebook
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    from .pipeline import grading_config

    scratch = Path(job.scratch)
    config = grading_config(scratch / "course", scratch / "gradebook.db", job.limits.cell_timeout, sandboxed_tests=True)
    config.SandboxedExecute.job_file = str(scratch / "job.json")
    api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
    result = api.autograde(job.assignment, job.student, force=True, create=True)
    progress = OutcomeFile(job.outcome_path)
    if not result["success"]:
        so_far = progress.read()
        if so_far.status in ("crashed", "timeout"):   # SandboxedExecute said where, and why
            return so_far
        log = (result.get("error") or "") + "\n" + (result.get("log") or "")
        print(log, flush=True)   # into grading.log, for the instructor
        return progress.update(status="error", message=last_error_line(log))
    scores, cells = {}, []
    with Gradebook(config.CourseDirectory.db_url) as gradebook:
        for notebook in job.notebooks:
            graded = gradebook.find_submission_notebook(Path(notebook.name).stem, job.assignment, job.student)
            # (a cell waiting for a person has no score yet: nbgrader's own ``score`` would say 0)
            scores |= {grade.name: None if grade.needs_manual_grade else grade.score for grade in graded.grades}
            cells += json.loads((graded_folder(job) / notebook.name).read_text())["cells"]
    return progress.update(ok=True, status="graded", message="", scores=scores, stopped_cells=stopped_cells(cells),
                           notes=delegation_notes(cells, job.stub_marker), running=None)


def last_error_line(log: str) -> str:
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "nbgrader failed without a message"


def graded_folder(job: Job) -> Path:
    return Path(job.scratch) / "course" / "autograded" / job.student / job.assignment


def _errors(cells: list[dict]):
    for cell in cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                yield cell, output


def stopped_cells(cells: list[dict]) -> int:
    """How many cells were stopped at the per-cell time limit (an infinite loop, a sleep)."""
    return len({id(cell) for cell, output in _errors(cells) if output.get("ename") in STOPPED})


def delegation_notes(cells: list[dict], marker: str) -> list[str]:
    """Tests that failed because the answer called the course's own reference (stubbed while grading)."""
    if not marker:
        return []
    stub = re.compile(r"([\w.]+) " + re.escape(marker))
    notes = set()
    for cell, output in _errors(cells):
        found = stub.search(output.get("evalue", ""))
        if is_test_cell(cell) and found:
            notes.add(f"{grade_id(cell)}: the answer calls the course's reference {found.group(1)}, "
                      "which grading does not allow (its tests fail)")
    return sorted(notes)


def run_in_child(scratch_dir: str, env: dict[str, str], grader: int) -> None:
    """Entry point in a process forked from the grader's forkserver (nbgrader already imported there):
    the scratch folder as working folder, its log as stdout/stderr, and only ``env`` as environment.
    ``grader`` is the pid of the process that supervises us (the grade command, or a Dask worker)."""
    die_with(grader)
    os.chdir(scratch_dir)
    os.environ.clear()
    os.environ.update(env)
    os.setsid()  # its own session, like a command started from a shell
    log = os.open(os.path.join(scratch_dir, "worker.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(log, 1)
    os.dup2(log, 2)
    sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
    sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
    main([scratch_dir])


def die_with(grader: int) -> None:
    """Kill ourselves as soon as the grader process exits (a Dask worker killed mid-task, a grade command
    killed with SIGKILL): a grading whose supervisor is gone must not run on, unwatched. The kernel's
    bubblewrap dies with us in turn (--die-with-parent). The grader is our forkserver's parent, not
    ours, so the parent-death signal cannot watch it; a thread waits on it instead."""
    import signal
    import threading

    def wait_then_die() -> None:
        try:
            exited = os.pidfd_open(grader)   # readable once it exits, even while an unreaped zombie
        except ProcessLookupError:   # already gone
            pass
        except (AttributeError, OSError):   # no pidfds (not Linux): poll
            _poll_until_gone(grader)
        else:
            select.select([exited], [], [])
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=wait_then_die, name="die-with-the-grader", daemon=True).start()


def _poll_until_gone(pid: int) -> None:
    import time

    import psutil

    try:
        process = psutil.Process(pid)
        while process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
            time.sleep(0.5)
    except psutil.Error:
        pass


def main(argv: list[str]) -> int:
    job = Job.load(Path(argv[0]) / "job.json")
    try:
        autograde(job)
    except MemoryError:
        OutcomeFile(job.outcome_path).update(status="error", message="MemoryError: the grader itself ran out of memory")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
