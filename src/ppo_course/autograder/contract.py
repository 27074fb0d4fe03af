"""The exercise contract of a lesson, read from its source notebook's nbgrader metadata.

An exercise is an answer cell (``solution: true``, named by its grade_id) whose top-level function
names are the contract (``def clipped_surrogate(``), and the graded test cell that checks it
(``<answer>_tests`` by the course's convention, else the next test cell below the answer).
Nothing here is specific to one lesson: every lesson that follows CONTRIBUTING.md is understood.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

FENCE = re.compile(r"^\s*```[\w+-]*\s*$", re.MULTILINE)


class EndsWithStatus:
    """Mixed into the errors that end one submission's grading: ``status`` is the short word the
    summary and the gradebook CSV show ('crashed', 'timeout', 'unreadable', ...)."""

    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Exercise:
    answer_id: str              # grade_id of the answer cell
    functions: tuple[str, ...]  # names the answer cell defines at top level
    test_id: str | None         # grade_id of the test cell that scores it
    points: float


@dataclass(frozen=True)
class Contract:
    lesson: str
    notebook: str                   # file name of the lesson's notebook
    exercises: tuple[Exercise, ...]

    @property
    def test_ids(self) -> list[str]:
        return [e.test_id for e in self.exercises if e.test_id]

    @property
    def function_names(self) -> set[str]:
        """Every name the answer cells define (the learner's functions)."""
        return {name for exercise in self.exercises for name in exercise.functions}

    @property
    def max_points(self) -> float:
        return sum(e.points for e in self.exercises)


def nbgrader_meta(cell) -> dict:
    metadata = cell.get("metadata")
    meta = metadata.get("nbgrader") if isinstance(metadata, dict) else None
    return meta if isinstance(meta, dict) else {}


def grade_id(cell) -> str | None:
    return nbgrader_meta(cell).get("grade_id")


def is_answer_cell(cell) -> bool:
    meta = nbgrader_meta(cell)
    return bool(meta.get("solution")) and not meta.get("grade")


def is_test_cell(cell) -> bool:
    meta = nbgrader_meta(cell)
    return bool(meta.get("grade")) and not meta.get("solution")


def as_code(cell) -> str:
    """A cell's source as Python: markdown cells (an answer converted by accident) lose their fences."""
    source = cell.get("source", "")
    source = "".join(s for s in source if isinstance(s, str)) if isinstance(source, list) else str(source)
    return FENCE.sub("", source) if cell.get("cell_type") == "markdown" else source


def parse_python(source: str) -> ast.Module | None:
    """A learner's code as a syntax tree, or None however it fails to parse (a syntax error, a null byte,
    nesting deeper than the parser takes)."""
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def defined_names(source: str) -> tuple[str, ...]:
    """Top-level function and class names a cell defines (empty when it does not parse)."""
    tree = parse_python(source)
    if tree is None:
        return ()
    return tuple(node.name for node in tree.body
                 if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)))


def read_contract(notebook_path: Path) -> Contract:
    """The exercises of the lesson whose source (or released) notebook is ``notebook_path``."""
    nb = nbformat.read(notebook_path, as_version=4)
    answers = [(i, c) for i, c in enumerate(nb.cells) if is_answer_cell(c)]
    tests = {i: c for i, c in enumerate(nb.cells) if is_test_cell(c)}
    exercises = []
    for index, cell in answers:
        answer_id = grade_id(cell)
        test = next((t for t in tests.values() if grade_id(t) == f"{answer_id}_tests"), None)
        if test is None:  # not the course convention: take the first test cell below the answer
            test = next((tests[j] for j in sorted(tests) if j > index), None)
        exercises.append(Exercise(
            answer_id=answer_id, functions=defined_names(cell.source),
            test_id=grade_id(test) if test is not None else None,
            points=float(nbgrader_meta(test).get("points", 0)) if test is not None else 0.0))
    return Contract(notebook_path.parent.name, notebook_path.name, tuple(exercises))
