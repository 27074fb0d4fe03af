"""The class report as one HTML page that works offline and that no submission can write into.

Everything a submission controls (student ids and names, file names, messages, code) is escaped with
``html.escape`` and capped in length before it reaches the page. The page carries its own style, its
plots as PNG data URIs (matplotlib, Agg) and one small script that sorts a table when its header is
clicked; a Content-Security-Policy allows that script (by its hash), inline style and data: images, and
nothing else, so even a slip in escaping could neither run script nor fetch anything. Without the script
every table is already in its most useful order and everything else works the same.
"""
from __future__ import annotations

import base64
import hashlib
import html
import io
import unicodedata
import warnings

from .report_data import FULL, NO_ANSWER, NOT_GRADED, OUTCOMES, PARTIAL, ZERO, AssignmentReport, Submission

MAX_CODE_CHARS = 6_000     # of one answer shown side by side
PAIRS_LISTED = 30          # pairs in the page's table (similar.csv has every pair over the report's minimum)
PAIRS_SHOWN = 10           # pairs with their answers side by side
MISTAKES_PLOTTED = 8
COLOURS = {FULL: "#2a9d55", PARTIAL: "#e9a23b", ZERO: "#d2413a", NO_ANSWER: "#9e9e9e", NOT_GRADED: "#7b61c9"}
STYLE = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d1d1f;background:#fff}
header,main,footer{max-width:1180px;margin:0 auto;padding:0 20px}
header{border-bottom:1px solid #ddd;padding-bottom:8px}
h1{margin:18px 0 4px}h2{margin-top:36px;border-bottom:2px solid #1d1d1f}h3{margin-top:28px}
.lead{font-size:17px}.muted{color:#666}
table{border-collapse:collapse;margin:8px 0 16px;font-size:14px}
th,td{border-bottom:1px solid #e3e3e3;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f6}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
table.sortable th{cursor:pointer}th[aria-sort=ascending]::after{content:" \\25B2"}
th[aria-sort=descending]::after{content:" \\25BC"}
.bar{display:inline-block;height:10px;background:#4c72b0;vertical-align:middle;margin-left:6px}
.mistake{max-width:640px;overflow-wrap:anywhere}
figure{margin:8px 0}img{max-width:100%;height:auto}
.side{display:grid;grid-template-columns:1fr 1fr;gap:10px}
pre{background:#f7f7f9;border:1px solid #e3e3e3;padding:8px;overflow:auto;font-size:13px;margin:4px 0;
white-space:pre-wrap;overflow-wrap:anywhere}
details{margin:4px 0}summary{cursor:pointer}
.who{overflow-wrap:anywhere;max-width:560px}
nav a{margin-right:14px}
"""
SORT_SCRIPT = """
(function () {
  function key(cell) {
    var value = cell.getAttribute("data-sort");
    return value === null ? cell.textContent.trim().toLowerCase() : parseFloat(value);
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var headers = table.querySelectorAll("thead th");
    headers.forEach(function (th, column) {
      th.tabIndex = 0;
      th.title = "sort by this column";
      function sort() {
        var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
        var descending = th.getAttribute("aria-sort") !== "descending";
        rows.sort(function (a, b) {
          var x = key(a.cells[column]), y = key(b.cells[column]);
          return (x < y ? -1 : x > y ? 1 : 0) * (descending ? -1 : 1);
        });
        headers.forEach(function (other) { other.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", descending ? "descending" : "ascending");
        rows.forEach(function (row) { body.appendChild(row); });
      }
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (event) {
        if (event.key === "Enter" || event.key === " ") { event.preventDefault(); sort(); }
      });
    });
  });
})();
"""


def e(text) -> str:
    return html.escape(str(text), quote=True)


def percent(part: float, whole: float) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "–"


def bar(part: float, whole: float) -> str:
    width = 0 if not whole else round(100 * part / whole)
    return f'<span class="bar" style="width:{width}px" aria-hidden="true"></span>'


def shortened(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def who(submission: Submission) -> str:
    return f"{submission.student} ({submission.name})" if submission.name else submission.student


# ------------------------------------------------------------------ plots

def png(figure) -> str:
    buffer = io.BytesIO()
    with warnings.catch_warnings():   # (a glyph a message uses that the font lacks is drawn as a box, silently)
        warnings.simplefilter("ignore")
        figure.savefig(buffer, format="png", dpi=96)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def new_figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def image(uri: str, alt: str) -> str:
    return f'<figure><img src="{uri}" alt="{e(alt)}"></figure>'


def score_plot(report: AssignmentReport) -> str:
    import numpy as np

    figure = new_figure(7, 3)
    axes = figure.subplots()
    points = [s.points for s in report.submissions]
    top = report.max or max(points, default=1) or 1
    whole = float(top).is_integer() and top <= 30 and all(float(p).is_integer() for p in points)
    edges = np.arange(-0.5, top + 1) if whole else np.linspace(0, top, 21)   # (a bar per point where points are whole)
    axes.hist(points, bins=edges, color="#4c72b0", edgecolor="white")
    axes.set_title(f"{report.assignment}: autograded points of the {report.students} students", parse_math=False)
    axes.set_xlabel(f"points (of {top:g})")
    axes.set_ylabel("students")
    axes.yaxis.get_major_locator().set_params(integer=True)
    return image(png(figure), f"histogram of the autograded points of {report.assignment}")


def exercise_plot(report: AssignmentReport) -> str:
    figure = new_figure(7, 1.1 + 0.45 * len(report.exercises))
    axes = figure.subplots()
    names = [x["exercise"] for x in report.exercises][::-1]
    left = [0.0] * len(names)
    for outcome in OUTCOMES:
        shares = [100 * x[outcome] / report.students if report.students else 0 for x in report.exercises][::-1]
        if any(shares):
            axes.barh(range(len(names)), shares, left=left, color=COLOURS[outcome], label=outcome)
            left = [a + b for a, b in zip(left, shares)]
    axes.set_yticks(range(len(names)), names, parse_math=False)
    axes.set_xlim(0, 100)
    axes.set_xlabel("share of the class (%)")
    axes.set_title(f"{report.assignment}: each exercise's outcome", parse_math=False)
    figure.legend(loc="outside lower center", ncols=len(OUTCOMES), frameon=False)
    return image(png(figure), f"stacked bars: the share of students with each outcome, per exercise of "
                              f"{report.assignment}")


def mistakes_plot(exercise: str, mistakes: list[dict], students: int) -> str:
    shown = mistakes[:MISTAKES_PLOTTED][::-1]
    figure = new_figure(7.5, 0.7 + 0.38 * len(shown))
    axes = figure.subplots()
    counts = [m["count"] for m in shown]
    axes.barh(range(len(shown)), counts, color="#d2413a")
    labels = [f"#{m['number']} {shortened(m['label'], 54)}" for m in shown]
    axes.set_yticks(range(len(shown)), labels, parse_math=False, fontsize=8)
    axes.set_xlabel(f"students (of {students})")
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.set_title(f"{exercise}: the mistakes made" + (f" (the {MISTAKES_PLOTTED} most common)"
                                                        if len(mistakes) > MISTAKES_PLOTTED else ""),
                   parse_math=False)
    return image(png(figure), f"bars: how many students made each mistake in {exercise}")


def time_plot(report: AssignmentReport) -> str:
    figure = new_figure(7, 2.6)
    axes = figure.subplots()
    axes.hist([s.seconds for s in report.submissions if s.seconds is not None], bins=20, color="#4c72b0",
              edgecolor="white")
    axes.set_title(f"{report.assignment}: grading time per submission", parse_math=False)
    axes.set_xlabel("seconds (one grading; a dropped answer's retries included)")
    axes.set_ylabel("submissions")
    axes.yaxis.get_major_locator().set_params(integer=True)
    return image(png(figure), f"histogram of the grading time per submission of {report.assignment}")


# ------------------------------------------------------------------ sections

def anchor(assignment: str, part: str = "") -> str:
    return "a-" + "".join(c if c.isalnum() else "-" for c in assignment) + (f"-{part}" if part else "")


def lead(report: AssignmentReport) -> str:
    flagged = ("review", "manual grading pending")
    statuses = ", ".join(f"{n} {status}" for status, n in sorted(report.statuses.items(), key=lambda sn: -sn[1])
                         if status not in flagged)
    statuses += "".join(f"; {report.statuses[f]} {'flagged for review' if f == 'review' else 'awaiting manual grading'}"
                        for f in flagged if report.statuses.get(f))
    points = sorted(s.points for s in report.submissions)
    median = points[len(points) // 2] if points else 0
    top = max(report.mistakes, key=lambda m: m["count"], default=None)
    common = (f" The most common mistake, in <b>{e(top['exercise'])}</b>: “{e(shortened(top['label'], 160))}” "
              f"({top['count']} students, {percent(top['count'], report.students)} of the class)." if top else "")
    full = sum(s.points >= report.max for s in report.submissions) if report.max else 0
    return (f'<p class="lead">{report.students} students ({e(statuses)}); median {median:g} of {report.max:g} '
            f"points, {full} with full marks.{common}</p>")


def share_cell(part: int, whole: int, text: str = "") -> str:
    """A table cell: a count, its share of ``whole`` and a bar of that length (sorted by the count)."""
    shown = text or f"{part} ({percent(part, whole)})"
    return f"<td class=n data-sort='{part / whole if whole else 0:.4f}'>{shown}{bar(part, whole)}</td>"


def exercises_section(report: AssignmentReport) -> str:
    rows = "".join(f"<tr><td>{e(x['exercise'])}</td><td class=n>{x['points']:g}</td>"
                   + "".join(share_cell(x[o], report.students) for o in OUTCOMES) + "</tr>" for x in report.exercises)
    tests = "".join(f"<tr><td>{e(t['test'])}</td><td>{e(t['exercise'])}</td><td class=n>{t['points']:g}</td>"
                    + share_cell(t["passed"], t["graded"],
                                 f"{t['passed']} of {t['graded']} ({percent(t['passed'], t['graded'])})") + "</tr>"
                    for t in report.tests)
    graded = report.tests[0]["graded"] if report.tests else 0
    head = "".join(f"<th class=n>{o}</th>" for o in OUTCOMES)
    return (f'<h3 id="{anchor(report.assignment, "exercises")}">Exercises</h3>'
            f"<p>Of the {report.students} students: full marks, some of the points, none, no answer (the answer cell "
            "left as released, or nothing readable handed in) and not graded (the grader failed: regrade).</p>"
            + exercise_plot(report)
            + f'<table class="sortable"><thead><tr><th>exercise</th><th class=n>points</th>{head}</tr></thead>'
            f"<tbody>{rows}</tbody></table>"
            f"<h4>Test cells</h4><p>Passed by how many of the {graded} graded submissions.</p>"
            '<table class="sortable"><thead><tr><th>test cell</th><th>exercise</th><th class=n>points</th>'
            f"<th class=n>passed</th></tr></thead><tbody>{tests}</tbody></table>")


def students_list(students: list[str], by_id: dict[str, Submission]) -> str:
    names = ", ".join(e(who(by_id[s])) if s in by_id else e(s) for s in students)
    if len(students) <= 8:
        return f'<span class="who">{names}</span>'
    return f'<details><summary>{len(students)} students</summary><div class="who">{names}</div></details>'


def mistakes_section(report: AssignmentReport) -> str:
    by_id = {s.student: s for s in report.submissions}
    parts = [f'<h3 id="{anchor(report.assignment, "mistakes")}">What the class got wrong</h3>'
             "<p>Each failing answer is named by the message of the first check it failed (a visible one where "
             "any failed: the course's hint); answers whose messages differ only in their values are one mistake. "
             "A hidden check's failure shows only its author's words, never its values.</p>"]
    for exercise in report.exercises:
        name = exercise["exercise"]
        mistakes = [m for m in report.mistakes if m["exercise"] == name]
        parts.append(f"<h4>{e(name)}</h4>")
        if not mistakes:
            parts.append("<p>No failing answer.</p>")
            continue
        parts.append(mistakes_plot(name, mistakes, report.students))
        rows = "".join(
            f"<tr><td class=n data-sort='{m['number']}'>#{m['number']}</td><td class='mistake'>{e(m['label'])}</td>"
            f"<td class=n data-sort='{m['count']}'>{m['count']} ({percent(m['count'], report.students)})"
            f"{bar(m['count'], report.students)}</td><td>{e(m['test'])}</td>"
            f"<td>{students_list(m['students'], by_id)}</td></tr>" for m in mistakes)
        parts.append('<table class="sortable"><thead><tr><th class=n>#</th><th>mistake (the message)</th>'
                     "<th class=n>students (of the class)</th><th>test cell</th><th>who</th></tr></thead>"
                     f"<tbody>{rows}</tbody></table>")
    return "".join(parts)


def flags(submission: Submission) -> list[str]:
    return ([submission.status] if submission.status != "graded" else []) + (["review"] if submission.review else [])


def attention_section(report: AssignmentReport) -> str:
    counts = "".join(f"<tr><td>{e(status)}</td><td class=n>{n}</td></tr>"
                     for status, n in sorted(report.statuses.items(), key=lambda sn: -sn[1]))
    flagged = [s for s in report.submissions if s.status != "graded" or s.review]
    rows = "".join(f"<tr><td>{e(who(s))}</td><td>{e(', '.join(flags(s)))}</td>"
                   f"<td>{e('; '.join(filter(None, [s.message, *s.review])))}</td></tr>" for s in flagged)
    skipped = "".join(f"<tr><td>{e(f['student'])}</td><td>{e(f['entry'])}</td><td>{e(f['why'])}</td></tr>"
                      for f in report.skipped)
    waiting = (f"<p>Not graded yet ({len(report.waiting)}): {e(', '.join(report.waiting))}. "
               "Run <code>grade</code>.</p>" if report.waiting else "")
    return (f'<h3 id="{anchor(report.assignment, "attention")}">Submissions that need a look</h3>'
            f"<table><thead><tr><th>status</th><th class=n>students</th></tr></thead><tbody>{counts}</tbody></table>"
            + (f'<table class="sortable"><thead><tr><th>student</th><th>status</th><th>why</th></tr></thead>'
               f"<tbody>{rows}</tbody></table>" if rows else "<p>Every submission was graded; none is flagged.</p>")
            + (f"<h4>Files collect refused ({len(report.skipped)})</h4>"
               f'<table class="sortable"><thead><tr><th>student</th><th>file</th><th>why</th></tr></thead>'
               f"<tbody>{skipped}</tbody></table>" if report.skipped else "")
            + waiting)


def time_section(report: AssignmentReport) -> str:
    seconds = report.seconds
    if not seconds.get("count"):
        return f'<h3 id="{anchor(report.assignment, "time")}">Grading time</h3><p>No timed grading.</p>'
    slowest = sorted((s for s in report.submissions if s.seconds is not None), key=lambda s: -s.seconds)[:5]
    return (f'<h3 id="{anchor(report.assignment, "time")}">Grading time</h3>'
            f"<p>{seconds['count']} submissions: median {seconds['median']:g} s, 90% within {seconds['p90']:g} s, "
            f"the longest {seconds['max']:g} s; {seconds['total']:g} s of grading in all. The slowest: "
            + ", ".join(f"{e(who(s))} {s.seconds:g} s" for s in slowest) + ".</p>" + time_plot(report))


def code_block(code: str) -> str:
    """An answer as text: escaped, capped, and every invisible or bidirectional character shown as an escape
    (so code cannot look other than it runs, as in "Trojan Source")."""
    if len(code) > MAX_CODE_CHARS:
        code = code[:MAX_CODE_CHARS] + f"\n… ({len(code) - MAX_CODE_CHARS} more characters)"
    code = "".join(c if c in "\n\t" or unicodedata.category(c) not in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")
                   else f"\\u{ord(c):04x}" for c in code)
    return f"<pre>{e(code)}</pre>"


def similar_section(report: AssignmentReport) -> str:
    by_id = {s.student: s for s in report.submissions}
    head = (f'<h3 id="{anchor(report.assignment, "similar")}">Similar submissions</h3>'
            "<p>Pairs of students whose answers share code that few others wrote, once comments, docstrings, layout, "
            "the names they chose and the order of independent statements are set aside and the released stub is "
            "taken away. <b>score</b>: the tokens they share, each weighted by how rare it is in the class (1 when "
            "only "
            "these two wrote it, 0 when everyone did), the smaller side's; <b>share</b>: how much of each one's own "
            "code the other has. A high score is a reason to look, not a verdict: compare the answers below.</p>")
    if not report.pairs:
        return head + "<p>No pair shares enough uncommon code to list.</p>"
    rows = "".join(
        f"<tr><td class=n data-sort='{p.score}'><a href='#{anchor(report.assignment, f'pair-{i}')}'>{p.score:g}</a>"
        "</td>"
        f"<td>{e(who(by_id[p.first]))}</td><td>{e(who(by_id[p.second]))}</td>"
        f"<td class=n data-sort='{p.shares[0]:.4f}'>{percent(p.shares[0], 1)}</td>"
        f"<td class=n data-sort='{p.shares[1]:.4f}'>{percent(p.shares[1], 1)}</td>"
        f"<td>{e(', '.join(p.exercises))}</td></tr>" for i, p in enumerate(report.pairs[:PAIRS_LISTED], start=1))
    sides = []
    for i, pair in enumerate(report.pairs[:PAIRS_SHOWN], start=1):
        first, second = by_id[pair.first], by_id[pair.second]
        blocks = "".join(
            f"<h5>{e(exercise)}: {percent(a, 1)} / {percent(b, 1)} shared</h5><div class='side'>"
            f"{code_block(first.answers.get(exercise, ''))}{code_block(second.answers.get(exercise, ''))}</div>"
            for exercise, (a, b) in pair.exercises.items())
        sides.append(f"<details id='{anchor(report.assignment, f'pair-{i}')}'{' open' if i <= 3 else ''}><summary>"
                     f"#{i}: {e(who(first))} and {e(who(second))}, score {pair.score:g}</summary>{blocks}</details>")
    return (head + '<table class="sortable"><thead><tr><th class=n>score</th><th>student A</th><th>student B</th>'
            "<th class=n>share of A</th><th class=n>share of B</th><th>exercises</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>"
            + (f"<p>The first {PAIRS_LISTED} of {len(report.pairs)} pairs; similar.csv has them all.</p>"
               if len(report.pairs) > PAIRS_LISTED else "")
            + f"<h4>Side by side (the first {min(PAIRS_SHOWN, len(report.pairs))})</h4>" + "".join(sides))


def outcome_cell(submission: Submission, exercise: str) -> str:
    mistake = f" #{submission.mistakes[exercise]}" if exercise in submission.mistakes else ""
    return f"<td>{e(submission.outcomes.get(exercise, ''))}{mistake}</td>"


def students_section(report: AssignmentReport) -> str:
    exercises = [x["exercise"] for x in report.exercises]
    rows = "".join(
        f"<tr><td>{e(s.student)}</td><td>{e(s.name)}</td><td>{e(s.status)}</td>"
        f"<td class=n data-sort='{s.points}'>{s.points:g}</td>"
        f"<td class=n data-sort='{-1 if s.seconds is None else s.seconds}'>"
        f"{'' if s.seconds is None else f'{s.seconds:g}'}</td>" + "".join(outcome_cell(s, x) for x in exercises)
        + "</tr>" for s in report.submissions)
    head = "".join(f"<th>{e(x)}</th>" for x in exercises)
    return (f'<h3 id="{anchor(report.assignment, "students")}">Every student</h3><details><summary>'
            f"{report.students} rows (outcome per exercise; #n is the mistake of that number above)</summary>"
            '<table class="sortable"><thead><tr><th>student</th><th>name</th><th>status</th><th class=n>points</th>'
            f"<th class=n>seconds</th>{head}</tr></thead><tbody>{rows}</tbody></table></details>")


def assignment_section(report: AssignmentReport) -> str:
    if not report.submissions:
        return (f'<section id="{anchor(report.assignment)}"><h2>{e(report.assignment)}</h2>'
                "<p>Nothing graded.</p></section>")
    return (f'<section id="{anchor(report.assignment)}"><h2>{e(report.assignment)}</h2>' + lead(report)
            + f'<h3 id="{anchor(report.assignment, "scores")}">Scores</h3>' + score_plot(report)
            + exercises_section(report) + mistakes_section(report) + attention_section(report)
            + time_section(report) + similar_section(report) + students_section(report) + "</section>")


def page(reports: list[AssignmentReport], course: str, generated: str) -> str:
    """The whole page."""
    script_hash = base64.b64encode(hashlib.sha256(SORT_SCRIPT.encode()).digest()).decode()
    policy = (f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'sha256-{script_hash}'; "
              "base-uri 'none'; form-action 'none'")
    nav = "".join(f'<a href="#{anchor(r.assignment)}">{e(r.assignment)}</a>' for r in reports)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{policy}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">'
            f"<title>Class report: {e(course)}</title><style>{STYLE}</style></head><body>"
            f"<header><h1>Class report: {e(course)}</h1><p class='muted'>Generated {e(generated)} by "
            "<code>python -m ppo_course.autograder report</code> from the graded results "
            "(<code>autograded/*/*/result.json</code>, the graded notebooks, <code>collected.csv</code>); "
            "the same numbers are in report.json and the CSV files beside this page.</p>"
            f"<nav>{nav}</nav></header><main>" + "".join(assignment_section(r) for r in reports)
            + "</main><footer><p class='muted'>Click a column's header to sort a table.</p></footer>"
            f"<script>{SORT_SCRIPT}</script></body></html>")
