"""One source for every exercise: the solution a learner reads is the reference the package uses.

Each graded exercise exists twice by design: as the lesson's solution cell (with a docstring for the
learner) and in ``ppo_course`` (what the widgets, the trainer, later lessons and the tests use). Here
the two must be the same function: same parameters and defaults, and the same body statement for
statement (docstrings, comments and type annotations aside). Change one, and this fails until the
other says the same. Lessons also import what the package holds instead of defining it again.
"""
from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import textwrap
from functools import cache

import nbformat
import pytest

import ppo_course

from conftest import SOLUTIONS, notebooks
from grading_helpers import grade_id, solution_answers

SHARED_PACKAGES = ("ppo_course.autograder", "ppo_course.widgets")   # not lesson content


@cache
def package_functions() -> dict[str, list[tuple[str, ast.FunctionDef]]]:
    """Every top-level function of the course's lesson modules: name -> [(module, its AST)]."""
    found: dict[str, list] = {}
    for info in pkgutil.walk_packages(ppo_course.__path__, "ppo_course."):
        if info.name.startswith(SHARED_PACKAGES) or info.ispkg:
            continue
        module = importlib.import_module(info.name)
        for node in ast.parse(inspect.getsource(module)).body:
            if isinstance(node, ast.FunctionDef):
                found.setdefault(node.name, []).append((info.name, node))
    return found


def _body(function: ast.FunctionDef) -> str:
    body = function.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]   # the docstring
    return ast.dump(ast.Module(body=body, type_ignores=[]))


NO_DEFAULT = "(no default)"


def _parameters(function: ast.FunctionDef, namespace: dict) -> list[tuple[str, object]]:
    """(name, default value) of each parameter; a default like ``DELTA`` is read in ``namespace``."""
    args = function.args
    positional = args.posonlyargs + args.args

    def value(d):
        return NO_DEFAULT if d is None else eval(compile(ast.Expression(d), "<default>", "eval"), namespace)

    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    return ([(a.arg, value(d)) for a, d in zip(positional, defaults)]
            + [(a.arg, value(d)) for a, d in zip(args.kwonlyargs, args.kw_defaults)])


def exercise_cases() -> list[tuple[str, str]]:
    return [(nb.parent.name, name) for nb in notebooks(SOLUTIONS) for name in solution_answers(nb.parent.name)]


@pytest.mark.parametrize("lesson,exercise", exercise_cases(), ids=[f"{lesson}:{e}" for lesson, e in exercise_cases()])
def test_the_solution_cell_is_the_package_reference(lesson, exercise):
    homes = package_functions().get(exercise, [])
    assert len(homes) == 1, (
        f"{exercise} should be defined in exactly one ppo_course module, found {[m for m, _ in homes]}")
    module, reference = homes[0]
    cell = next(n for n in ast.parse(solution_answers(lesson)[exercise]).body
                if isinstance(n, ast.FunctionDef) and n.name == exercise)
    cell_parameters = _parameters(cell, {})
    package_parameters = _parameters(reference, vars(importlib.import_module(module)))
    assert cell_parameters == package_parameters, (
        f"{exercise}: the solution cell takes {cell_parameters}, {module} takes {package_parameters}")
    assert _body(cell) == _body(reference), (
        f"{exercise}: the solution cell in {lesson} and {module}.{exercise} compute it differently; make them the "
        "same code (the package is what the trainer, the widgets and later lessons run)")


@pytest.mark.parametrize("notebook", notebooks(SOLUTIONS), ids=lambda p: p.parent.name)
def test_lessons_import_what_the_package_holds(notebook):
    """A teaching cell that defines a function the package already has is a twin that can drift."""
    twins = []
    for index, cell in enumerate(nbformat.read(notebook, as_version=4).cells):
        if cell.cell_type != "code" or grade_id(cell) in solution_answers(notebook.parent.name):
            continue
        try:
            tree = ast.parse(textwrap.dedent("\n".join(
                line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))))
        except SyntaxError:
            continue
        twins += [f"cell {index}: {node.name} (also in {[m for m, _ in package_functions()[node.name]]})"
                  for node in tree.body if isinstance(node, ast.FunctionDef) and node.name in package_functions()]
    assert not twins, "import these from the package instead of defining them again:\n" + "\n".join(twins)
