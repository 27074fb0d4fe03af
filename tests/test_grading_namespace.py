"""What a lesson must satisfy so that its tests can run in the grader while its answers run in the sandbox.

While grading, only the cells tagged ``setup``, the answer cells and the test cells run (``execute.py``):
the tests in the grader's own namespace, built from the setup cells and the learner's functions. So a
test cell may use only what a setup cell binds, the contract's functions, builtins and what the test
cells themselves define; a name that only a teaching cell defines would be a NameError at grading
time, and this test says so first.
"""
from __future__ import annotations

import ast
import builtins

import nbformat
import pytest

from ppo_course.autograder.contract import is_answer_cell, is_test_cell, read_contract
from ppo_course.autograder.execute import is_setup_cell, python_lines

from conftest import SOLUTIONS, lesson_notebook

LESSONS = sorted(p.name for p in SOLUTIONS.iterdir() if p.is_dir() and p.name[:2].isdigit())


def bound(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
    return names


def used(tree: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def source_notebook(lesson: str):
    return nbformat.read(lesson_notebook(lesson), as_version=4)


@pytest.mark.parametrize("lesson", LESSONS)
def test_one_setup_cell_above_the_first_exercise(lesson):
    cells = source_notebook(lesson).cells
    setups = [i for i, c in enumerate(cells) if is_setup_cell(c)]
    first_answer = next(i for i, c in enumerate(cells) if is_answer_cell(c))
    assert len(setups) == 1 and setups[0] < first_answer, (
        f"{lesson}: tag the cell with the lesson's imports 'setup' (once, above the first exercise)")


@pytest.mark.parametrize("lesson", LESSONS)
def test_test_cells_use_only_setup_names_and_the_learners_functions(lesson):
    nb = source_notebook(lesson)
    available = set(dir(builtins))
    for cell in nb.cells:
        if is_setup_cell(cell):
            available |= bound(ast.parse(python_lines(cell.source)))
    contract = read_contract(lesson_notebook(lesson))
    available |= contract.function_names
    for cell in nb.cells:
        if is_test_cell(cell):
            tree = ast.parse(cell.source)
            missing = used(tree) - bound(tree) - available
            assert not missing, (
                f"{lesson}: test cell {cell.metadata['nbgrader']['grade_id']} uses {sorted(missing)}, which only "
                "teaching cells define; tests run in the grader, where only setup cells run")
            available |= bound(tree)
