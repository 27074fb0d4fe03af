"""The class report's numbers, read from what grading left in the course folder (``report`` writes them).

It reads ``autograded/<student>/<assignment>/result.json``, the graded notebooks beside it and
``collected.csv``, and from the course's source only the contract and the released stubs.

Per exercise an answer is *full*, *partial* or *zero* by its points, *no answer* when it was left as
released (or nothing readable was handed in) and *not graded* when the grader itself failed. A failing
answer's *mistake* is the message of the first of its test cells that failed a visible check (a hidden
failure only when no visible check failed), grouped as ``mistakes`` explains; an answer dropped because
it killed or hung the kernel is its own mistake. Similar submissions are found as ``similarity`` explains.
Nothing here knows the course: it reads the contract of each assignment (``grading.contract``).
"""
from __future__ import annotations

import ast
import json
import re
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CourseError
from ..grading.contract import Contract, Exercise, grade_id, read_contract
from ..grading.hidden import visible_form
from ..grading.rebuild import is_stub
from ..syntax import parse_python
from ..text import printable, read_csv
from .collect import student_names
from .folder import Course
from .manual import manual_scores
from .mistakes import MAX_LABEL_CHARS, group_failures
from .similarity import Answer, Pair, fingerprint, released_stub, similar_pairs

FULL, PARTIAL, ZERO, NO_ANSWER, NOT_GRADED = "full", "partial", "zero", "no answer", "not graded"
OUTCOMES = (FULL, PARTIAL, ZERO, NO_ANSWER, NOT_GRADED)
UNGRADABLE = {"missing": NO_ANSWER, "unreadable": NO_ANSWER, "error": NOT_GRADED}
HIDDEN_FAILURE = "a hidden test failed"   # how the grader words a hidden check's failure (grading.hidden)
DROPPED = re.compile(r"^graded again without (?P<answer>\S+) \((?P<status>\w+)\)$")
FRAME = re.compile(r'File "<test cell (\d+)>", line (\d+)')
MIN_PAIR_SCORE = 16.0    # weighted shared tokens (two statements of code few others wrote) for a pair to be listed
MAX_PAIRS = 200          # pairs kept in report.json and similar.csv (the page shows the first of them)
MAX_TEXT = 300           # characters of a status message or note kept
MAX_NOTEBOOK_BYTES = 64 * 2**20   # a graded notebook is at most a few MB; anything larger is not read


@dataclass
class Submission:
    """One student's graded submission of one assignment, as the report reads it."""
    student: str
    name: str
    status: str
    message: str
    points: float                 # the autograded points
    max: float
    seconds: float | None
    review: list[str]
    outcomes: dict[str, str]      # exercise -> one of OUTCOMES
    failures: dict[str, tuple[str, str]] = field(default_factory=dict)   # exercise -> (test cell, message)
    answers: dict[str, str] = field(default_factory=dict)                # exercise -> the code written
    mistakes: dict[str, int] = field(default_factory=dict)               # exercise -> its mistake's number


@dataclass
class AssignmentReport:
    assignment: str
    max: float
    submissions: list[Submission]
    exercises: list[dict]         # exercise, points, and the count of each outcome
    tests: list[dict]             # test, exercise, points, passed, graded
    mistakes: list[dict]          # exercise, number, label, students, count, share (of the class)
    statuses: dict[str, int]
    skipped: list[dict]           # files collect refused: student, entry, why
    waiting: list[str]            # students with a submission not graded yet
    seconds: dict                 # the grading time: count, median, p90, max, total
    pairs: list[Pair]

    @property
    def students(self) -> int:
        return len(self.submissions)


def cap(text, limit: int = MAX_TEXT) -> str:
    """Text a submission controls, on one line, without control or bidirectional characters, at most ``limit``."""
    return printable(" ".join(str(text).split()), limit)


def read_graded_notebook(path: Path) -> list[dict]:
    """The cells of a graded notebook (the grader wrote it; anything unreadable is no cells)."""
    try:
        if path.stat().st_size > MAX_NOTEBOOK_BYTES:
            return []
        cells = json.loads(path.read_text(encoding="utf-8", errors="replace")).get("cells", [])
    except (OSError, ValueError, RecursionError, AttributeError):
        return []
    return [c for c in cells if isinstance(c, dict)] if isinstance(cells, list) else []


def source_of(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(s for s in source if isinstance(s, str)) if isinstance(source, list) else str(source)


def failing_statement(cell_index: int, source: str, traceback: list) -> str:
    """The visible statement a test cell failed at, from the grader's traceback of its visible run."""
    lines = [int(line) for text in traceback if isinstance(text, str)
             for cell, line in FRAME.findall(text) if int(cell) == cell_index]
    visible = visible_form(source)
    tree = parse_python(visible)
    if not lines or tree is None:
        return ""
    statements = [n for n in ast.walk(tree) if isinstance(n, ast.stmt) and n.lineno <= lines[-1] <= (n.end_lineno or 0)]
    if not statements:
        return ""
    statement = min(statements, key=lambda n: (n.end_lineno or n.lineno) - n.lineno)
    return cap(ast.get_source_segment(visible, statement) or "", 200)


def failure_message(cell_index: int, cell: dict, error: dict) -> str:
    ename, evalue = cap(error.get("ename", "Error"), 80), str(error.get("evalue", ""))
    if not evalue.strip():
        traceback = error.get("traceback") if isinstance(error.get("traceback"), list) else []
        statement = failing_statement(cell_index, source_of(cell), traceback)
        return f"{ename} at {statement}" if statement else f"{ename} (the test gives no message)"
    return evalue if ename == "AssertionError" else f"{ename}: {evalue}"


def first_failure(tests: dict[str, tuple[int, dict]], exercise: Exercise) -> tuple[str, str] | None:
    """(test cell, message) of the exercise's first test cell that failed a visible check, else a hidden one."""
    found = []
    for test_id in exercise.test_ids:
        index, cell = tests.get(test_id, (-1, {}))
        outputs = cell.get("outputs") if isinstance(cell.get("outputs"), list) else []
        error = next((o for o in outputs if isinstance(o, dict) and o.get("output_type") == "error"), None)
        if error is not None:
            found.append((test_id, failure_message(index, cell, error)))
    visible = [f for f in found if not f[1].startswith(HIDDEN_FAILURE)]
    return (visible or found or [None])[0]


def read_submission(course: Course, contract: Contract, student: str, record: dict, name: str) -> Submission:
    scores = record.get("scores") if isinstance(record.get("scores"), dict) else {}
    points = {t.grade_id: t.points for t in contract.tests}
    status = str(record.get("status", "error"))
    submission = Submission(student, name, status, cap(record.get("message", "")),
                            sum(float(scores.get(t) or 0) for t in contract.test_ids), contract.max_points,
                            record.get("seconds") if isinstance(record.get("seconds"), (int, float)) else None,
                            [cap(r) for r in record.get("review", []) if isinstance(r, str)], {})
    if status in UNGRADABLE or not scores:
        submission.outcomes = {e.answer_id: UNGRADABLE.get(status, NOT_GRADED) for e in contract.exercises}
        return submission
    dropped = {m["answer"]: m["status"] for note in record.get("notes", []) if isinstance(note, str)
               for m in [DROPPED.match(note)] if m}
    cells: list[tuple[int, dict]] = []
    for notebook in contract.notebooks:
        cells += list(enumerate(read_graded_notebook(course.result_path(student, contract.assignment).parent
                                                      / notebook.notebook)))
    by_id = {grade_id(cell): (index, cell) for index, cell in cells if grade_id(cell)}
    for exercise in contract.exercises:
        score = sum(float(scores.get(t) or 0) for t in exercise.test_ids)
        answer = source_of(by_id.get(exercise.answer_id, (0, {}))[1])
        if exercise.answer_id in dropped:
            submission.outcomes[exercise.answer_id] = ZERO
            submission.failures[exercise.answer_id] = (
                exercise.test_ids[0] if exercise.test_ids else "",
                f"the answer stopped the grading ({dropped[exercise.answer_id]}): it was dropped and scored 0")
            continue
        if not answer.strip() or is_stub(answer, exercise.functions):
            submission.outcomes[exercise.answer_id] = NO_ANSWER
            continue
        submission.answers[exercise.answer_id] = answer
        full = all((scores.get(t) or 0) >= points.get(t, 0) for t in exercise.test_ids)
        submission.outcomes[exercise.answer_id] = FULL if full else ZERO if score <= 0 else PARTIAL
        if not full:
            submission.failures[exercise.answer_id] = first_failure(by_id, exercise) or (
                exercise.test_ids[0], f"scored {score:g} of {exercise.points:g} (the graded notebook shows no failure)")
    return submission


def points_given(course: Course, contract: Contract) -> dict[str, dict[str, float]]:
    """The points given by hand so far (``manual``); a sheet ``export`` would refuse counts as none given."""
    try:
        return manual_scores(course, contract)
    except CourseError:
        return {}


def skipped_files(course: Course, assignment: str) -> list[dict]:
    if not course.collected_log.exists():
        return []
    return [{"student": cap(row.get("student", ""), 80), "entry": cap(row.get("entry", ""), 200),
             "why": cap(row.get("outcome", "").removeprefix("skipped:").strip(), 200)}
            for row in read_csv(course.collected_log)
            if row.get("outcome", "").startswith("skipped") and row.get("lesson") == assignment]


def time_summary(seconds: list[float]) -> dict:
    if not seconds:
        return {"count": 0}
    ordered = sorted(seconds)
    return {"count": len(ordered), "median": round(statistics.median(ordered), 1),
            "p90": round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 1), "max": round(ordered[-1], 1),
            "total": round(sum(ordered), 1)}


def released_stubs(source: Path, contract: Contract) -> dict[str, str]:
    """Each exercise's answer cell as the release gives it to everyone (its solution replaced by the stub)."""
    stubs = {}
    for notebook in contract.notebooks:
        for cell in read_graded_notebook(source / contract.assignment / notebook.notebook):
            if grade_id(cell) in {e.answer_id for e in contract.exercises}:
                stubs[grade_id(cell)] = released_stub(source_of(cell))
    return stubs


def assignment_report(course: Course, assignment: str, source: Path) -> AssignmentReport:
    contract = read_contract(source / assignment)
    names = student_names(course)
    records = course.results(assignment)
    submissions = [read_submission(course, contract, student, record, cap(names.get(student, ""), 120))
                   for student, record in sorted(records.items())]
    count = len(submissions)
    exercises = [{"exercise": e.answer_id, "points": e.points,
                  **{o: sum(s.outcomes.get(e.answer_id) == o for s in submissions) for o in OUTCOMES}}
                 for e in contract.exercises]
    graded = [s for s in submissions if s.status not in UNGRADABLE]
    tests = []
    for exercise in contract.exercises:
        for test_id in exercise.test_ids:
            record_scores = [(records[s.student].get("scores") or {}).get(test_id) for s in graded]
            points = next(t.points for t in contract.tests if t.grade_id == test_id)
            tests.append({"test": test_id, "exercise": exercise.answer_id, "points": points, "graded": len(graded),
                          "passed": sum((score or 0) >= points for score in record_scores)})
    mistakes = []
    for exercise in contract.exercises:
        failing = [(s.student, *s.failures[exercise.answer_id]) for s in submissions
                   if exercise.answer_id in s.failures]
        groups = []
        for test_id in dict.fromkeys(t for _, t, _ in failing):
            groups += [(test_id, g) for g in group_failures((s, m) for s, t, m in failing if t == test_id)]
        groups.sort(key=lambda tg: (-len(tg[1].students), tg[1].label))
        for number, (test_id, group) in enumerate(groups, start=1):
            mistakes.append({"exercise": exercise.answer_id, "number": number, "test": test_id,
                             "label": group.label[:MAX_LABEL_CHARS], "students": group.students,
                             "count": len(group.students), "share": len(group.students) / count if count else 0.0})
            for student in group.students:
                next(s for s in submissions if s.student == student).mistakes[exercise.answer_id] = number
    statuses = Counter(s.status for s in submissions)
    statuses["review"] = sum(bool(s.review) for s in submissions)
    given = points_given(course, contract)
    statuses["manual grading pending"] = sum(
        bool(set(records[s.student].get("manual") or ()) - set(given.get(s.student, ())))
        for s in submissions if s.status not in UNGRADABLE)
    statuses = +statuses   # (only what occurs)
    stubs = released_stubs(source, contract)
    keep = frozenset(contract.function_names)
    answers: dict[str, dict[str, Answer]] = {
        s.student: {e: fingerprint(code, stubs.get(e, ""), keep) for e, code in s.answers.items()} for s in submissions}
    pairs = similar_pairs(answers, MIN_PAIR_SCORE)[:MAX_PAIRS]
    order = [e.answer_id for e in contract.exercises]
    for pair in pairs:
        pair.exercises = {e: pair.exercises[e] for e in order if e in pair.exercises}
    return AssignmentReport(assignment, contract.max_points, submissions, exercises, tests, mistakes, dict(statuses),
                            skipped_files(course, assignment),
                            sorted(set(course.students(assignment)) - set(records)),
                            time_summary([s.seconds for s in submissions if s.seconds is not None]),
                            pairs)


