"""Build student submissions from released notebooks and grade them with stock nbgrader.

Used by the grading round-trip tests of every lesson.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Callable, Mapping

import nbformat

from ppo_course.autograder.grading.pipeline import nbgrader_config

from conftest import LESSONS, SOLUTIONS, lesson_notebook

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


def grade_with_nbgrader(course_root: Path, lesson: str,
                        submissions: Mapping[str, nbformat.NotebookNode]) -> dict[str, dict[str, float]]:
    """Release ``lesson`` in a fresh nbgrader course, autograde each student, return {student: {grade_id: score}}."""
    from nbgrader.api import Gradebook
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    shutil.copytree(SOLUTIONS / lesson, course_root / "source" / lesson)
    config = nbgrader_config(course_root)
    config.ExecutePreprocessor.timeout = 60
    api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
    assert api.generate_assignment(lesson)["success"], f"stock nbgrader could not generate {lesson} from solutions/"
    notebook_name = lesson_notebook(lesson).stem
    scores = {}
    for student, nb in submissions.items():
        folder = course_root / "submitted" / student / lesson
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{notebook_name}.ipynb")
        result = api.autograde(lesson, student)
        assert result["success"], result.get("error") or result.get("log")
        with Gradebook(config.CourseDirectory.db_url) as gradebook:
            graded = gradebook.find_submission_notebook(notebook_name, lesson, student)
            scores[student] = {g.name: g.score for g in graded.grades}
    return scores


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
