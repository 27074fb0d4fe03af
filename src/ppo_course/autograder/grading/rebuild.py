"""Rebuild a submission from the released notebook plus the learner's answers.

Grading trusts the exercise contract, not the submitted file: the notebook that nbgrader runs is
the course's released notebook with only the answer cells replaced by what the learner wrote. So a
deleted, edited, duplicated, reordered or markdown-converted test cell is simply the course's own
again, and a notebook saved by an older release, or by an editor that dropped nbgrader's metadata,
is graded against today's tests.

Which cell holds the learner's answer to an exercise:
  1. every cell that carries the exercise's grade_id (even converted to markdown), and every cell
     that defines one of the contract's function names (metadata lost, or an answer written in a
     new cell below the stub) is a candidate;
  2. the last candidate in the file that does more than ``raise NotImplementedError`` wins;
  3. with no such candidate the released stub stays, and the exercise scores 0.

Only answer cells are taken, so a helper the learner defined in a cell of their own would be lost
and the answer would fail with NameError. The functions, classes and imports of the learner's own
cells that an answer uses (directly or through another helper) are therefore carried into the
answer cell, above it. Nothing else from those cells runs. (This opens no new door: the answer cell
itself is arbitrary code.)
"""
from __future__ import annotations

import ast
import copy
import json
from dataclasses import dataclass, field

import nbformat

from ..errors import EndsWithStatus
from .contract import (
    Exercise,
    NotebookContract,
    as_code,
    defined_names,
    grade_id,
    is_test_cell,
    nbgrader_meta,
    parse_python,
    python_lines,
    without_pass_line,
)

MAX_SUBMISSION_BYTES = 100 * 2**20   # a notebook with its outputs is a few MB at most
MAX_ANSWER_CHARS = 64 * 2**10        # one answer, with the helpers carried into it (a real one is a few KB)


class SubmissionError(EndsWithStatus, Exception):
    """The file cannot be graded at all."""


@dataclass
class Answer:
    source: str
    cell_index: int      # position in the submitted file
    matched_by: str      # "grade_id", "markdown cell", "function name"


@dataclass
class Rebuilt:
    notebook: nbformat.NotebookNode
    answers: dict[str, Answer]
    notes: list[str] = field(default_factory=list)
    syntax_errors: dict[str, dict] = field(default_factory=dict)   # answer_id -> {"line", "message", "text"}


def syntax_error(source: str) -> dict | None:
    """Where an answer fails to compile, as the learner's cell numbers its lines: {"line", "message", "text"};
    None when it compiles. (A cell's IPython magics are not Python, and not an error; top-level await is
    allowed, as IPython allows it.)"""
    try:
        compile(python_lines(source), "<answer>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
    except SyntaxError as error:
        text = (error.text or "").strip()
        return {"line": error.lineno or 0, "message": error.msg or type(error).__name__,
                "text": text if len(text) <= 120 else text[:119] + "…"}
    except (ValueError, RecursionError, MemoryError) as error:   # a null byte; nesting deeper than Python parses
        return {"line": 0, "message": f"{type(error).__name__}: the code cannot be read as Python", "text": ""}
    return None


def syntax_note(answer_id: str, error: dict) -> str:
    where = f"on line {error['line']} of your answer" if error["line"] else "in your answer"
    text = f" (`{error['text']}`)" if error["text"] else ""
    return (f"{answer_id}: syntax error {where}: {error['message']}{text}; the answer could not run, so its "
            "tests score 0")


def read_submission(data: bytes) -> list[dict]:
    """The cells of a submitted file, or SubmissionError('unreadable', why) however it fails to be a notebook."""
    if len(data) > MAX_SUBMISSION_BYTES:
        raise SubmissionError("unreadable", f"the file is {len(data) / 2**20:.0f} MB; a lesson's notebook is far "
                                            f"smaller (limit {MAX_SUBMISSION_BYTES // 2**20} MB)")
    if not data.strip():
        raise SubmissionError("unreadable", "the file is empty")
    try:
        nb = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise SubmissionError("unreadable", "not a notebook (binary file)") from None
    except json.JSONDecodeError as error:
        raise SubmissionError("unreadable", f"not a notebook: broken JSON (line {error.lineno}: {error.msg}); "
                                            "truncated upload?") from None
    except RecursionError:
        raise SubmissionError("unreadable", "not a notebook: JSON nested too deeply to read") from None
    except (ValueError, MemoryError) as error:
        raise SubmissionError("unreadable", f"not a notebook: JSON that cannot be read ({type(error).__name__})") \
            from None
    cells = nb.get("cells") if isinstance(nb, dict) else None
    if cells is None and isinstance(nb, dict) and isinstance(nb.get("worksheets"), list):  # nbformat 3
        cells = [c for sheet in nb["worksheets"] if isinstance(sheet, dict)
                 for c in (sheet.get("cells") if isinstance(sheet.get("cells"), list) else [])]
        cells = [dict(c, source=c.get("source", c.get("input", ""))) for c in cells if isinstance(c, dict)]
    if not isinstance(cells, list):
        raise SubmissionError("unreadable", "not a notebook: JSON without cells")
    return [plain_cell(c) for c in cells if isinstance(c, dict)]


def plain_cell(cell: dict) -> dict:
    """A submitted cell reduced to what grading reads, each field of the type it must have (a hostile file
    can put anything, at any depth, anywhere)."""
    source = cell.get("source", "")
    if isinstance(source, list):
        source = "".join(s for s in source if isinstance(s, str))
    metadata = cell.get("metadata")
    nbgrader = metadata.get("nbgrader") if isinstance(metadata, dict) else None
    grading = ({k: v for k, v in nbgrader.items() if isinstance(v, (str, bool, int, float))}
               if isinstance(nbgrader, dict) else {})
    kind = cell.get("cell_type")
    return {"cell_type": kind if isinstance(kind, str) else "raw", "source": source if isinstance(source, str) else "",
            "metadata": {"nbgrader": grading} if grading else {}}


def is_stub(source: str, functions: tuple[str, ...]) -> bool:
    """True when every contract function the cell defines only raises NotImplementedError."""
    tree = parse_python(source)
    if tree is None:
        return False  # the learner's own (broken) attempt: grade it, the error is their feedback
    defs = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name in functions]
    return bool(defs) and all(_only_raises_not_implemented(d.body) for d in defs)


def _only_raises_not_implemented(body: list[ast.stmt]) -> bool:
    statements = [s for s in body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))
                  and not isinstance(s, ast.Pass)]
    if len(statements) != 1 or not isinstance(statements[0], ast.Raise):
        return False
    raised = statements[0].exc
    name = raised.func if isinstance(raised, ast.Call) else raised
    return isinstance(name, ast.Name) and name.id == "NotImplementedError"


def find_answer(cells: list[dict], exercise: Exercise) -> Answer | None:
    """The learner's answer to one exercise (rules in the module docstring), or None."""
    candidates = []
    for index, cell in enumerate(cells):
        if is_test_cell(cell) or cell.get("cell_type") not in ("code", "markdown"):
            continue
        source = as_code(cell)
        if grade_id(cell) == exercise.answer_id:
            how = "grade_id" if cell.get("cell_type") == "code" else "markdown cell"
        elif set(defined_names(source)) & set(exercise.functions):
            how = "function name"
        else:
            continue
        candidates.append(Answer(source, index, how))
    written = [a for a in candidates if not is_stub(a.source, exercise.functions)]
    return written[-1] if written else None


def _definitions(source: str) -> list[tuple[set[str], ast.stmt]]:
    """Top-level defs, classes and imports of a cell, each with the names it binds."""
    tree = parse_python(source)
    if tree is None:
        return []
    found = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.append(({node.name}, node))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(({(a.asname or a.name).split(".")[0] for a in node.names}, node))
    return found


def _names_used(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def carry_helpers(answer: Answer, cells: list[dict], released: nbformat.NotebookNode,
                  contract_functions: set[str]) -> tuple[Answer, list[str]]:
    """``answer`` with the learner's own helper definitions it uses prepended; and their names.

    Exercises' own functions are never carried: each is graded from its own answer cell.
    """
    course_sources = {c.source.strip() for c in released.cells}
    helpers = []  # (names, source) in file order, from code cells the course did not write
    for index, cell in enumerate(cells):
        source = as_code(cell)
        if (cell.get("cell_type") != "code" or nbgrader_meta(cell) or source.strip() in course_sources
                or index == answer.cell_index):
            continue
        helpers += [(names, ast.get_source_segment(source, node)) for names, node in _definitions(source)
                    if not names & contract_functions]
    tree = parse_python(answer.source)
    if tree is None:
        return answer, []
    needed = _names_used(tree)
    chosen: list[int] = []
    changed = True
    while changed:  # a helper may use another helper
        changed = False
        for i, (names, segment) in enumerate(helpers):
            if i not in chosen and names & needed:
                chosen.append(i)
                needed |= _names_used(parse_python(segment) or ast.Module(body=[], type_ignores=[]))
                changed = True
    if not chosen:
        return answer, []
    block = "\n\n".join(helpers[i][1] for i in sorted(chosen))
    carried = sorted({name for i in chosen for name in helpers[i][0]})
    source = f"# carried from your other cells: {', '.join(carried)}\n{block}\n\n{answer.source}"
    return Answer(source, answer.cell_index, answer.matched_by), carried


def audit_tests(cells: list[dict], released: nbformat.NotebookNode) -> list[str]:
    """What the learner's file did to the course's test cells (all restored by the rebuild)."""
    notes = []
    for test in (c for c in released.cells if is_test_cell(c)):
        copies = [c for c in cells if grade_id(c) == grade_id(test)]
        code = [c for c in copies if c.get("cell_type") == "code"]
        if not copies:
            notes.append(f"test cell {grade_id(test)} missing: restored")
        elif len(copies) > 1:
            notes.append(f"test cell {grade_id(test)} duplicated: graded once")
        elif not code:
            notes.append(f"test cell {grade_id(test)} turned into markdown: restored")
        elif without_pass_line(as_code(code[0])).strip() != without_pass_line(test.source).strip():
            notes.append(f"test cell {grade_id(test)} edited: restored")
    return notes


def fill(released: nbformat.NotebookNode, answers: dict[str, str]) -> nbformat.NotebookNode:
    """A copy of the released notebook with these answer cells' sources replaced."""
    notebook = copy.deepcopy(released)
    for cell in notebook.cells:
        if grade_id(cell) in answers:
            cell.source = answers[grade_id(cell)]
    return notebook


def rebuild(data: bytes, released: nbformat.NotebookNode, contract: NotebookContract) -> Rebuilt:
    """The notebook to grade: ``released`` with the answers found in the submitted bytes (the autograded
    answers, and the manually graded ones by their grade_id, for a person to read)."""
    cells = read_submission(data)
    answers, notes, broken = {}, [], {}
    contract_functions = contract.function_names
    for exercise in contract.exercises:
        answer = find_answer(cells, exercise)
        if answer is None:
            notes.append(f"no answer to {exercise.answer_id}")
            continue
        error = syntax_error(answer.source)
        if error is not None:
            broken[exercise.answer_id] = error
        answer, carried = carry_helpers(answer, cells, released, contract_functions)
        if len(answer.source) > MAX_ANSWER_CHARS:
            notes.append(f"{exercise.answer_id}: the answer is {len(answer.source) // 1024} KB of code, more than "
                         f"the {MAX_ANSWER_CHARS // 1024} KB an answer may be: not graded")
            continue
        if carried:
            notes.append(f"{exercise.answer_id}: uses {', '.join(carried)} "
                         "from the learner's other cells (carried along)")
        answers[exercise.answer_id] = answer
        if answer.matched_by != "grade_id":
            notes.append(f"{exercise.answer_id}: answer found by {answer.matched_by} (cell {answer.cell_index + 1})")
    if not answers and contract.exercises:
        notes = ["blank: no answer written"]
    manual = {}
    for cell in (m for m in contract.manual if m.kind == "answer"):
        written = [c for c in cells if grade_id(c) == cell.grade_id]
        if written and len(written[-1]["source"]) <= MAX_ANSWER_CHARS:
            manual[cell.grade_id] = written[-1]["source"]
    if any(grade_id(c) for c in cells):
        notes.extend(audit_tests(cells, released))
    else:
        notes.append("nbgrader metadata missing (VS Code/Colab?): answers matched by function name, tests restored")
    notebook = fill(released, manual | {answer_id: answer.source for answer_id, answer in answers.items()})
    # First among the notes: the summary and the gradebook's comment show the first ones when space runs out.
    notes = [syntax_note(answer_id, error) for answer_id, error in broken.items()] + notes
    return Rebuilt(notebook, answers, notes, broken)
