"""Feedback worth sending: the page each student gets, for a blank, a partial, a syntax-error and a full
submission of lesson 03, graded through the command line as an instructor runs it, then read in headless
Chromium (offline: every request that is not a file of the page is refused and counted).

What each page must do: say the grader's notes and each exercise's score at the top; name the answers as
the student's answers; fold and label the lesson's code that was not run while grading; show no stray
output (``Out[1]: <torch._C.Generator ...>``); render the maths without a network; show nothing of the
hidden tests; and, for a syntax error, say so with its line (so must result.json, the grade summary and the
gradebook's comment).
"""
from __future__ import annotations

import contextlib
import csv
import html
import io
import json
import os
import re
import shutil

import nbformat
import pytest

from ppo_course.autograder.commands.cli import main
from ppo_course.autograder.commands.feedback import MAX_PAGE_CHARS

from browser_helpers import chromium_page, require_browser
from conftest import RELEASE_CACHE
from grading_helpers import hidden_test_lines, solution_answers, submission, with_edit

pytestmark = pytest.mark.slow   # grades four submissions in the sandbox, then reads their pages in Chromium

LESSON = "03-clipped-surrogate"
BROKEN_LINE = "    return torch.minimum(ratio * adv, torch.clamp(ratio, 1 - eps, 1 + eps) * adv"   # no closing )


def syntax_error_answers() -> dict[str, str]:
    answers = solution_answers(LESSON)
    body = answers["clipped_surrogate"]
    lines = body.splitlines()
    index = max(i for i, line in enumerate(lines) if line.startswith("    return "))
    lines[index] = BROKEN_LINE
    return dict(answers, clipped_surrogate="\n".join(lines) + "\n")


def broken_line_number() -> int:
    return next(i for i, line in enumerate(syntax_error_answers()["clipped_surrogate"].splitlines(), 1)
                if line == BROKEN_LINE)


SUBMISSIONS = {   # student -> answers
    "blank": lambda: {},
    "partial": lambda: with_edit(solution_answers(LESSON), "clipped_surrogate",
                                 lambda s: s.replace("torch.minimum", "torch.maximum")),
    "syntax": syntax_error_answers,
    "full": lambda: solution_answers(LESSON),
}


def run(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def graded(tmp_path_factory, sandbox):
    root = tmp_path_factory.mktemp("feedback")
    download = root / "download"
    for student, answers in SUBMISSIONS.items():
        (download / student).mkdir(parents=True)
        nbformat.write(submission(LESSON, answers()), download / student / f"{LESSON}.ipynb")
    course = root / "course"
    runs = {"collect": run("collect", download, "--course", course, "--lesson", "03"),
            "grade": run("grade", "--course", course, "--jobs", "2", "--cell-timeout", "20", "--no-progress",
                         "--release-cache", RELEASE_CACHE),
            "feedback": run("feedback", "--course", course, "--jobs", "2"),
            "export": run("export", "--course", course)}
    for name, (code, out, err) in runs.items():
        assert code == 0, f"{name} exited {code}:\n{out}\n{err}"
    yield {"course": course, "runs": runs}
    if not os.environ.get("KEEP_FEEDBACK"):
        shutil.rmtree(root, ignore_errors=True)


def record(graded, student: str) -> dict:
    return json.loads((graded["course"] / "autograded" / student / LESSON / "result.json").read_text())


def page_path(graded, student: str):
    return graded["course"] / "feedback" / student / LESSON / f"{LESSON}.html"


def test_scores_are_the_graders(graded):
    totals = {student: record(graded, student)["total"] for student in SUBMISSIONS}
    assert totals == {"blank": 0, "partial": 6, "syntax": 6, "full": 10}, totals


def test_a_syntax_error_is_reported_with_its_line_everywhere(graded):
    line = broken_line_number()
    errors = record(graded, "syntax")["syntax_errors"]
    assert errors["clipped_surrogate"]["line"] == line and "never closed" in errors["clipped_surrogate"]["message"], (
        f"result.json must say where the answer fails to parse: {errors}")
    said = f"clipped_surrogate: syntax error on line {line} of your answer"
    assert said in record(graded, "syntax")["notes"][0], record(graded, "syntax")["notes"]
    assert said in graded["runs"]["grade"][1], f"the grade summary must say it:\n{graded['runs']['grade'][1]}"
    with open(graded["course"] / "gradebook.csv", newline="") as handle:
        comment = next(row["comment"] for row in csv.DictReader(handle) if row["student_id"] == "syntax")
    assert said in comment, f"the gradebook's comment must say it: {comment!r}"
    assert said in visible_text(page_path(graded, "syntax").read_text()), "and the page"


def visible_text(page: str) -> str:
    page = re.sub(r"<(style|script|math)\b.*?</\1>", " ", page, flags=re.S | re.I)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def test_pages_hold_no_hidden_test_and_stay_bounded(graded):
    hidden = hidden_test_lines(LESSON)
    assert hidden
    for student in SUBMISSIONS:
        page = page_path(graded, student).read_text()
        assert len(page) <= MAX_PAGE_CHARS
        text = visible_text(page)
        assert [line for line in hidden if " ".join(line.split()) in text] == [], f"{student}: hidden test lines"
        assert "HIDDEN TESTS" not in page and "visible tests pass" not in page, (
            "no hidden-test marker, and the release's pass line is not part of the graded cells")


@pytest.fixture(scope="module")
def browser_pages(graded):
    """Each page as Chromium shows it: its text, headings, console errors, requests, and how maths rendered."""
    require_browser("feedback page tests")
    read = {}
    with chromium_page(width=1200, height=900) as page:
        requests, console = [], []

        def files_only(route):   # the page's own file is all it may load; anything else is refused and counted
            if route.request.url.startswith("file://"):
                route.continue_()
            else:
                requests.append(route.request.url)
                route.abort()

        page.route("**/*", files_only)
        page.on("console", lambda message: console.append(message.text) if message.type == "error" else None)
        for student in SUBMISSIONS:
            requests.clear(), console.clear(), page.errors.clear()
            page.goto(page_path(graded, student).as_uri())
            page.wait_for_load_state("load")
            read[student] = {
                "text": page.inner_text("body"),
                "summary": page.inner_text("#summary"),
                "rows": page.eval_on_selector_all("#summary tbody tr", "rows => rows.map(r => r.innerText)"),
                "answers": page.eval_on_selector_all(".answer > .label", "e => e.map(x => x.innerText)"),
                "folded": page.eval_on_selector_all("details.not-run > summary", "e => e.map(x => x.innerText)"),
                "open_folds": page.eval_on_selector_all("details.not-run[open]", "e => e.length"),
                "maths": page.eval_on_selector_all(
                    "math", "ms => ms.map(m => [m.getBoundingClientRect().width, m.getBoundingClientRect().height])"),
                "requests": list(requests),
                "errors": console + page.errors,
            }
            os.makedirs("test-artifacts/feedback", exist_ok=True)
            page.screenshot(path=f"test-artifacts/feedback/{student}.png", full_page=False)
    return read


@pytest.mark.parametrize("student", sorted(SUBMISSIONS))
def test_the_page_loads_offline_without_errors(browser_pages, student):
    shown = browser_pages[student]
    assert shown["requests"] == [], f"the page must need no network: {shown['requests']}"
    assert shown["errors"] == [], f"console errors: {shown['errors']}"


@pytest.mark.parametrize("student", sorted(SUBMISSIONS))
def test_the_maths_is_rendered(browser_pages, student):
    maths = browser_pages[student]["maths"]
    assert len(maths) > 50, "lesson 03's formulas are on the page as MathML"
    assert all(width > 0 and height > 0 for width, height in maths), "every formula is laid out by the browser"
    assert "\\frac" not in browser_pages[student]["text"] and "$" not in browser_pages[student]["text"], (
        "no raw TeX left for a reader")


@pytest.mark.parametrize("student, total, rows", [
    ("full", "10 / 10", ["clipped_surrogate 4 / 4 passed", "clip_is_active 3 / 3 passed",
                         "ppo_policy_loss 3 / 3 passed"]),
    ("partial", "6 / 10", ["clipped_surrogate 0 / 4 a visible test failed", "clip_is_active 3 / 3 passed",
                           "ppo_policy_loss 3 / 3 passed"]),
    ("blank", "0 / 10", ["clipped_surrogate 0 / 4 no answer written", "clip_is_active 0 / 3 no answer written",
                         "ppo_policy_loss 0 / 3 no answer written"]),
    ("syntax", "6 / 10", ["clipped_surrogate 0 / 4 syntax error on line", "clip_is_active 3 / 3 passed",
                          "ppo_policy_loss 3 / 3 passed"]),
])
def test_the_top_says_the_score_of_each_exercise(browser_pages, student, total, rows):
    shown = browser_pages[student]
    summary = " ".join(shown["summary"].split())
    assert f"Score: {total}" in summary, summary
    got = [" ".join(row.split()) for row in shown["rows"]]
    assert len(got) == len(rows) and all(g.startswith(r) for g, r in zip(got, rows)), got
    text = shown["text"]
    assert text.index("Score:") < text.index("Your answer"), "the scores come before the notebook"


def test_the_graders_notes_are_at_the_top(browser_pages):
    assert "blank: no answer written" in browser_pages["blank"]["summary"]
    line = broken_line_number()
    assert f"syntax error on line {line} of your answer" in browser_pages["syntax"]["summary"]
    assert "Took the max" not in browser_pages["partial"]["summary"]


def test_a_failed_visible_test_shows_its_hint(browser_pages):
    row = next(r for r in browser_pages["partial"]["rows"] if r.startswith("clipped_surrogate"))
    assert "min" in row.lower() or "L^CLIP" in row, f"the failing check's own message, first line: {row}"


@pytest.mark.parametrize("student", sorted(SUBMISSIONS))
def test_answers_are_named_and_unrun_code_folded(browser_pages, student):
    shown = browser_pages[student]
    assert [a.split(" (")[0] for a in shown["answers"]] == [
        "Your answer: clipped_surrogate", "Your answer: clip_is_active", "Your answer: ppo_policy_loss"], (
        shown["answers"])
    if student == "blank":
        assert all("no answer written" in a for a in shown["answers"]), shown["answers"]
    assert shown["folded"] and all("not run while grading" in label for label in shown["folded"])
    assert shown["open_folds"] == 0, "what was not run is folded"
    assert "In [ ]" not in shown["text"] and "torch._C.Generator" not in shown["text"], (
        "no unrun prompt, no stray output")
    assert "Comment" not in shown["text"].split("\n")[:40], "no table of contents of 'Comment' entries"
