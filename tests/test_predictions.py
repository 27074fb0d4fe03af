"""Every prediction withholds its answer until the learner has written a guess, and nothing before it
gives the answer away (CONTRIBUTING, "Predict, then run").

A prediction is a guess cell that binds ``my_<thing> = None`` and a measuring cell that calls
``check_prediction(my_<thing>, measured, ...)``. For each one, in every lesson:

1. the guess cell comes before the measuring cell (a name a lesson binds as ``my_... = None`` is a guess,
   and some ``check_prediction`` must read it);
2. from the guess cell to the measuring cell, nothing is shown but check_prediction's verdict and what
   is shown under ``if prediction_made(my_<thing>):``. Read from the cells' code, without running them:
   no top-level ``print``/``display``, no figure drawn, no bare expression left last in a cell, no call
   of a notebook function that does one of these;
3. nothing above the guess cell states the answer: no markdown, no output, and (for an answer of several
   numbers) no code. The answer is read from the executed copy the other tests use, which runs with
   PPO_COURSE_REVEAL=1 and so prints "...: measured <answer>." for every prediction. A number counts as
   given away when a text above writes it (two significant digits or more, at the precision written)
   and it is not one of the notebook's own inputs; a list, when its numbers appear in that order. An
   answer that is not a number (a letter, a formula) is guarded by the phrases in SPOILERS.

Rules 1 and 2 parse the source notebooks and take milliseconds; rule 3 reads the executed copies that
test_notebooks.py and test_prose_numbers.py share, so in a full run it executes nothing more.
"""
from __future__ import annotations

import ast
import functools
import math
import re
from dataclasses import dataclass

import nbformat
import pytest

from conftest import SOLUTIONS, notebooks
from notebook_execution import executed_copy

GUESS_PREFIX = "my_"
#: Calls that draw or change a figure: in a notebook the figure is shown when the cell ends.
FIGURE_CALLS = {"new_figure", "subplots", "figure", "show", "plot", "hist", "bar", "barh", "scatter", "imshow",
                "fill_between", "axhline", "axvline", "axhspan", "axvspan", "semilogy", "loglog", "errorbar",
                "annotate", "legend", "vlines", "hlines", "set_title", "set_xlabel", "set_ylabel"}

#: Calls whose value is None, so a cell that ends with one displays no value.
RETURN_NONE = {"check_prediction", "print", "display"}

#: Answers that are not numbers, and the phrases that state them. (lesson, guess) -> [(pattern, why)].
SPOILERS: dict[tuple[str, str], list[tuple[str, str]]] = {
    ("01-importance-sampling", "my_score"): [
        (r"e_a\s*-\s*\\pi_\\theta", "states the softmax's score e_a - pi_theta, which the learner derives")],
    ("01-importance-sampling", "my_grad_r"): [
        (r"\\nabla_\\theta\s*r\s*=\s*r\s*\\?,?\s*\\nabla", "states grad r = r grad log pi, which the learner derives")],
    ("02-trpo", "my_beta"): [
        (r"\\sqrt\{\s*\\frac\{2\s*\\delta\}", "states beta = sqrt(2 delta / s^T F s), which the learner derives")],
    ("04-ppo-cartpole", "my_kl_prediction"): [
        (r"several-times larger approximate KL", "says what eps = 0.5 does to the KL before asking")],
    ("04-ppo-cartpole", "my_curve_prediction"): [
        (r"dips after the\s+curve first reaches", "says what K = 30 does to the curve before asking")],
    ("05-ppo-for-rlhf", "my_kl_prediction"): [
        (r"KL to the reference explodes", "says what beta = 0 does to the KL before asking")],
    ("05-ppo-for-rlhf", "my_reader_prediction"): [
        (r"samples turn into nonsense", "says what beta = 0 does to the reader's score before asking")],
    ("06-continuous-control", "my_mean_ratio"): [
        (r"r\^\{1/D\}", "states that a mean over dimensions reports r^(1/D)")],
    ("06-continuous-control", "my_ratio_answer"): [
        (r"cancels in the ratio", "states that the tanh correction cancels in the ratio")],
}


# --- reading a notebook's code ----------------------------------------------------------------------------

def parse(source: str) -> ast.Module | None:
    """A code cell's syntax tree (IPython's % and ! lines dropped), or None if it is not Python."""
    try:
        return ast.parse("\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))))
    except SyntaxError:
        return None


def guesses_bound(tree: ast.Module) -> set[str]:
    """Names a cell binds to None at its top level (``my_guess = None``)."""
    return {node.targets[0].id for node in tree.body
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
            and isinstance(node.value, ast.Constant) and node.value.value is None}


def checked_guesses(tree: ast.Module) -> list[str]:
    """The first argument of every check_prediction call in a cell, in the order they run."""
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call) and _name(node.func) == "check_prediction"
             and node.args and isinstance(node.args[0], ast.Name)]
    return [call.args[0].id for call in sorted(calls, key=lambda call: (call.lineno, call.col_offset))]


def _name(func: ast.expr) -> str:
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def _gates_on(test: ast.expr, guess: str) -> bool:
    """``prediction_made(guess)``, ``guess is not None``, or an ``and`` of conditions one of which is."""
    if isinstance(test, ast.Call) and _name(test.func) == "prediction_made":
        return any(isinstance(arg, ast.Name) and arg.id == guess for arg in test.args)
    if isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == guess:
        return (len(test.ops) == 1 and isinstance(test.ops[0], ast.IsNot)
                and isinstance(test.comparators[0], ast.Constant) and test.comparators[0].value is None)
    return (isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And)
            and any(_gates_on(value, guess) for value in test.values))


def what_shows(node: ast.AST, guess: str, functions: dict[str, ast.FunctionDef],
               seen: frozenset = frozenset()) -> str | None:
    """What a statement shows when it runs (outside ``if prediction_made(guess):``), or None."""
    if isinstance(node, ast.If) and _gates_on(node.test, guess):
        return next(filter(None, (what_shows(n, guess, functions, seen) for n in node.orelse)), None)
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
        return None   # a definition runs nothing
    if isinstance(node, ast.Call):
        name = _name(node.func)
        if name == "check_prediction":
            return None
        if name in ("print", "display"):
            return f"{name}(...)"
        if name in FIGURE_CALLS or name.startswith("plot"):
            return f"a figure ({name}(...))"
        if any(k.arg == "progress" and isinstance(k.value, ast.Constant) and k.value.value is True
               for k in node.keywords):
            return f"a progress bar ({name}(..., progress=True))"
        if isinstance(node.func, ast.Name) and name in functions and name not in seen:
            inner = next(filter(None, (what_shows(statement, guess, functions, seen | {name})
                                       for statement in functions[name].body)), None)
            if inner:
                return f"{name}(), which shows {inner}"
    return next(filter(None, (what_shows(child, guess, functions, seen) for child in ast.iter_child_nodes(node))), None)


def shown_by_cell(source: str, guess: str, functions: dict[str, ast.FunctionDef]) -> list[str]:
    """Everything a code cell shows before a guess for ``guess`` is made (empty when it shows nothing)."""
    tree = parse(source)
    if tree is None or not tree.body:
        return []
    shown = [f"line {node.lineno}: {what}" for node in tree.body if (what := what_shows(node, guess, functions))]
    last = tree.body[-1]
    if (isinstance(last, ast.Expr) and not source.rstrip().endswith(";")
            and not (isinstance(last.value, ast.Call) and _name(last.value.func) in RETURN_NONE)):
        shown.append(f"line {last.lineno}: its last line is an expression, whose value the notebook displays")
    return shown


# --- the predictions of a notebook --------------------------------------------------------------------------

@dataclass(frozen=True)
class Prediction:
    lesson: str
    guess: str             # the name the learner writes the guess into
    guess_cell: int        # the cell that binds it to None
    check_cell: int        # the cell that calls check_prediction on it
    order: int             # which check_prediction call of that cell (0 = the first)

    def __str__(self) -> str:
        return f"{self.lesson}:{self.guess}"


def predictions_of(cells, lesson: str = "") -> tuple[list[Prediction], list[str]]:
    """The predictions of a notebook's cells, and the problems that keep one from being a prediction."""
    found, problems, bound_at = [], [], {}
    for index, cell in enumerate(cells):
        tree = parse(cell.source) if cell.cell_type == "code" else None
        if tree is None:
            continue
        for order, guess in enumerate(checked_guesses(tree)):
            if guess not in bound_at:
                problems.append(f"cell {index}: check_prediction reads {guess}, which no earlier cell binds to None "
                                "(the guess cell comes first: `{guess} = None   # your guess: ...`)")
            else:
                found.append(Prediction(lesson, guess, bound_at[guess], index, order))
        for guess in guesses_bound(tree):
            bound_at[guess] = index
    checked = {p.guess for p in found}
    problems += [f"cell {index}: {guess} = None looks like a guess, but no check_prediction after it reads it"
                 for guess, index in bound_at.items() if guess.startswith(GUESS_PREFIX) and guess not in checked]
    return found, problems


def notebook_functions(cells) -> dict[str, ast.FunctionDef]:
    """The functions a notebook defines at the top level of its code cells, by name."""
    return {node.name: node for cell in cells if cell.cell_type == "code" and (tree := parse(cell.source))
            for node in tree.body if isinstance(node, ast.FunctionDef)}


def shown_before_a_guess(cells, prediction: Prediction) -> list[str]:
    """What the cells from the guess cell to the measuring cell show while the guess is still None."""
    functions = notebook_functions(cells)
    return [f"cell {index}, {what}" for index in range(prediction.guess_cell, prediction.check_cell + 1)
            if cells[index].cell_type == "code"
            for what in shown_by_cell(cells[index].source, prediction.guess, functions)]


# --- what is written above a guess ---------------------------------------------------------------------------

NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def numbers_in(text: str) -> list[tuple[str, int]]:
    """Each number written in ``text`` (minus signs read, thousands separators dropped), with where it starts."""
    text = text.replace("−", "-")
    with_separators = r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|" + NUMBER.pattern
    return [(m.group(0).replace(",", ""), m.start()) for m in re.finditer(with_separators, text)]


def significant_digits(written: str) -> int:
    return len(written.lstrip("-").replace(".", "").lstrip("0"))


def matches(written: str, value: float, signed: bool = True) -> bool:
    """``written`` is ``value`` at the precision it is written at."""
    decimals = len(written.split(".")[1]) if "." in written else 0
    x, v = (float(written), value) if signed else (abs(float(written)), abs(value))
    return abs(x - v) <= 0.5 * 10 ** -decimals + 1e-12


def states(written: str, value: float) -> bool:
    """Whether ``written`` would tell a reader the answer ``value``: a decimal of three significant digits or
    more that rounds to it, or a whole number of two digits or more that equals it (a lone 2 or 0.9 is too
    common in a lesson to mean anything)."""
    if "." in written:
        return significant_digits(written) >= 3 and matches(written, value, signed=False)
    return significant_digits(written) >= 2 and float(written) == abs(value) == round(abs(value))


def _same(written: str, value: float) -> bool:
    """One entry of a list answer, written: a whole number exactly, any other number with its decimals."""
    return float(written) == value if value == round(value) else "." in written and matches(written, value)


def measured_answer(outputs_text: str, order: int) -> str:
    """The answer check_prediction printed (with answers revealed) in its ``order``-th call of a cell."""
    lines = [line for line in outputs_text.splitlines() if ": measured " in line]
    assert len(lines) > order, f"no 'measured ...' line for check_prediction call {order} in: {outputs_text[:300]!r}"
    return lines[order].rsplit(": measured ", 1)[1].rstrip().removesuffix(".")


def _context(text: str, at: int) -> str:
    return " ".join(text[max(0, at - 50):at + 30].split())


def given_away(answer: str, above: str, code_above: str, inputs: set[float]) -> list[str]:
    """Where the text above a guess states ``answer`` (as check_prediction printed it)."""
    if answer.startswith(("'", '"')):
        return []   # letters: SPOILERS guards them
    values = [float(x) for x, _ in numbers_in(answer)]
    found = []
    for value in values:
        if any(math.isclose(abs(value), x, rel_tol=1e-12, abs_tol=1e-12) for x in inputs):
            continue   # the question's own numbers
        found += [f"{w} (the answer has {value:g}) in ...{_context(above, at)}..."
                  for w, at in numbers_in(above) if states(w, value)]
    if len(values) >= 3 and any(v != round(v) or abs(v) >= 10 for v in values):
        for text, where in ((above, "the text"), (code_above, "the code")):
            written = numbers_in(text)
            for start in range(len(written) - len(values) + 1):
                if all(_same(w, v) for (w, _), v in zip(written[start:], values)):
                    context = _context(text, written[start][1])
                    found.append(f"the whole answer {answer} in {where} above: ...{context}...")
                    break
    return found


def text_above(cells, index: int) -> tuple[str, str]:
    """(markdown and outputs, code) of the cells before ``index``."""
    prose, code = [], []
    for cell in cells[:index]:
        if cell.cell_type == "markdown":
            prose.append(cell.source)
        elif cell.cell_type == "code":
            code.append(cell.source)
            prose.append(outputs_text(cell))
    return "\n".join(prose), "\n".join(code)


def outputs_text(cell) -> str:
    """What a reader sees of a cell's outputs: its text, and its HTML without tags or embedded images."""
    parts = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type in ("execute_result", "display_data"):
            data = output.get("data", {})
            html = re.sub(r"<[^>]*>", " ", re.sub(r"data:[\w/+.-]+;base64,[\w+/=]+", " ", data.get("text/html", "")))
            parts.append(data.get("text/plain", "") + "\n" + html)
    return "\n".join(parts)


def code_inputs(cells) -> set[float]:
    return {abs(float(x)) for cell in cells if cell.cell_type == "code" for x, _ in numbers_in(cell.source)}


# --- the tests ---------------------------------------------------------------------------------------------

def _collect() -> tuple[list[Prediction], dict[str, list[str]]]:
    everything, problems = [], {}
    for notebook in notebooks(SOLUTIONS):
        found, problems[notebook.parent.name] = predictions_of(nbformat.read(notebook, as_version=4).cells,
                                                               notebook.parent.name)
        everything += found
    return everything, problems


PREDICTIONS, PROBLEMS = _collect()


@functools.cache
def _cells(lesson: str):
    return nbformat.read(next((SOLUTIONS / lesson).glob("*.ipynb")), as_version=4).cells


@pytest.mark.parametrize("lesson", sorted(PROBLEMS))
def test_every_guess_comes_before_its_check(lesson):
    assert not PROBLEMS[lesson], f"{lesson}: predictions that are not predict-then-run:\n" + "\n".join(PROBLEMS[lesson])


@pytest.mark.parametrize("prediction", PREDICTIONS, ids=str)
def test_the_answer_waits_for_a_guess(prediction):
    shown = shown_before_a_guess(_cells(prediction.lesson), prediction)
    assert not shown, (
        f"{prediction}: before a guess is written, these cells (from the guess cell {prediction.guess_cell} to the "
        f"measuring cell {prediction.check_cell}) show more than check_prediction's verdict; put what gives the answer "
        f"away under `if prediction_made({prediction.guess}):`, or after the measuring cell:\n" + "\n".join(shown))


@pytest.mark.slow   # reads the executed copy (shared with test_notebooks and test_prose_numbers)
@pytest.mark.parametrize("prediction", PREDICTIONS, ids=str)
def test_nothing_above_the_guess_gives_the_answer_away(prediction):
    notebook = next((SOLUTIONS / prediction.lesson).glob("*.ipynb"))
    cells = executed_copy(notebook).cells
    answer = measured_answer(outputs_text(cells[prediction.check_cell]), prediction.order)
    above, code_above = text_above(cells, prediction.guess_cell)
    found = given_away(answer, above, code_above, code_inputs(cells))
    found += [f"{why}: {match.group(0)!r}" for pattern, why in SPOILERS.get((prediction.lesson, prediction.guess), [])
              for match in [re.search(pattern, above)] if match]
    assert not found, (f"{prediction}: the answer ({answer}) is given away above the guess cell "
                       f"{prediction.guess_cell}:\n" + "\n".join(found))


def test_every_lesson_with_a_check_has_predictions_found():
    """The collector sees the course's predictions (a parser that silently found none would pass everything)."""
    per_lesson = {lesson: sum(p.lesson == lesson for p in PREDICTIONS) for lesson in PROBLEMS}
    assert all(count >= 2 for count in per_lesson.values()), f"predictions found per lesson: {per_lesson}"


# --- the checks can fail -------------------------------------------------------------------------------------

def _notebook(*sources: str):
    return [nbformat.v4.new_markdown_cell(s[3:]) if s.startswith("md:") else nbformat.v4.new_code_cell(s)
            for s in sources]


def test_the_checks_reject_answers_shown_too_early():
    def shown(*sources):
        cells = _notebook(*sources)
        (prediction,), problems = predictions_of(cells)
        assert not problems, problems
        return shown_before_a_guess(cells, prediction)

    check = "check_prediction(my_guess, measured, 'x')"
    assert not shown("my_guess = None", f"measured = 3\n{check}\nif prediction_made(my_guess):\n    print(measured)")
    assert not shown("my_guess = None", f"measured = 3\n{check}\nif my_guess is not None and measured:\n    print(1)")
    assert not shown("my_guess = None", f"def f():\n    print(1)\n{check}")          # defined, never called
    assert shown("my_guess = None", f"measured = 3\nprint(measured)\n{check}"), "a top-level print"
    assert shown("my_guess = None", f"measured = 3\n{check}\nif other:\n    print(measured)"), "an ungated print"
    assert shown("my_guess = None", f"fig, ax = new_figure()\n{check}"), "a figure"
    assert shown("my_guess = None", f"{check}\nax.plot([1, 2]);"), "a plot"
    assert shown("my_guess = None", f"{check}\ntable(rows)"), "a bare last expression"
    assert shown("my_guess = None", f"def f():\n    print(1)\nf()\n{check}"), "a notebook function that prints"
    assert shown("my_guess = None", "print(3)", check), "a cell between the guess and the check"
    assert shown("my_guess = None", f"for x in xs:\n    display(x)\n{check}"), "a display inside a loop"
    cells = _notebook(check, "my_guess = None")
    assert predictions_of(cells)[1], "a check before its guess cell"
    assert predictions_of(_notebook("my_guess = None", "x = 1"))[1], "a guess no check reads"


def test_the_checks_reject_answers_written_above():
    assert given_away("0.1771", "the gain is 0.177 here", "", set()), "a number at its written precision"
    assert given_away("[42.657, 10.717]", "a median of 10.7", "", set()), "one number of a list"
    assert given_away("33", "33 of the 40 measurements", "", set()), "a whole number of two digits"
    assert not given_away("[42.657, 10.717]", "about 43 and 11", "", set()), "whole numbers near a decimal answer"
    assert not given_away("2.014", "about 2.0", "", set()), "two significant digits are too common to count"
    assert not given_away("[1.0, 1.105, 0.905]", "lesson 01, 1 and 2", "", set()), "a list matched by whole numbers"
    assert not given_away("0.1771", "the gain is 0.19 and 0.2", "", set()), "0.19: a different number at 2 decimals"
    assert not given_away("-1.5", "r = 1.5 in the table", "", {1.5}), "the question's own input"
    assert not given_away("[1, 2, 6]", "eigenvalues 1, 2, 3, 4, 5, 6", "", set()), "single digits and no run of them"
    assert given_away("[-0.8, -0.8, -1.0]", "", "assert_close(out, [-0.8, -0.8, -1.0])", {0.8, 1.0}), (
        "a whole list in code")
    assert not given_away("'b'", "(b) stays the same", "", set()), "letters are left to SPOILERS"
    assert measured_answer("a: measured 3.\nwhy\nb: c: measured [1, 2].\n", 1) == "[1, 2]"
