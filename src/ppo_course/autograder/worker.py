"""One submission, autograded by nbgrader in a scratch course: ``python -m ppo_course.autograder.worker DIR``.

The grade command runs this in a fresh process per submission, with a wall-clock limit: forked from a
forkserver that has nbgrader and torch imported (``run_in_child``; saves seconds per submission), or
as a command. DIR holds job.json, gradebook.db (the lesson's, as generate_assignment left it) and
course/submitted/<student>/<lesson>/<notebook>.ipynb (the rebuilt submission). nbgrader's pipeline
runs with ``SandboxedExecute`` in place of its Execute step: answers run in the learner's sandboxed
kernel, tests here. The outcome goes to DIR/outcome.json:

    {"ok": true, "scores": {test_id: points}, "stopped_cells": n, "notes": [...], "memory": "..."}
    {"ok": false, "status": "crashed" | "timeout" | "error", "log": "one line", "running_cell": i}
"""
from __future__ import annotations

import json
import os
import re
import select
import sys
from pathlib import Path

STOPPED = {"CellTimeoutError", "KeyboardInterrupt"}


def autograde(scratch: Path, job: dict) -> dict:
    from nbgrader.api import Gradebook
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    from .release import grading_config

    config = grading_config(scratch / "course", scratch / "gradebook.db", job["cell_timeout"], sandboxed_tests=True)
    config.SandboxedExecute.job_file = str(scratch / "job.json")
    api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
    result = api.autograde(job["lesson"], job["student"], force=True, create=True)
    limits = _read_json(scratch / "limits.json") or {}
    if not result["success"]:
        abort = _read_json(scratch / "abort.json")
        if abort:
            return {"ok": False, "status": abort["status"], "log": abort["message"], "running_cell": abort["cell"]}
        log = (result.get("error") or "") + "\n" + (result.get("log") or "")
        return {"ok": False, "status": "error", "log": last_error_line(log), "details": log}
    with Gradebook(config.CourseDirectory.db_url) as gradebook:
        graded = gradebook.find_submission_notebook(Path(job["notebook"]).stem, job["lesson"], job["student"])
        scores = {grade.name: grade.score for grade in graded.grades}
    cells = json.loads(graded_path(scratch, job).read_text())["cells"]
    return {"ok": True, "scores": scores, "stopped_cells": stopped_cells(cells),
            "notes": delegation_notes(cells), "memory": limits.get("memory")}


def _read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def last_error_line(log: str) -> str:
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "nbgrader failed without a message"


def graded_path(scratch: Path, job: dict) -> Path:
    return scratch / "course" / "autograded" / job["student"] / job["lesson"] / job["notebook"]


def _errors(cells: list[dict]):
    for cell in cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                yield cell, output


def stopped_cells(cells: list[dict]) -> int:
    """How many cells were stopped at the per-cell time limit (an infinite loop, a sleep)."""
    return len({id(cell) for cell, output in _errors(cells) if output.get("ename") in STOPPED})


def delegation_notes(cells: list[dict]) -> list[str]:
    """Tests that failed because the answer called the course's own reference (stubbed while grading)."""
    from .contract import grade_id, is_test_cell
    from .student_package import GRADING_STUB_MESSAGE

    stub = re.compile(r"(ppo_course\.[\w.]+) " + re.escape(GRADING_STUB_MESSAGE))
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
    scratch = Path(argv[0])
    job = json.loads((scratch / "job.json").read_text())
    try:
        outcome = autograde(scratch, job)
    except MemoryError:
        outcome = {"ok": False, "status": "error", "log": "MemoryError: the grader itself ran out of memory"}
    if not outcome["ok"]:
        print(outcome.get("details") or outcome["log"], flush=True)  # into grading.log, for the instructor
        outcome.pop("details", None)
    (scratch / "outcome.json").write_text(json.dumps(outcome))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
