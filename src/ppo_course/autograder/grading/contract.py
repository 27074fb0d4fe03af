"""An assignment's contract, read from its source notebooks' nbgrader metadata: what is graded, and how.

Per notebook:
  * an **exercise** is an answer cell (``solution: true``, not graded itself) whose top-level function
    names are the contract (``def squares(``); its **tests** are the graded test cells named
    ``<answer>_tests`` (this course's convention) or else those between it and the next answer cell
    (nbgrader's documentation course: ``correct_squares``, ``squares_invalid_input``);
  * a **test cell** (``grade: true``, not a solution) is autograded, and runs where it can be trusted
    (``where_it_runs``): in the grader, calling the learner's functions across the sandbox wall, when it
    only uses what the grader has (builtins, the setup cell's names, the exercises' functions, what
    earlier test cells bind); in the learner's kernel, as stock nbgrader runs every test, when it needs
    the learner's namespace (``del squares``, a teaching cell's variable, a magic);
  * a **manually graded** cell (an answer that is also graded, or a task) has points a person gives.
Nothing here is specific to one course.
"""
from __future__ import annotations

import ast
import builtins
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from ..syntax import parse_python

FENCE = re.compile(r"^\s*```[\w+-]*\s*$", re.MULTILINE)
SETUP_TAG = "setup"
IN_GRADER, IN_KERNEL = "grader", "kernel"


@dataclass(frozen=True)
class Exercise:
    answer_id: str              # grade_id of the answer cell
    functions: tuple[str, ...]  # names the answer cell defines at top level
    test_ids: tuple[str, ...]   # grade_ids of the test cells that score it
    points: float


@dataclass(frozen=True)
class TestCell:
    grade_id: str
    points: float
    runs_in: str                # IN_GRADER or IN_KERNEL
    why: str = ""               # why it must run in the kernel


@dataclass(frozen=True)
class ManualCell:
    grade_id: str
    points: float
    kind: str                   # "answer" (written by the learner, graded by a person) or "task"


@dataclass(frozen=True)
class NotebookContract:
    notebook: str                   # file name
    exercises: tuple[Exercise, ...]
    tests: tuple[TestCell, ...]
    manual: tuple[ManualCell, ...] = ()

    @property
    def function_names(self) -> set[str]:
        """Every name the answer cells define (the learner's functions)."""
        return {name for exercise in self.exercises for name in exercise.functions}

    @property
    def tests_in_kernel(self) -> tuple[str, ...]:
        return tuple(t.grade_id for t in self.tests if t.runs_in == IN_KERNEL)


@dataclass(frozen=True)
class Contract:
    """The contract of an assignment: one NotebookContract per notebook."""
    assignment: str
    notebooks: tuple[NotebookContract, ...]

    @property
    def exercises(self) -> tuple[Exercise, ...]:
        return tuple(e for nb in self.notebooks for e in nb.exercises)

    @property
    def tests(self) -> tuple[TestCell, ...]:
        return tuple(t for nb in self.notebooks for t in nb.tests)

    @property
    def manual(self) -> tuple[ManualCell, ...]:
        return tuple(m for nb in self.notebooks for m in nb.manual)

    @property
    def test_ids(self) -> list[str]:
        return [t.grade_id for t in self.tests]

    @property
    def function_names(self) -> set[str]:
        return {name for nb in self.notebooks for name in nb.function_names}

    @property
    def max_points(self) -> float:
        """The autograded points."""
        return sum(t.points for t in self.tests)

    @property
    def manual_points(self) -> float:
        return sum(m.points for m in self.manual)

    @property
    def label(self) -> str:
        """How the gradebook names the assignment: ``03`` for ``03-clipped-surrogate``, else its name."""
        number = self.assignment.split("-", 1)[0]
        return number if number.isdigit() and "-" in self.assignment else self.assignment

    def notebook(self, name: str) -> NotebookContract:
        return next(nb for nb in self.notebooks if nb.notebook == name)


def nbgrader_meta(cell) -> dict:
    metadata = cell.get("metadata")
    meta = metadata.get("nbgrader") if isinstance(metadata, dict) else None
    return meta if isinstance(meta, dict) else {}


def grade_id(cell) -> str | None:
    return nbgrader_meta(cell).get("grade_id")


def is_answer_cell(cell) -> bool:
    """An autograded answer: the learner's code, scored by test cells."""
    meta = nbgrader_meta(cell)
    return bool(meta.get("solution")) and not meta.get("grade")


def is_test_cell(cell) -> bool:
    meta = nbgrader_meta(cell)
    return bool(meta.get("grade")) and not meta.get("solution")


def is_manual_cell(cell) -> bool:
    """Graded by a person: an answer that is also graded (code or markdown), or a task."""
    meta = nbgrader_meta(cell)
    return bool(meta.get("grade")) and bool(meta.get("solution")) or bool(meta.get("task"))


def is_setup_cell(cell) -> bool:
    tags = cell.get("metadata", {}).get("tags", []) if isinstance(cell.get("metadata"), dict) else []
    return cell.get("cell_type") == "code" and isinstance(tags, list) and SETUP_TAG in tags


def as_code(cell) -> str:
    """A cell's source as Python: markdown cells (an answer converted by accident) lose their fences."""
    source = cell.get("source", "")
    source = "".join(s for s in source if isinstance(s, str)) if isinstance(source, list) else str(source)
    return FENCE.sub("", source) if cell.get("cell_type") == "markdown" else source


PASS_LINE = re.compile(r"\nprint\('[^'\n]*: (visible tests pass; hidden tests run at grading|tests pass)'\)\s*$")


def without_pass_line(source: str) -> str:
    """A test cell as the course wrote it: without the line ``AnnounceVisiblePass`` appends at release (a
    notebook saved from a release without it, stock nbgrader's say, still holds the course's test cell)."""
    return PASS_LINE.sub("", source.rstrip())


def python_lines(source: str) -> str:
    """A cell without its IPython magics and shell escapes (the grader runs plain Python)."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def defined_names(source: str) -> tuple[str, ...]:
    """Top-level function and class names a cell defines (empty when it does not parse)."""
    tree = parse_python(source)
    if tree is None:
        return ()
    return tuple(node.name for node in tree.body
                 if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)))


def bound_names(tree: ast.AST) -> set[str]:
    """Every name a piece of code binds or deletes (assignments, defs, imports, arguments, handlers)."""
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


def used_names(tree: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def where_it_runs(source: str, available: set[str], functions: set[str]) -> tuple[str, str]:
    """(IN_GRADER, "") when a test cell can run in the grader, else (IN_KERNEL, why), by reading it."""
    if any(line.lstrip().startswith(("%", "!")) for line in source.splitlines()):
        return IN_KERNEL, "uses an IPython magic or a shell command"
    tree = parse_python(source)
    if tree is None:
        return IN_KERNEL, "is not plain Python"
    rebinds = sorted({n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id in functions
                      and isinstance(n.ctx, (ast.Store, ast.Del))})
    if rebinds:
        return IN_KERNEL, f"deletes or rebinds the learner's {', '.join(rebinds)}"
    missing = sorted(used_names(tree) - bound_names(tree) - available)
    if missing:
        return IN_KERNEL, f"uses {', '.join(missing)} from the learner's notebook"
    if "get_ipython" in used_names(tree):
        return IN_KERNEL, "uses the kernel itself (get_ipython)"
    return IN_GRADER, ""


def read_notebook_contract(nb: nbformat.NotebookNode, name: str) -> NotebookContract:
    cells = nb.cells
    answers = [(i, c) for i, c in enumerate(cells) if is_answer_cell(c)]
    tests = [(i, c) for i, c in enumerate(cells) if is_test_cell(c)]
    exercises = []
    for position, (index, cell) in enumerate(answers):
        answer_id = grade_id(cell)
        named = [c for _, c in tests if grade_id(c) == f"{answer_id}_tests"]
        if not named:   # not this course's convention: the tests between this answer and the next
            end = answers[position + 1][0] if position + 1 < len(answers) else len(cells)
            named = [c for j, c in tests if index < j < end] or [c for j, c in tests if j > index][:1]
        exercises.append(Exercise(answer_id, defined_names(cell.source), tuple(grade_id(c) for c in named),
                                  sum(float(nbgrader_meta(c).get("points", 0)) for c in named)))
    functions = {name for e in exercises for name in e.functions}
    available = set(dir(builtins)) | functions
    for cell in cells:
        if is_setup_cell(cell):
            available |= bound_names(parse_python(python_lines(cell.source)) or ast.Module(body=[], type_ignores=[]))
    test_cells = []
    for _, cell in tests:
        runs_in, why = where_it_runs(cell.source, available, functions)
        test_cells.append(TestCell(grade_id(cell), float(nbgrader_meta(cell).get("points", 0)), runs_in, why))
        if runs_in == IN_GRADER:
            available |= bound_names(parse_python(cell.source))
    manual = tuple(ManualCell(grade_id(c), float(nbgrader_meta(c).get("points", 0)),
                              "task" if nbgrader_meta(c).get("task") else "answer")
                   for c in cells if is_manual_cell(c))
    return NotebookContract(name, tuple(exercises), tuple(test_cells), manual)


def read_contract(folder: Path) -> Contract:
    """The contract of the assignment whose source (or released) notebooks are in ``folder``."""
    notebooks = sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith("."))
    return Contract(folder.name, tuple(read_notebook_contract(nbformat.read(p, as_version=4), p.name)
                                       for p in notebooks))
