"""Build student submissions from released notebooks, and grade the reference answers with stock nbgrader.

Used by the grading tests of every lesson, and (``stock_autograde``) by the execution tests.
"""
from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import nbformat

from ppo_course.autograder.grading.bundle import cached_release
from ppo_course.autograder.grading.pipeline import nbgrader_config

from conftest import LESSONS, RELEASE_CACHE, SOLUTIONS, lesson_notebook
from notebook_execution import CELL_TIMEOUT_S

SOLUTION_BLOCK = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n", re.MULTILINE)
HIDDEN_BLOCK = re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", re.S)


def grade_id(cell) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def solution_answers(lesson: str) -> dict[str, str]:
    """The reference answers of a lesson, keyed by grade_id, as a student would type them (no markers)."""
    nb = nbformat.read(lesson_notebook(lesson), as_version=4)
    return {grade_id(c): SOLUTION_BLOCK.sub("", c.source) for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("solution")}


def submission(lesson: str, answers: Mapping[str, str]) -> nbformat.NotebookNode:
    """The released notebook with the given answer cells filled in (others left as released)."""
    nb = nbformat.read(lesson_notebook(lesson, LESSONS), as_version=4)
    for cell in nb.cells:
        if grade_id(cell) in answers:
            cell.source = answers[grade_id(cell)]
    return nb


def with_edit(answers: dict[str, str], exercise: str, edit: Callable[[str], str]) -> dict[str, str]:
    """A copy of ``answers`` where one exercise's answer is changed (e.g. min -> max)."""
    changed = dict(answers)
    new = edit(answers[exercise])
    assert new != answers[exercise], f"the edit did not change the answer to {exercise}"
    changed[exercise] = new
    return changed


@dataclass(frozen=True)
class StockRun:
    """Stock ``nbgrader autograde`` of a lesson's reference answers: its scores, and the notebook as it ran."""
    scores: dict[str, float]
    notebook: nbformat.NotebookNode


def stock_autograde(lesson: str) -> StockRun:
    """Stock nbgrader's grading of the reference answers of ``lesson``, once per test run (with the other
    notebooks the run's tests read: ``notebook_execution.run_of``)."""
    from notebook_execution import run_of

    return run_of(lesson_notebook(lesson))


def stock_autograde_now(lesson: str) -> StockRun:
    """Grade the reference answers of ``lesson`` with stock nbgrader.

    The submission is today's release of solutions/ (the shared release cache's, RELEASE_CACHE) with the
    reference answers typed in, so the notebook nbgrader runs is the solution notebook itself (its hidden
    tests restored by nbgrader): the execution tests and the prose-number tests read this run too.
    """
    from nbgrader.api import Gradebook
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    release = cached_release(lesson, SOLUTIONS, RELEASE_CACHE)
    root = Path(tempfile.mkdtemp(prefix=f"stock-{lesson[:2]}-"))
    try:  # (a pool process ends without running atexit)
        shutil.copytree(SOLUTIONS / lesson, root / "source" / lesson)   # (nbgrader copies its data files from here)
        shutil.copy(release / "gradebook.db", root / "gradebook.db")
        name = lesson_notebook(lesson).name
        nb = nbformat.read(release / "release" / lesson / name, as_version=4)
        answers = solution_answers(lesson)
        for cell in nb.cells:
            if grade_id(cell) in answers:
                cell.source = answers[grade_id(cell)]
        folder = root / "submitted" / "perfect" / lesson
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / name)
        config = nbgrader_config(root)
        config.Execute.timeout = CELL_TIMEOUT_S
        api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
        result = api.autograde(lesson, "perfect", create=True)
        assert result["success"], result.get("error") or result.get("log")
        with Gradebook(config.CourseDirectory.db_url) as gradebook:
            graded = gradebook.find_submission_notebook(Path(name).stem, lesson, "perfect")
            scores = {g.name: g.score for g in graded.grades}
        return StockRun(scores, nbformat.read(root / "autograded" / "perfect" / lesson / name, as_version=4))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def hidden_test_lines(lesson: str) -> list[str]:
    """Lines only the hidden tests have (not also in the released notebook): what must never leak."""
    source = nbformat.read(lesson_notebook(lesson), as_version=4)
    released = nbformat.read(lesson_notebook(lesson, LESSONS), as_version=4)
    shown = "\n".join(cell.source for cell in released.cells)
    blocks = HIDDEN_BLOCK.findall("\n".join(cell.source for cell in source.cells))
    return [line.strip() for block in blocks for line in block.splitlines()
            if len(line.strip()) > 12 and line.strip() not in shown]


def points(lesson: str) -> dict[str, float]:
    """The points of each graded test cell of a lesson, keyed by grade_id."""
    nb = nbformat.read(lesson_notebook(lesson), as_version=4)
    return {grade_id(c): c.metadata["nbgrader"]["points"] for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("grade")}
