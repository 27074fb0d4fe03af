"""Every number a lesson's prose quotes is either an input (it appears in the notebook's code) or a
result (an output of the same notebook, as executed by the tests, prints it at the quoted precision).

So the text cannot drift from what the code computes: change a seed, a hyperparameter or a
precomputed file, and the sentence that quoted the old number fails here. Numbers that come from a
long run are quoted from the precomputed file the notebook loads and prints (as lesson 04 does with
its ablations), never from a live cell whose fast-mode output differs.

What counts as a quoted number: a decimal (0.385, 1.5), a percentage (77%) and a ratio (2.2x).
Plain integers (500 steps, 20 episodes, lesson 04) are too often labels to check this way.

A sentence that quotes numbers as another lesson's ("TRPO's step is lesson 02's: a KL of 0.0091") must
also quote numbers that lesson prints: two lessons cannot call different computations the same one.
"""
from __future__ import annotations

import math
import re

import pytest

from conftest import SOLUTIONS, notebooks
from notebook_execution import executed_copy

pytestmark = pytest.mark.slow   # executes every solution notebook

DECIMAL_OR_MARKED = re.compile(r"(?<![\w.^{}])(\d+\.\d+|\d+(?=%|x\b|×))(%|x\b|×)?")
ANY_NUMBER = re.compile(r"-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")

# A number quoted on purpose although no output of the notebook prints it, with the reason.
ALLOWED: dict[str, dict[str, str]] = {
}


def _outputs_text(cells) -> str:
    parts = []
    for cell in cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                parts.append(output.text)
            elif output.output_type in ("execute_result", "display_data"):
                data = output.get("data", {})
                parts.append(data.get("text/plain", "") + data.get("text/html", ""))
    return "\n".join(parts)


def _numbers(text: str) -> list[float]:
    return [float(m) for m in ANY_NUMBER.findall(text.replace(",", ""))]


def quoted_numbers(markdown: str) -> list[tuple[str, float, int, str]]:
    """(as written, value, decimals, kind) for each checked number of a markdown cell."""
    found = []
    for match in DECIMAL_OR_MARKED.finditer(markdown):
        digits, kind = match.group(1), match.group(2) or ""
        decimals = len(digits.split(".")[1]) if "." in digits else 0
        found.append((match.group(0), float(digits), decimals, {"%": "percent", "": "decimal"}.get(kind, "ratio")))
    return found


def is_backed(value: float, decimals: int, kind: str, inputs: list[float], results: list[float]) -> bool:
    half_unit = 0.5 * 10 ** -decimals + 1e-9
    candidates = [value, value / 100] if kind == "percent" else [value]
    for want in candidates:
        if any(math.isclose(want, abs(x), rel_tol=1e-12, abs_tol=1e-12) for x in inputs):   # signs are not read
            return True
        unit = half_unit / 100 if want != value else half_unit
        if any(abs(abs(x) - want) <= unit for x in results):
            return True
    return False


def sections(cells) -> list[list[int]]:
    """Cell indices grouped by the level-2 headings (``## ...``) that open them."""
    groups: list[list[int]] = [[]]
    for index, cell in enumerate(cells):
        if cell.cell_type == "markdown" and re.match(r"\s*## ", cell.source):
            groups.append([])
        groups[-1].append(index)
    return [g for g in groups if g]


SUMMARY = re.compile(r"\s*## (What to remember|Summary)", re.IGNORECASE)


@pytest.mark.parametrize("notebook", notebooks(SOLUTIONS), ids=lambda p: p.parent.name)
def test_every_quoted_number_comes_from_the_notebook(notebook):
    """A number must be shown in its own section (a summary section may quote the whole notebook)."""
    nb = executed_copy(notebook)
    inputs = _numbers("\n".join(c.source for c in nb.cells if c.cell_type == "code"))
    everywhere = _numbers(_outputs_text(nb.cells))
    allowed = ALLOWED.get(notebook.parent.name, {})
    unbacked = []
    for group in sections(nb.cells):
        summary = bool(SUMMARY.match(nb.cells[group[0]].source))
        results = everywhere if summary else _numbers(_outputs_text([nb.cells[i] for i in group]))
        for index in group:
            cell = nb.cells[index]
            if cell.cell_type == "markdown":
                unbacked += _unbacked(index, cell.source, inputs, results, allowed)
    assert not unbacked, ("numbers in the prose that neither the code nor any output of their section shows "
                          "(print them, or quote what is printed):\n" + "\n".join(unbacked))


def _unbacked(index: int, markdown: str, inputs: list[float], results: list[float], allowed: dict) -> list[str]:
    unbacked = []
    for written, value, decimals, kind in quoted_numbers(markdown):
        if written in allowed or is_backed(value, decimals, kind, inputs, results):
            continue
        start = markdown.find(written)
        context = " ".join(markdown[max(0, start - 60):start + 40].split())
        unbacked.append(f"cell {index}: {written!r} in ...{context}...")
    return unbacked


ANOTHER_LESSONS = re.compile(r"\blesson (\d\d)'s\b", re.IGNORECASE)


def sentences(markdown: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?;])\s+|\n\s*\n", markdown) if s.strip()]


def attributed(markdown: str, own: str) -> list[tuple[str, str]]:
    """(lesson number, sentence) for each sentence of ``markdown`` that quotes a number as another lesson's."""
    return [(number, sentence) for sentence in sentences(markdown) if quoted_numbers(sentence)
            for number in sorted(set(ANOTHER_LESSONS.findall(sentence)) - {own})]


@pytest.mark.parametrize("notebook", notebooks(SOLUTIONS), ids=lambda p: p.parent.name)
def test_numbers_quoted_as_another_lessons_are_printed_there(notebook):
    """A sentence that names another lesson's result ("TRPO's step is lesson 02's: a KL of 0.0091") quotes
    numbers that lesson prints. Its own section must print them too (the test above), so a lesson that calls
    a computation another lesson's while running a different one fails here, whichever of the two changes."""
    own = notebook.parent.name[:2]
    others = {path.parent.name[:2]: path for path in notebooks(SOLUTIONS)}
    wrong = []
    for index, cell in enumerate(executed_copy(notebook).cells):
        if cell.cell_type != "markdown":
            continue
        for number, sentence in attributed(cell.source, own):
            assert number in others, f"cell {index} quotes lesson {number}, which does not exist: {sentence!r}"
            other = executed_copy(others[number])
            inputs = _numbers("\n".join(c.source for c in other.cells if c.cell_type == "code"))
            results = _numbers(_outputs_text(other.cells))
            wrong += [f"cell {index}: {written!r} is not printed by lesson {number}: {' '.join(sentence.split())!r}"
                      for written, value, decimals, kind in quoted_numbers(sentence)
                      if not is_backed(value, decimals, kind, inputs, results)]
    assert not wrong, "numbers quoted as another lesson's that the other lesson does not print:\n" + "\n".join(wrong)


def test_a_sentence_names_the_lesson_it_quotes():
    text = "TRPO's step is lesson 02's: a KL of 0.0091. Four epochs of PPO end at 0.0086; lesson 04 trains it."
    assert attributed(text, "03") == [("02", "TRPO's step is lesson 02's: a KL of 0.0091.")], attributed(text, "03")
    assert attributed("Our lesson 03's numbers: 0.5.", "03") == [], "a lesson quoting itself is the test above's job"


def test_the_number_check_can_fail():
    inputs, results = [0.2, 100_000.0], [0.0213, 0.774, 2.204]
    assert is_backed(0.021, 3, "decimal", inputs, results), "0.021 (3 decimals) must be backed by the printed 0.0213"
    assert is_backed(77, 0, "percent", inputs, results), "77% must be backed by the printed 0.774"
    assert is_backed(2.2, 1, "ratio", inputs, results), "2.2x must be backed by the printed 2.204"
    assert is_backed(0.2, 1, "decimal", inputs, results), "0.2 must be backed by the input 0.2"          # an input
    assert not is_backed(0.17, 2, "decimal", inputs, results), (
        "0.17 is neither an input nor a printed result, so it must not be backed")
    assert not is_backed(15, 0, "percent", inputs, results), (
        "15% is neither an input nor a printed result, so it must not be backed")
    assert is_backed(0.02, 2, "decimal", inputs, results), (
        "0.02 (2 decimals) must be backed by the printed 0.0213")         # 0.0213, quoted to 2 decimals
    assert not is_backed(0.022, 3, "decimal", inputs, results), (
        "0.022 (3 decimals) is more than half a unit from the printed 0.0213, so it must not be backed")
