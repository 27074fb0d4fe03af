"""Per-student HTML feedback: one page per graded notebook, without the hidden tests (``page`` builds it).

Stock ``nbgrader generate_feedback`` renders the autograded notebook as it ran, hidden tests and all, with
the lesson's code unrun and its maths loaded from a CDN. Here each page starts with what the grader said
(the score, the notes, each exercise's points and what happened) and then shows the notebook with nbgrader's
own ClearHiddenTests applied and failed tests reduced to their message (a traceback quotes the hidden
test's code); every page is then checked for hidden-test text and for its size before it is written. A
submission that could not be graded gets a short page that says why.
"""
from __future__ import annotations

import html
import json
import re
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nbformat

from ..errors import CourseError
from ..grading.hidden import BEGIN, END, visible_form
from ..grading.hidden import hidden_lines as hidden_line_numbers
from .folder import Course
from .page import feedback_page, without_hidden_tests

MAX_PAGE_CHARS = 8 * 2**20   # a feedback page's bound (see the instructor guide): no submission makes one larger
TAG = re.compile(r"<[^>]+>")


def normal(text: str) -> str:
    """Whitespace collapsed, so that a line wrapped or re-indented on the page is still found."""
    return " ".join(text.split())


def hidden_lines(notebook_path: Path) -> list[str]:
    """The lines of the hidden tests in an autograded notebook that nothing visible contains.

    A hidden line that is part of the notebook's visible text (a call a visible test makes too, say)
    reveals nothing; every other line of 12 characters or more must not appear on a feedback page.
    """
    cells = json.loads(notebook_path.read_text())["cells"]
    sources = ["".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in cells]
    shown = normal("\n".join(visible_form(source) for source in sources))
    hidden = []
    for source in sources:
        numbers = hidden_line_numbers(source)   # the grader's own reading of the hidden blocks
        hidden += [line.strip() for number, line in enumerate(source.splitlines(), start=1)
                   if number in numbers and BEGIN not in line and END not in line]
    return [line for line in hidden if len(line) > 12 and normal(line) not in shown]


def visible_text(page: str) -> str:
    """What a reader of the HTML sees: tags gone (code is split into highlighting spans), entities decoded."""
    return html.unescape(TAG.sub("", page))


def failure_page(record: dict) -> str:
    title = f"{record['lesson']}: not graded"
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
            f"<body><h1>{html.escape(title)}</h1><p>Score: 0 / {record['max']:g}</p>"
            f"<p>Your submission could not be graded: {html.escape(record['message'])}</p>"
            "<p>Fix this and hand it in again, or ask your instructor.</p></body></html>")


def scores_only_page(record: dict) -> str:
    """The page a student gets when the full page cannot be made safely: the scores, nothing else."""
    title = f"{record['lesson']}: your scores"
    rows = "".join(f"<tr><td>{html.escape(str(test))}</td><td>{'' if score is None else f'{score:g}'}</td></tr>"
                   for test, score in record.get("scores", {}).items())
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
            f"<body><h1>{html.escape(title)}</h1><p>Score: {record.get('total', 0):g} / {record['max']:g}</p>"
            f"<table><tr><th>test</th><th>points</th></tr>{rows}</table>"
            "<p>The detailed page could not be made; ask your instructor for it.</p></body></html>")


def feedback_one(course_root: str, student: str, assignment: str) -> tuple[str, str]:
    """Write feedback/<student>/<assignment>/<notebook>.html for each notebook; returns (student, outcome): the
    status, or "fallback: why" when only the scores page could be written."""
    course = Course(Path(course_root))
    record = json.loads(course.result_path(student, assignment).read_text())
    graded_dir = course.result_path(student, assignment).parent
    outcome, pages = record["status"], {}
    if record.get("scores") and any(graded_dir.glob("*.ipynb")):
        # an answer dropped after it killed or hung the kernel: say so above everything
        banner = (f"Your answer to {record['message']} It was graded as 0; the rest as usual."
                  if record["status"] != "graded" else "")
        try:
            pages = checked_pages(graded_dir, record, banner)
        except Exception as error:  # noqa: BLE001 - this student still gets their scores
            pages = {f"{assignment}.ipynb": scores_only_page(record)}
            outcome = f"fallback: {type(error).__name__}: {error}"
    else:
        pages = {f"{assignment}.ipynb": failure_page(record)}
    out = course.feedback / student / assignment
    out.mkdir(parents=True, exist_ok=True)
    for name, page in pages.items():
        (out / name.replace(".ipynb", ".html")).write_text(page)
    return student, outcome


def render(graded_dir: Path, record: dict, banner: str = "") -> dict[str, str]:
    """The page of each graded notebook of one submission, by notebook."""
    pages = {}
    for path in sorted(graded_dir.glob("*.ipynb")):
        notebook = without_hidden_tests(nbformat.read(path, as_version=4))
        pages[path.name] = feedback_page(notebook, path.name, record, banner)
    return pages


def checked_pages(graded_dir: Path, record: dict, banner: str = "") -> dict[str, str]:
    """The pages, refused (CourseError) if one is over the bound or any hidden test's text shows on it."""
    pages = render(graded_dir, record, banner)
    for name, page in pages.items():
        if len(page) > MAX_PAGE_CHARS:
            raise CourseError(f"the page of {name} would be {len(page) / 2**20:.1f} MB, over the "
                              f"{MAX_PAGE_CHARS / 2**20:g} MB bound")
        seen = normal(visible_text(page))
        leaked = [line for line in hidden_lines(graded_dir / name) if normal(line) in seen]
        if leaked or "HIDDEN TESTS" in seen:
            raise CourseError(f"the page of {name} would show hidden test code")
    return pages


def safe_feedback(course_root: str, student: str, lesson: str) -> tuple[str, str]:
    try:
        return feedback_one(course_root, student, lesson)
    except Exception as error:  # noqa: BLE001 - one student's page must not stop the others
        return student, f"error: {type(error).__name__}: {error}"


def feedback(course: Course, lessons: list[str], jobs: int) -> list[tuple[str, str, str]]:
    """Render every graded submission's feedback; returns (lesson, student, outcome) rows."""
    tasks = [(assignment, student) for assignment in lessons for student in course.results(assignment)]
    if not tasks:
        raise CourseError(f"nothing graded yet under {course.autograded} (run `grade` first)")
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [(lesson, pool.submit(safe_feedback, str(course.root), student, lesson)) for lesson, student in tasks]
        return [(lesson, *future.result()) for lesson, future in futures]
