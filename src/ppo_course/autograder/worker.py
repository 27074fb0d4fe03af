"""One submission, autograded by nbgrader in a scratch course: ``python -m ppo_course.autograder.worker DIR``.

The grade command runs this in a fresh process per submission, with a wall-clock limit: forked from a
forkserver that has nbgrader imported (``run_in_child``; saves seconds per submission), or as a command.
DIR holds job.json, gradebook.db (the lesson's, as generate_assignment left it) and
course/submitted/<student>/<lesson>/<notebook>.ipynb (the rebuilt submission); the result is
written to DIR/outcome.json. The address-space limit set here is inherited by the kernel, so a
memory blow-up in student code becomes a MemoryError in that cell instead of a machine in swap.
"""
from __future__ import annotations

import json
import os
import resource
import sys
from pathlib import Path

STOPPED = {"CellTimeoutError", "KeyboardInterrupt"}


def limit_memory(max_bytes: int) -> None:
    if max_bytes > 0:
        resource.setrlimit(resource.RLIMIT_AS, (max_bytes, max_bytes))


def autograde(scratch: Path, job: dict) -> dict:
    from nbgrader.api import Gradebook
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    from .release import grading_config

    config = grading_config(scratch / "course", scratch / "gradebook.db", job["cell_timeout"])
    running = scratch / "running_cell"  # if the kernel dies or hangs, the grader learns in which cell
    config.Execute.on_cell_execute = lambda cell, cell_index: running.write_text(str(cell_index))
    api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
    result = api.autograde(job["lesson"], job["student"], force=True, create=True)
    if not result["success"]:
        return {"ok": False, "log": (result.get("error") or "") + "\n" + (result.get("log") or "")}
    with Gradebook(config.CourseDirectory.db_url) as gradebook:
        graded = gradebook.find_submission_notebook(Path(job["notebook"]).stem, job["lesson"], job["student"])
        scores = {grade.name: grade.score for grade in graded.grades}
    return {"ok": True, "scores": scores, "stopped_cells": stopped_cells(scratch, job)}


def stopped_cells(scratch: Path, job: dict) -> int:
    """How many cells were stopped at the per-cell time limit (an infinite loop, a sleep)."""
    path = scratch / "course" / "autograded" / job["student"] / job["lesson"] / job["notebook"]
    cells = json.loads(path.read_text())["cells"]
    return sum(1 for cell in cells if any(output.get("output_type") == "error" and output.get("ename") in STOPPED
                                          for output in cell.get("outputs", [])))


def run_in_child(scratch_dir: str, env: dict[str, str]) -> None:
    """Entry point in a process forked from the grader's forkserver (nbgrader already imported there):
    the scratch folder as working folder, its log as stdout/stderr, and only ``env`` as environment."""
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


def main(argv: list[str]) -> int:
    scratch = Path(argv[0])
    job = json.loads((scratch / "job.json").read_text())
    limit_memory(job["memory_bytes"])
    try:
        outcome = autograde(scratch, job)
    except MemoryError:
        outcome = {"ok": False, "log": "MemoryError: the grader itself ran out of memory"}
    if not outcome["ok"]:
        print(outcome["log"], flush=True)  # into grading.log, for the instructor who wants the details
    (scratch / "outcome.json").write_text(json.dumps(outcome))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
