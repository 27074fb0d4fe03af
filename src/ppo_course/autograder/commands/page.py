"""The feedback page a student gets for one graded notebook: what the grader said, first; then the notebook.

The page is built here, not by nbconvert's notebook template, so that it says what a student needs on the
morning after the deadline, in this order:

1. the score, the grader's notes (``blank: no answer written``, a syntax error and its line, a repaired
   test cell, an answer dropped after it hung the kernel) and a table of the exercises: points and what
   happened (passed; a visible test failed, with its message; a hidden test failed; no answer written);
2. the notebook as graded: the lesson's text, each answer labelled as the student's answer, each test
   cell with its points and its failure, and the lesson's code that grading did not run folded under a
   label that says so (no ``In [ ]`` prompts, no figures that were never made); the setup cell's outputs
   (``Out[1]: <torch._C.Generator ...>``) are left out.

Everything from the submission is hostile: answers and outputs are shown as escaped text (an image only as
a PNG it really is), and the page forbids scripts and every request (a Content-Security-Policy), so nothing
in it runs or reaches a network. The maths of the lesson's text is rendered to MathML here (``latex2mathml``),
which browsers draw natively: no MathJax, no CDN, no script, a few hundred KB for a whole lesson, and a page
that reads the same offline, attached in an LMS or opened from a disk. Hidden tests are removed by
nbgrader's own ClearHiddenTests before anything is rendered (and ``feedback`` checks the result again).
"""
from __future__ import annotations

import base64
import binascii
import functools
import html
import re

import nbformat

from ..grading.contract import (
    is_answer_cell,
    is_manual_cell,
    is_setup_cell,
    is_test_cell,
    nbgrader_meta,
    read_notebook_contract,
)

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-_]")
CODE_SPANS = re.compile(r"```.*?```|`[^`\n]*`", re.S)
MATH = re.compile(r"\$\$(.+?)\$\$|(?<![\\$])\$(?!\$)(.+?)(?<![\\$])\$", re.S)
TOKEN = re.compile(r"MATHTOKEN(\d+)ZZ")
PNG = b"\x89PNG\r\n\x1a\n"
MAX_IMAGE_BYTES = 2 * 2**20
STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 1rem auto; padding: 0 1rem; color: #1b1b1b; }
h1 { font-size: 1.6rem; } table { border-collapse: collapse; } td, th { padding: .25rem .6rem; text-align: left;
  vertical-align: top; border-bottom: 1px solid #ddd; }
#summary { border: 2px solid #3a6fb0; border-radius: 6px; padding: .5rem 1rem 1rem; margin-bottom: 2rem; }
.score { font-size: 1.3rem; font-weight: 600; } .notes li { margin: .2rem 0; }
.full { color: #1f7a1f; } .partial { color: #9a6700; } .zero { color: #b3261e; }
pre { background: #f6f8fa; padding: .6rem; overflow-x: auto; white-space: pre-wrap; margin: .3rem 0; }
.answer, .tests, .setup, .ran { border-left: 4px solid #3a6fb0; padding-left: .8rem; margin: 1rem 0; }
.tests { border-color: #888; } .label { font-weight: 600; display: block; }
.output { background: #fff; border: 1px solid #eee; } .error { background: #fdecea; border: 1px solid #f5c2bd; }
details.not-run { margin: .4rem 0; color: #555; } details.not-run > summary { cursor: pointer; font-size: .9rem; }
.banner { border: 2px solid #d2413a; padding: .5rem; margin: 1rem 0; }
"""


@functools.lru_cache(maxsize=4096)
def mathml(tex: str, display: bool) -> str:
    """TeX as MathML (drawn by the browser itself); the TeX as code where it cannot be converted."""
    from latex2mathml.converter import convert

    try:
        return convert(tex.strip(), display="block" if display else "inline")
    except Exception:  # noqa: BLE001 - one odd formula must not cost the page: show its source
        return f"<code>{html.escape(tex)}</code>"


def markdown_html(source: str) -> str:
    """The course's markdown as HTML, its maths as MathML, and no image that would need a network."""
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    formulas: list[tuple[str, bool]] = []

    def protect(match: re.Match) -> str:
        formulas.append((match.group(1) or match.group(2), match.group(1) is not None))
        return f"MATHTOKEN{len(formulas) - 1}ZZ"

    parts, last = [], 0
    for code in CODE_SPANS.finditer(source):   # no maths inside code
        parts += [MATH.sub(protect, source[last:code.start()]), code.group(0)]
        last = code.end()
    parts.append(MATH.sub(protect, source[last:]))
    rendered = markdown2html_mistune("".join(parts))
    rendered = re.sub(r"<script\b.*?</script>|<iframe\b.*?</iframe>", "", rendered, flags=re.S | re.I)
    rendered = re.sub(r"<img\b[^>]*?alt=\"([^\"]*)\"[^>]*>|<img\b[^>]*>",
                      lambda m: html.escape(m.group(1) or "") if not re.search(r'src="data:', m.group(0))
                      else m.group(0), rendered)
    rendered = re.sub(r"<[^>]*>", lambda m: TOKEN.sub("", m.group(0)), rendered)   # (a heading's anchor id)
    return TOKEN.sub(lambda m: mathml(*formulas[int(m.group(1))]), rendered)


def code_html(source: str) -> str:
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    return highlight(source, PythonLexer(), HtmlFormatter(nowrap=True)).join(("<pre><code>", "</code></pre>"))


def text_block(text: str, kind: str = "output") -> str:
    return f"<pre class='{kind}'>{html.escape(ANSI.sub('', text))}</pre>"


def outputs_html(outputs: list, keep_results: bool = True) -> str:
    """A cell's outputs as plain text (and PNG images): never the submission's HTML, SVG or scripts."""
    shown = []
    for output in outputs:
        kind = output.get("output_type")
        if kind == "stream":
            shown.append(text_block(str(output.get("text", ""))))
        elif kind == "error":
            shown.append(text_block(f"{output.get('ename', 'Error')}: {output.get('evalue', '')}", "error"))
        elif kind in ("execute_result", "display_data") and keep_results:
            data = output.get("data", {})
            image = _png(data.get("image/png"))
            if image:
                shown.append(f"<img alt='a figure your code drew' src='data:image/png;base64,{image}'>")
            elif "text/plain" in data:
                plain = data["text/plain"]
                shown.append(text_block("".join(plain) if isinstance(plain, list) else str(plain)))
    return "".join(shown)


def _png(value) -> str | None:
    if not isinstance(value, str) or len(value) > MAX_IMAGE_BYTES * 4 // 3 + 4:
        return None
    try:
        raw = base64.b64decode(value, validate=False)
    except (binascii.Error, ValueError):
        return None
    return base64.b64encode(raw).decode() if raw.startswith(PNG) else None


def first_line(text: str, limit: int = 300) -> str:
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return line if len(line) <= limit else line[: limit - 1] + "…"


def exercise_rows(nb, record: dict, notebook: str) -> list[dict]:
    """Per exercise of this notebook: its points, its maximum and what happened to it, from the graded cells."""
    contract = read_notebook_contract(nb, notebook)
    cells = {nbgrader_meta(c).get("grade_id"): c for c in nb.cells}
    notes = " ".join(record.get("notes", []))
    rows = []
    for exercise in contract.exercises:
        tests = [cells[t] for t in exercise.test_ids if t in cells]
        points = sum(record.get("scores", {}).get(t) or 0 for t in exercise.test_ids)
        failures = [o for c in tests for o in c.get("outputs", []) if o.get("output_type") == "error"]
        syntax = record.get("syntax_errors", {}).get(exercise.answer_id)
        if syntax:
            what = f"syntax error on line {syntax['line']}: {syntax['message']}"
        elif "blank: no answer written" in notes or f"no answer to {exercise.answer_id}" in notes:
            what = "no answer written"
        elif f"graded again without {exercise.answer_id} (" in notes:
            what = "not graded: your answer stopped the grading (see the note above)"
        elif not failures and points >= exercise.points:
            what = "passed"
        elif failures:
            message = first_line(str(failures[0].get("evalue", "")))
            what = message if message.startswith(("a hidden test failed", "a visible test failed")) else (
                f"a visible test failed: {message}")
        else:
            what = "not scored"
        rows.append({"exercise": exercise.answer_id, "points": points, "max": exercise.points, "what": what})
    return rows


def _points(value: float) -> str:
    return f"{value:g}"


def _grade_class(points: float, maximum: float) -> str:
    return "full" if points >= maximum else "partial" if points > 0 else "zero"


def summary_html(assignment: str, record: dict, rows: list[dict], banner: str) -> str:
    total, maximum = record.get("total", 0), record.get("max", 0)
    notes = [note for note in record.get("notes", []) if note]
    table = "".join(
        f"<tr><td><a href='#answer-{html.escape(r['exercise'])}'>{html.escape(r['exercise'])}</a></td>"
        f"<td class='{_grade_class(r['points'], r['max'])}'>{_points(r['points'])} / {_points(r['max'])}</td>"
        f"<td>{html.escape(r['what'])}</td></tr>" for r in rows)
    parts = ["<section id='summary'><h2>Your score</h2>",
             f"<p class='score {_grade_class(total, maximum)}'>Score: {_points(total)} / {_points(maximum)}</p>"]
    if banner:
        parts.append(f"<p class='banner'>{html.escape(banner)}</p>")
    if notes:
        parts.append("<h3>The grader's notes</h3><ul class='notes'>"
                     + "".join(f"<li>{html.escape(note)}</li>" for note in notes) + "</ul>")
    if rows:
        parts.append("<h3>Each exercise</h3><table><thead><tr><th>exercise</th><th>points</th><th>what happened</th>"
                     f"</tr></thead><tbody>{table}</tbody></table>")
    parts.append("<p>Below: your notebook as it was graded. Your answers and the tests that scored them are "
                 "shown; the lesson's other code was not run while grading and is folded.</p></section>")
    return "".join(parts)


def cells_html(nb, rows: list[dict]) -> str:
    exercise_of = {t: e.answer_id for e in read_notebook_contract(nb, "").exercises for t in e.test_ids}
    by_exercise = {r["exercise"]: r for r in rows}
    parts = []
    for cell in nb.cells:
        meta = nbgrader_meta(cell)
        grade_id = meta.get("grade_id", "")
        if cell.cell_type == "markdown":
            if is_manual_cell(cell):   # written by the student: shown as text, never as their HTML
                parts.append(f"<section class='answer'><span class='label'>Your answer: {html.escape(grade_id)} "
                             f"(graded by a person)</span>{text_block(cell.source, 'answer-text')}</section>")
            else:
                parts.append(markdown_html(cell.source))
        elif cell.cell_type != "code":
            continue
        elif is_answer_cell(cell) or is_manual_cell(cell):
            row = by_exercise.get(grade_id)
            stub = row is not None and row["what"] == "no answer written"
            badge = (" (graded by a person)" if row is None else f" ({_points(row['points'])} / {_points(row['max'])} "
                     f"points{': no answer written, this is the released stub' if stub else ''})")
            parts.append(f"<section class='answer' id='answer-{html.escape(grade_id)}'><span class='label'>"
                         f"Your answer: {html.escape(grade_id)}{badge}</span>{code_html(cell.source)}"
                         f"{outputs_html(cell.get('outputs', []))}</section>")
        elif is_test_cell(cell):
            exercise = exercise_of.get(grade_id, grade_id)
            score = meta.get("points", 0)
            parts.append(f"<section class='tests'><span class='label'>Tests of {html.escape(exercise)} "
                         f"({html.escape(grade_id)}, worth {_points(float(score))} points)</span>"
                         f"{code_html(cell.source)}{outputs_html(cell.get('outputs', []), keep_results=False)}"
                         "</section>")
        elif is_setup_cell(cell):
            errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
            parts.append("<details class='setup'><summary>The lesson's setup cell (its imports: run while grading)"
                         f"</summary>{code_html(cell.source)}</details>{outputs_html(errors)}")
        elif cell.get("execution_count") and cell.get("outputs"):   # a course that runs its teaching cells
            parts.append(f"<section class='ran'><span class='label'>Lesson code (run while grading)</span>"
                         f"{code_html(cell.source)}{outputs_html(cell.get('outputs', []))}</section>")
        else:
            parts.append("<details class='not-run'><summary>Lesson code: not run while grading (run the lesson "
                          f"to see what it shows)</summary>{code_html(cell.source)}</details>")
    return "\n".join(parts)


def feedback_page(nb: nbformat.NotebookNode, notebook: str, record: dict, banner: str = "") -> str:
    """The page of one graded notebook (its hidden tests already removed: ``without_hidden_tests``)."""
    assignment = record.get("lesson", "")
    rows = exercise_rows(nb, record, notebook)
    title = f"{assignment}: your feedback"
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
            f"<h1>{html.escape(title)}</h1>{summary_html(assignment, record, rows, banner)}"
            f"<main>{cells_html(nb, rows)}</main></body></html>")


def without_hidden_tests(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The graded notebook as the learner may see it: nbgrader's ClearHiddenTests, and failed tests without their
    tracebacks (which quote the test's code)."""
    from nbgrader.preprocessors import ClearHiddenTests

    from ..grading.preprocessors import TrimTracebacks

    nb, _ = ClearHiddenTests().preprocess(nb, {})
    nb, _ = TrimTracebacks().preprocess(nb, {})
    return nb
