"""``release``: the student notebooks of a course (lessons/) from its nbgrader source (solutions/).

nbgrader's generate_assignment does the work in a throwaway course directory (``grading.pipeline``),
so that the repository never holds a gradebook and a failed run never leaves lessons/ half written.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from ..grading.contract import IN_KERNEL, read_contract
from ..grading.pipeline import release_in_course
from .source import LESSONS_DIR, SOLUTIONS_DIR, resolve


def generate(assignment: str, source: Path, dest: Path) -> None:
    """Release one assignment: ``source/assignment`` -> ``dest/assignment`` (replaced as a whole)."""
    with tempfile.TemporaryDirectory(prefix="release-") as tmp:
        released = release_in_course(assignment, source, Path(tmp))
        staged = dest / f".{assignment}.new"
        shutil.rmtree(staged, ignore_errors=True)
        shutil.copytree(released, staged)
        shutil.rmtree(dest / assignment, ignore_errors=True)
        staged.rename(dest / assignment)


def release(assignments: list[str] | None = None, source: Path = SOLUTIONS_DIR, dest: Path = LESSONS_DIR
            ) -> list[str]:
    """Release the chosen assignments (all by default); returns their names."""
    chosen = resolve(assignments, source)
    dest.mkdir(parents=True, exist_ok=True)
    for assignment in chosen:
        generate(assignment, source, dest)
    return chosen


def where_tests_run(assignment: str, source: Path) -> list[str]:
    """One line per notebook: how many of its test cells run in the grader, and which need the learner's kernel."""
    lines = []
    for notebook in read_contract(source / assignment).notebooks:
        kernel = [t for t in notebook.tests if t.runs_in == IN_KERNEL]
        line = f"{assignment}/{notebook.notebook}: {len(notebook.tests) - len(kernel)} test cell(s) run in the grader"
        if kernel:
            line += ("; in the learner's kernel, as stock nbgrader runs them (only as trustworthy as stock nbgrader's, "
                     "and they see the hidden tests): " + "; ".join(f"{t.grade_id} ({t.why})" for t in kernel))
        lines.append(line)
    return lines
