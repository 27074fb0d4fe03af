"""The class report (``report``): what the class got wrong, who handed in what, and who copied from whom.

A class of lesson 03 is generated from the course's own wrong-answer table (tests/answers/03-clipped-surrogate.toml):
honest students, each making known mistakes (some of them different mistakes that the same visible check
names, with different values in its message), blank answers, a crash, a missing and an unreadable
submission, two notebooks handed in together, skipped files, a student whose name and error message are
markup, and three copied pairs (variables renamed, statements reordered, comments and docstrings changed).
It is collected from a Moodle zip and graded once per module through the instructor's commands. The report
must count each mistake exactly, rank the three pairs above every honest pair, and open in headless
Chromium with no console error and every image decoded, nothing a submission wrote reaching it as markup
and nothing of the hidden tests reaching it at all.

The normalisation, the fingerprints and the grouping of messages are unit-tested first, fast.
"""
from __future__ import annotations

import csv
import functools
import html
import http.server
import json
import re
import subprocess
import sys
import threading
import time
import tomllib
import zipfile
from pathlib import Path

import nbformat
import pytest

from ppo_course.autograder.commands.cli import main
from ppo_course.autograder.commands.collect import LOG_FIELDS
from ppo_course.autograder.commands.folder import Course
from ppo_course.autograder.commands.mistakes import group_failures, message_key
from ppo_course.autograder.commands.report import write_report
from ppo_course.autograder.commands.report_data import failure_message, first_failure
from ppo_course.autograder.commands.report_page import code_block
from ppo_course.autograder.commands.similarity import (
    fingerprint,
    normalised_tokens,
    released_stub,
    similar_pairs,
    winnow,
)
from ppo_course.autograder.grading.contract import Exercise
from ppo_course.autograder.grading.hidden import numbers_in
from ppo_course.autograder.text import write_csv

import browser_helpers as browser
from conftest import LESSONS, RELEASE_CACHE, REPO, lesson_notebook
from exercise_checks import answers_file, assert_rejected, lesson_answers, run_tests_against
from grading_helpers import hidden_test_lines, solution_answers, submission

LESSON = "03-clipped-surrogate"
NOTEBOOK = f"{LESSON}.ipynb"
EXERCISES = ("clipped_surrogate", "clip_is_active", "ppo_policy_loss")


# --- fast: normalisation, fingerprints, grouping --------------------------------------------------------------

ORIGINAL = '''def clipped_surrogate(ratio, adv, eps=0.2):
    """Mine."""
    lower = 1 - eps   # the bottom of the interval
    upper = 1 + eps
    kept_ratio = torch.clamp(ratio, lower, upper)
    unclipped_term = ratio * adv
    clipped_term = kept_ratio * adv
    return torch.minimum(unclipped_term, clipped_term)
'''
COPY = '''def clipped_surrogate(ratio, adv, eps=0.2):
    # PPO's objective
    plain = ratio*adv
    hi = 1 + eps
    lo = 1 - eps
    r_c = torch.clamp(ratio, lo, hi)
    safe = (r_c * adv)
    return torch.minimum(plain, safe)
'''
STUB = '''def clipped_surrogate(ratio, adv, eps=0.2):
    """Elementwise PPO objective."""
    ### BEGIN SOLUTION
    return torch.minimum(ratio * adv, torch.clamp(ratio, 1 - eps, 1 + eps) * adv)
    ### END SOLUTION
'''
KEEP = frozenset({"clipped_surrogate"})


def test_renamed_reordered_and_recommented_code_normalises_alike_statement_by_statement():
    original, copy = normalised_tokens(ORIGINAL, KEEP), normalised_tokens(COPY, KEEP)
    statements = lambda tokens: sorted(" ".join(t for t in tokens if t not in "{}").split(" ; "))   # noqa: E731
    assert statements(original) == statements(copy), (original, copy)
    assert original != copy, "the copy's statements are in another order"
    assert "torch" in original and "clamp" in original and "minimum" in original, "what the code calls is kept"
    assert not {"lower", "upper", "kept_ratio", "S"} & set(original), "chosen names and the docstring go"
    assert normalised_tokens(ORIGINAL.replace("torch.minimum", "torch.maximum"), KEEP) != original
    assert " ".join(normalised_tokens("def f(x):\n    return g(eps=x)\n", frozenset({"f"}))) == (
        "def f ( v0 ) : ; { return g ( eps = v0 ) ; }"), "a keyword argument's name is the callee's: kept"


def test_broken_code_still_has_tokens():
    assert normalised_tokens("def f(x):\n    return x +\n") == ["def", "v", "(", "v", ")", ":", "return", "v", "+"]


def test_the_released_stub_is_what_nbgrader_releases():
    assert released_stub(STUB) == ('def clipped_surrogate(ratio, adv, eps=0.2):\n    """Elementwise PPO objective."""\n'
                                   "    raise NotImplementedError()\n")


def test_winnowing_keeps_the_smallest_hash_of_every_window():
    hashes = [77, 74, 42, 17, 98, 50, 17, 98, 8, 88, 67, 39, 77, 74, 42, 17, 98]   # the paper's example
    assert winnow(hashes) == {17: [3, 6, 15], 8: [8], 39: [11]}


def test_a_copy_shares_its_code_and_the_stub_is_not_evidence():
    stub = released_stub(STUB)
    original, copy = fingerprint(ORIGINAL, stub, KEEP), fingerprint(COPY, stub, KEEP)
    assert not set(fingerprint(stub, stub, KEEP).fingerprints), "the stub itself leaves nothing to compare"
    other = fingerprint(STUB.replace("### BEGIN SOLUTION\n", "").replace("    ### END SOLUTION\n", ""), stub, KEEP)
    pairs = similar_pairs({"a": {"e": original}, "b": {"e": copy}, "c": {"e": other}}, minimum=1)
    assert [(p.first, p.second) for p in pairs][:1] == [("a", "b")], pairs
    assert min(pairs[0].shares) > 0.8 and pairs[0].score > 30, pairs[0]
    assert all(p.score < pairs[0].score / 2 for p in pairs[1:]), pairs


def test_code_everyone_wrote_is_no_evidence():
    stub = released_stub(STUB)
    common = fingerprint(STUB.replace("### BEGIN SOLUTION\n", "").replace("    ### END SOLUTION\n", ""), stub, KEEP)
    class_ = {f"s{i}": {"e": common} for i in range(10)} | {"a": {"e": fingerprint(ORIGINAL, stub, KEEP)},
                                                             "b": {"e": fingerprint(COPY, stub, KEEP)}}
    pairs = similar_pairs(class_, minimum=1)
    assert [(p.first, p.second) for p in pairs] == [("a", "b")], pairs[:5]


def test_the_same_check_with_other_values_is_one_mistake_and_other_hints_are_not():
    got = ("With eps = 0.3 the clip is active above 1.3 (A > 0): use the eps argument. For r = [1.25, 1.35] "
           "expected [F, T], got {}")
    assert message_key(got.format("[True, True]")) == message_key(got.format("[False, False]"))
    loss = "the loss is -mean(A) = 0.1667; got {:.4f}. {}"
    sign, total = loss.format(-0.1667, "Return MINUS the mean."), loss.format(0.5, "Average over the batch.")
    assert message_key(sign) != message_key(total)
    assert message_key(loss.format(-0.1667, "Return MINUS the mean.")) == message_key(sign)
    index = "L^CLIP with eps = 0.3: expected [0.6, 0.75], got [0.6, 0.8] (first mismatch at index {}). Use eps."
    assert message_key(index.format(1)) == message_key(index.format(2))
    assert message_key("at 0x7f00aa12 (tensor([1., 2.]))") == message_key("at 0x7f11bb99 (tensor([3., 4.]))")


def test_grouping_names_each_mistake_by_what_its_members_share():
    failures = {"ann": "With eps = 0.3: got [True, True]. Use the eps argument.",
                "bob": "With eps = 0.3: got [False, True]. Use the eps argument.",
                "cy": "With eps = 0.3 got 0.5000: take the min.",
                "dee": "With eps = 0.3 got 0.7000: take the min."}
    groups = {tuple(g.students): g.label for g in group_failures(failures.items())}
    assert groups == {("ann", "bob"): "With eps = 0.3: got …. Use the eps argument.",
                      ("cy", "dee"): "With eps = 0.3 got …: take the min."}, "numbers that differ between members go"
    bigger = group_failures([*failures.items(), ("ed", "With eps = 0.3 got 0.9000: take the min.")])
    assert [len(g.students) for g in bigger] == [3, 2], "the most common mistake first"
    alone = group_failures([("ed", "got 0.5000: take the min.")])[0]
    assert alone.label == "got 0.5000: take the min.", "one member's numbers are its message's"
    assert len(group_failures([("x", "<b>" * 10_000)])[0].label) <= 600


def test_what_a_submission_wrote_can_neither_hide_nor_reorder_text():
    shown = code_block("x = 1\u202e  # </pre><script>\n\ty = 2")
    assert shown == "<pre>x = 1\\u202e  # &lt;/pre&gt;&lt;script&gt;\n\ty = 2</pre>", shown
    label = group_failures([("a", "got\u202e 1 \x1b[31m<b>")])[0].label
    assert label == "got\\u202e 1 \\x1b[31m<b>", label   # (the page escapes the markup: tested below)


def test_a_failure_is_read_from_the_first_test_cell_that_failed_a_visible_check():
    exercise = Exercise("squares", ("squares",), ("correct", "invalid_input"), 2.0)
    hidden = {"output_type": "error", "ename": "AssertionError", "evalue": "a hidden test failed: squares of 0 to …"}
    bare = {"output_type": "error", "ename": "AssertionError", "evalue": "",
            "traceback": ["Traceback (most recent call last):", '  File "<test cell 7>", line 2, in <module>',
                          "AssertionError"]}
    source = "assert squares(1) == [1]\nassert squares(2) == [1, 4]\n### BEGIN HIDDEN TESTS\nassert squares(9)\n" \
             "### END HIDDEN TESTS\n"
    cells = {"correct": (3, {"source": source, "outputs": [hidden]}), "invalid_input": (7, {"source": source,
                                                                                             "outputs": [bare]})}
    assert first_failure(cells, exercise) == ("invalid_input", "AssertionError at assert squares(2) == [1, 4]"), (
        "a visible failure names the mistake before a hidden one; a bare assert by its (visible) statement")
    cells["invalid_input"] = (7, {"source": source, "outputs": []})
    assert first_failure(cells, exercise) == ("correct", hidden["evalue"])
    outside = dict(bare, traceback=['  File "<test cell 7>", line 4, in <module>'])   # (a hidden line)
    assert failure_message(7, {"source": source}, outside) == "AssertionError (the test gives no message)"


def small_course(root: Path) -> tuple[Path, Path]:
    """A course of one assignment (hw1: ``double``, one test cell with a hidden check) and what grading would
    have left for six students, written by hand: no grading needed."""
    answer = nbformat.v4.new_code_cell(
        'def double(x):\n    """Twice x."""\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION\n',
        metadata={"nbgrader": {"grade": False, "solution": True, "locked": False, "grade_id": "double",
                               "schema_version": 3}})
    test = nbformat.v4.new_code_cell(
        "assert double(1) == 2, f'double(1) should be 2, got {double(1)}'\n### BEGIN HIDDEN TESTS\n"
        "assert double(123456) == 246912, 'double a large number'\n### END HIDDEN TESTS\n",
        metadata={"nbgrader": {"grade": True, "solution": False, "locked": True, "grade_id": "double_tests",
                               "points": 2, "schema_version": 3}})
    source = root / "source"
    (source / "hw1").mkdir(parents=True)
    nbformat.write(nbformat.v4.new_notebook(cells=[answer, test]), source / "hw1" / "hw1.ipynb")
    course = root / "course"

    def graded(student: str, status: str, score, code: str | None = None, error: tuple | None = None) -> None:
        folder = course / "autograded" / student / "hw1"
        folder.mkdir(parents=True)
        record = {"student": student, "lesson": "hw1", "status": status, "message": "", "notes": [], "review": [],
                  "scores": {} if score is None else {"double_tests": score}, "max": 2.0, "seconds": 1.5}
        (folder / "result.json").write_text(json.dumps(record))
        if code is not None:
            cells = [nbformat.v4.new_code_cell(code, metadata=answer.metadata), nbformat.v4.new_code_cell(
                test.source, metadata=test.metadata, outputs=[nbformat.v4.new_output(
                    "error", ename=error[0], evalue=error[1], traceback=[]) for _ in [error] if error])]
            nbformat.write(nbformat.v4.new_notebook(cells=cells), folder / "hw1.ipynb")

    said = "double(1) should be 2, got {}"
    graded("ann", "graded", 2.0, "def double(x):\n    return x + x\n")
    graded("bob", "graded", 0.0, "def double(x):\n    return 3 * x\n", ("AssertionError", said.format(3)))
    graded("cy", "graded", 0.0, "def double(y):\n    return y * 4\n", ("AssertionError", said.format(4)))
    graded("dee", "graded", 0.0, "def double(x):\n    raise NotImplementedError()\n", ("NotImplementedError", ""))
    graded("mal", "graded", 0.0, "def double(x):\n    return 2 * x if x < 9 else 0   # </pre><script>\n",
           ("AssertionError", "a hidden test failed: double a large number"))
    graded("eve", "unreadable", None)
    (course / "autograded" / "zed" / "hw1").mkdir(parents=True)
    (course / "autograded" / "zed" / "hw1" / "result.json").write_text("{broken")
    write_csv(course / "collected.csv", LOG_FIELDS, [
        ["t", "d", "dl.zip", "x", "mal", "<script>alert(2)</script>", "hw1", "submitted/mal/hw1/hw1.ipynb", 1, "",
         "stored"],
        ["t", "d", "dl.zip", "=cmd|' /C calc'!A0", "", "", "hw1", "", "", "", "skipped: no student id"]])
    return course, source


def test_the_report_of_a_small_course_written_by_hand(tmp_path):
    course, source = small_course(tmp_path)
    written = write_report(Course(course), ["hw1"], source, course / "report")
    assert sorted(p.name for p in written) == ["exercises.csv", "mistakes.csv", "report.html", "report.json",
                                               "similar.csv", "students.csv", "tests.csv"]
    report = json.loads((course / "report" / "report.json").read_text())["assignments"][0]
    assert report["exercises"] == [{"exercise": "double", "points": 2.0, "full": 1, "partial": 0, "zero": 3,
                                    "no answer": 2, "not graded": 1}], report["exercises"]
    assert report["tests"] == [{"test": "double_tests", "exercise": "double", "points": 2.0, "graded": 5, "passed": 1}]
    assert [(m["label"], m["students"]) for m in report["mistakes"]] == [
        ("double(1) should be 2, got …", ["bob", "cy"]), ("a hidden test failed: double a large number", ["mal"])]
    assert report["statuses"] == {"graded": 5, "unreadable": 1, "error": 1}
    assert report["skipped"] == [{"student": "", "entry": "=cmd|' /C calc'!A0", "why": "no student id"}]
    page = (course / "report" / "report.html").read_text()
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in page and "<script>alert" not in page
    assert "Content-Security-Policy" in page and not re.search(r"(src|href)=[\"']?(https?:)?//", page)
    assert page.count("<script>") == 1 and page.count("data:image/png;base64,") >= 4
    with open(course / "report" / "students.csv", newline="") as handle:
        rows = {row["student_id"]: row for row in csv.DictReader(handle)}
    assert rows["dee"]["outcomes"] == "double: no answer" and rows["bob"]["mistakes"] == "double: #1", rows


def test_bad_input_to_report_is_one_line_and_exit_2(tmp_path, capsys):
    course, source = small_course(tmp_path)
    (tmp_path / "a-file").write_text("")
    for argv, says in ((["--course", str(tmp_path / "nowhere")], "no course directory"),
                       (["--course", str(course), "--source", str(source), "hw9"], "unknown assignment"),
                       (["--course", str(course)], "not an assignment of"),   # (the default source: this course)
                       (["--course", str(course), "--source", str(source), "--output", str(tmp_path / "a-file")],
                        "could not write the report")):
        assert main(["report", *argv]) == 2
        error = capsys.readouterr().err
        assert says in error and error.count("\n") == 1, error


# --- the generated class, graded once ----------------------------------------------------------------------------

# For each exercise: (mistake in tests/answers/03-clipped-surrogate.toml, how many honest students make it).
# Mistakes that share a hint fail the same visible check, some with other values in its message: one mistake.
MISTAKES = {
    "clipped_surrogate": [("max instead of min", 4), ("sides swapped by sign", 1), ("hard-codes eps = 0.2", 2),
                          ("hard-codes the upper bound", 1), ("clips the product r*A", 2), ("reduces to a mean", 1),
                          ("numpy, no gradient", 1), ("flattens its output", 2)],
    "clip_is_active": [("flags both sides for every sign", 2), ("sides swapped", 1),
                       ("where the gradient is NOT zero", 1), (">= at the boundary", 2), ("returns floats", 1),
                       ("forgets negative advantages", 2)],
    "ppo_policy_loss": [("sign error", 3), ("sum instead of mean", 2), ("ratio inverted", 1),
                        ("eps not passed on", 1), ("hard-codes eps = 0.2", 1)],
}
# A mistake the table does not list, which only a hidden check sees: it groups by the hidden check's words.
FLATTENS = ("def clipped_surrogate(ratio, adv, eps=0.2):\n"
            "    return torch.minimum(ratio * adv, torch.clamp(ratio, 1 - eps, 1 + eps) * adv).reshape(-1)\n")
HIDDEN_HINT = "a hidden test failed: L^CLIP on a 2x2 batch of mixed signs"
BLANK = {"ppo_policy_loss": 2}   # honest students who left that exercise as released
RIGHT = {"clipped_surrogate": ["where by sign", "torch.min of two tensors"],
         "clip_is_active": ["sign times (r - 1)"],   # ("value differs from r*A" calls the student's clipped_surrogate)
         "ppo_policy_loss": ["quotient of probabilities", "inline min, logp_old detached"]}
HONEST = 22

# Three originals, each of all three exercises in a style of its own, and their copies: locals renamed,
# independent statements reordered, comments and docstrings changed.
PAIRS = [
    ({"clipped_surrogate": ORIGINAL,
      "clip_is_active": '''def clip_is_active(ratio, adv, eps=0.2):
    too_high = ratio > 1 + eps
    too_low = ratio < 1 - eps
    good_action = adv > 0
    bad_action = adv < 0
    return (good_action & too_high) | (bad_action & too_low)
''',
      "ppo_policy_loss": '''def ppo_policy_loss(logp_new, logp_old, adv, eps=0.2):
    log_ratio = logp_new - logp_old
    ratio = torch.exp(log_ratio)
    per_sample = clipped_surrogate(ratio, adv, eps)
    mean_objective = per_sample.mean()
    loss = -mean_objective
    return loss
'''},
     {"clipped_surrogate": COPY,
      "clip_is_active": '''def clip_is_active(ratio, adv, eps=0.2):
    """True where clipped."""
    neg = adv < 0
    pos = adv > 0
    under = ratio < 1 - eps
    over = ratio > 1 + eps
    return (pos & over) | (neg & under)
''',
      "ppo_policy_loss": '''def ppo_policy_loss(logp_new, logp_old, adv, eps=0.2):
    lr = logp_new - logp_old
    r = torch.exp(lr)
    s = clipped_surrogate(r, adv, eps)
    m = s.mean()
    l = -m
    return l
'''}),
    ({"clipped_surrogate": '''def clipped_surrogate(ratio, adv, eps=0.2):
    positive = adv >= 0
    capped_above = torch.where(ratio > 1 + eps, torch.full_like(ratio, 1 + eps), ratio)
    capped_below = torch.where(ratio < 1 - eps, torch.full_like(ratio, 1 - eps), ratio)
    chosen = torch.where(positive, torch.minimum(ratio, capped_above), torch.maximum(ratio, capped_below))
    return chosen * adv
''',
      "clip_is_active": '''def clip_is_active(ratio, adv, eps=0.2):
    above = torch.gt(ratio, 1 + eps)
    below = torch.lt(ratio, 1 - eps)
    mask = torch.where(adv > 0, above, torch.where(adv < 0, below, torch.zeros_like(above)))
    return mask
''',
      "ppo_policy_loss": '''def ppo_policy_loss(logp_new, logp_old, adv, eps=0.2):
    n = adv.shape[0]
    r = (logp_new - logp_old).exp()
    total = torch.sum(clipped_surrogate(r, adv, eps))
    return -(total / n)
'''},
     {"clipped_surrogate": '''def clipped_surrogate(ratio, adv, eps=0.2):
    # the two sides, one per sign of A
    low_side = torch.where(ratio < 1 - eps, torch.full_like(ratio, 1 - eps), ratio)
    high_side = torch.where(ratio > 1 + eps, torch.full_like(ratio, 1 + eps), ratio)
    sign_ok = adv >= 0
    pick = torch.where(sign_ok, torch.minimum(ratio, high_side), torch.maximum(ratio, low_side))
    return pick * adv
''',
      "clip_is_active": '''def clip_is_active(ratio, adv, eps=0.2):
    lower_hit = torch.lt(ratio, 1 - eps)
    upper_hit = torch.gt(ratio, 1 + eps)
    out = torch.where(adv > 0, upper_hit, torch.where(adv < 0, lower_hit, torch.zeros_like(upper_hit)))
    return out
''',
      "ppo_policy_loss": '''def ppo_policy_loss(logp_new, logp_old, adv, eps=0.2):
    ratios = (logp_new - logp_old).exp()
    count = adv.shape[0]
    s = torch.sum(clipped_surrogate(ratios, adv, eps))
    return -(s / count)
'''}),
    ({"clipped_surrogate": '''def clipped_surrogate(ratio, adv, eps=0.2):
    bounds = (1.0 - eps, 1.0 + eps)
    surr1 = adv * ratio
    surr2 = adv * ratio.clamp(min=bounds[0], max=bounds[1])
    result = torch.min(surr1, surr2)
    return result
''',
      "clip_is_active": '''def clip_is_active(ratio, adv, eps=0.2):
    grad_zero_pos = torch.logical_and(adv > 0, ratio > 1.0 + eps)
    grad_zero_neg = torch.logical_and(adv < 0, ratio < 1.0 - eps)
    return torch.logical_or(grad_zero_pos, grad_zero_neg)
''',
      "ppo_policy_loss": '''def ppo_policy_loss(logp_new, logp_old, adv, eps=0.2):
    diff = logp_new - logp_old
    ratios = diff.exp()
    objective = clipped_surrogate(ratios, adv, eps=eps)
    return objective.mean().neg()
'''},
     {"clipped_surrogate": '''def clipped_surrogate(ratio, adv, eps=0.2):
    interval = (1.0 - eps, 1.0 + eps)
    first = adv * ratio
    second = adv * ratio.clamp(min=interval[0], max=interval[1])   # </pre></details><script>alert(2)</script>
    res = torch.min(first, second)
    return res
''',
      "clip_is_active": '''def clip_is_active(ratio, adv, eps=0.2):
    b = torch.logical_and(adv < 0, ratio < 1.0 - eps)
    a = torch.logical_and(adv > 0, ratio > 1.0 + eps)
    return torch.logical_or(a, b)
''',
      "ppo_policy_loss": '''def ppo_policy_loss(logp_new, logp_old, adv, eps=0.2):
    d = logp_new - logp_old
    rs = d.exp()
    obj = clipped_surrogate(rs, adv, eps=eps)
    return obj.mean().neg()
'''}),
]
HOSTILE_NAME = "<img src=x onerror=alert(1)>"
FORMULA_NAME = '=HYPERLINK("x.example","open")'
HOSTILE_ANSWER = '''def clipped_surrogate(ratio, adv, eps=0.2):
    # </pre></details></table><script>alert(2)</script>
    raise ValueError("<script>alert(1)</script>")
'''
CRASH = "import os\nos._exit(3)\ndef clip_is_active(ratio, adv, eps=0.2):\n    return ratio > 1\n"


def wrong_answer(exercise: str, mistake: str) -> str:
    return FLATTENS if mistake == "flattens its output" else lesson_answers(LESSON).wrong[exercise][mistake]


def hint(exercise: str, mistake: str) -> str:
    """The words the report's name for ``mistake`` must contain: its hint in the answers table."""
    if mistake == "flattens its output":
        return HIDDEN_HINT
    table = tomllib.loads(answers_file(LESSON).read_text())
    return next(entry["hint"] for entry in table[exercise]["wrong"] if entry["mistake"] == mistake)


def honest_answers() -> tuple[list[dict[str, str]], dict[str, dict[str, list[int]]]]:
    """The honest students' answers, and for each exercise which students made which mistake (by index)."""
    answers = lesson_answers(LESSON)
    reference = solution_answers(LESSON)
    students: list[dict[str, str]] = [{} for _ in range(HONEST)]
    made: dict[str, dict[str, list[int]]] = {}
    for turn, exercise in enumerate(EXERCISES):
        plan = [m for m, n in MISTAKES[exercise] for _ in range(n)] + [None] * BLANK.get(exercise, 0)
        rights = [reference[exercise], reference[exercise]] + [answers.right[exercise][r] for r in RIGHT[exercise]]
        order = [(i * (3, 5, 7)[turn] + 3 * turn) % HONEST for i in range(HONEST)]   # a different mix per exercise
        for slot, student in enumerate(order):
            if slot < len(plan) and plan[slot] is not None:
                students[student][exercise] = wrong_answer(exercise, plan[slot])
                made.setdefault(exercise, {}).setdefault(plan[slot], []).append(student)
            elif slot >= len(plan):
                students[student][exercise] = rights[slot % len(rights)]
    return students, made


def moodle_entry(name: str, student_id: int, file: str) -> str:
    return f"{name}_{student_id}_assignsubmission_file_/{file}"


def notebook_bytes(answers: dict[str, str]) -> bytes:
    return nbformat.writes(submission(LESSON, answers)).encode()


def build_class(download: Path) -> dict:
    """The Moodle zip of the class, and what each student did."""
    reference = solution_answers(LESSON)
    honest, made = honest_answers()
    ids = iter(range(5001, 6000))
    who: dict[str, dict] = {}
    entries: list[tuple[str, bytes, tuple]] = []
    when = (2024, 3, 1, 12, 0, 0)

    def add(role: str, name: str, files: dict[str, bytes], answers: dict[str, str] | None = None,
            later: dict[str, bytes] | None = None) -> str:
        student = str(next(ids))
        who[student] = {"role": role, "name": name, "answers": answers}
        for file, data in files.items():
            entries.append((moodle_entry(name, int(student), file), data, when))
        for file, data in (later or {}).items():   # handed in a day later, in the same download
            entries.append((moodle_entry(name, int(student), file), data, (2024, 3, 2, 9, 0, 0)))
        return student

    for index, answers in enumerate(honest):
        honest[index] = add("honest", f"Honest Student{index:02d}", {NOTEBOOK: notebook_bytes(answers)}, answers)
    pairs = []
    for number, (original, copy) in enumerate(PAIRS, start=1):
        pairs.append((add("original", f"Original Writer{number}", {NOTEBOOK: notebook_bytes(original)}, original),
                      add("copy", f"Copy Cat{number}", {NOTEBOOK: notebook_bytes(copy)}, copy)))
    blank = add("blank", FORMULA_NAME, {NOTEBOOK: notebook_bytes({})}, {})
    hostile_answers = dict(reference, clipped_surrogate=HOSTILE_ANSWER)
    hostile = add("hostile", HOSTILE_NAME, {NOTEBOOK: notebook_bytes(hostile_answers)}, hostile_answers)
    crash = add("crash", "Crash Test", {NOTEBOOK: notebook_bytes(dict(reference, clip_is_active=CRASH))},
                dict(reference, clip_is_active=CRASH))
    review = add("review", "Two Files", {NOTEBOOK: notebook_bytes({})}, reference,
                 later={f"{LESSON} (1).ipynb": notebook_bytes(reference)})
    missing = add("missing", "Only Python", {"answers.py": b"print('hello')\n"})
    unreadable = add("unreadable", "Cut Short", {NOTEBOOK: notebook_bytes(reference)[:5000]})
    with zipfile.ZipFile(download, "w") as archive:
        for path, data, stamp in entries:
            archive.writestr(zipfile.ZipInfo(path, stamp), data)
        link = zipfile.ZipInfo(moodle_entry("Honest Student00", int(honest[0]), "shortcut.ipynb"), when)
        link.external_attr = (0o120777 << 16)
        archive.writestr(link, "../../solutions")
        archive.writestr(zipfile.ZipInfo("readme.txt", when), "downloaded from Moodle")
    return {"who": who, "honest": honest, "made": made, "pairs": pairs, "blank": blank, "hostile": hostile,
            "crash": crash, "review": review, "missing": missing, "unreadable": unreadable}


def autograder(*argv) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ppo_course.autograder", *map(str, argv)], cwd=REPO,
                          capture_output=True, text=True, timeout=1200)


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory, sandbox):
    root = tmp_path_factory.mktemp("class")
    course = root / "course"
    plan = build_class(root / "moodle.zip")
    runs = {"collect": autograder("collect", root / "moodle.zip", "--course", course, "--lesson", "03"),
            "grade": autograder("grade", "--course", course, "03", "--jobs", "2", "--no-progress",
                                "--cell-timeout", "20", "--release-cache", RELEASE_CACHE)}
    started = time.monotonic()
    runs["report"] = autograder("report", "--course", course, "03")
    seconds = time.monotonic() - started
    out = course / "report"
    return {"course": course, "plan": plan, "runs": runs, "report_seconds": seconds, "out": out,
            "data": json.loads((out / "report.json").read_text()) if (out / "report.json").exists() else {}}




@pytest.mark.slow
def test_the_class_is_what_the_table_says():
    """Every generated answer is right or wrong as planned, by the lesson's own tests (run here, not graded)."""
    honest, made = honest_answers()
    for exercise, by_mistake in made.items():
        assert sorted(len(s) for s in by_mistake.values()) == sorted(n for _, n in MISTAKES[exercise])
    for pair in PAIRS:
        for answers in pair:
            for exercise, answer in answers.items():
                run_tests_against(LESSON, exercise, answer)
    run_tests_against(LESSON, "clipped_surrogate", FLATTENS, visible_only=True)
    assert_rejected(LESSON, "clipped_surrogate", FLATTENS)


@pytest.mark.slow
def test_the_commands_succeed(graded_class):
    for name, run in graded_class["runs"].items():
        assert run.returncode == 0 and "Traceback" not in run.stderr, f"{name}:\n{run.stdout}\n{run.stderr}"
    assert "wrote" in graded_class["runs"]["report"].stdout
    print(f"report of {len(graded_class['plan']['who'])} students: {graded_class['report_seconds']:.1f} s")


def expected_mistakes(plan: dict) -> dict[str, dict[frozenset, str]]:
    """Per exercise: the students of each mistake the report must name, and the words its name must contain."""
    expected: dict[str, dict[frozenset, str]] = {}
    for exercise, by_mistake in plan["made"].items():
        by_hint: dict[str, set] = {}
        for mistake, indices in by_mistake.items():
            by_hint.setdefault(hint(exercise, mistake), set()).update(plan["honest"][i] for i in indices)
        expected[exercise] = {frozenset(students): words for words, students in by_hint.items()}
    expected["clipped_surrogate"][frozenset({plan["hostile"]})] = "ValueError: <script>alert(1)</script>"
    expected["clip_is_active"][frozenset({plan["crash"]})] = "the answer stopped the grading (crashed)"
    return expected


@pytest.mark.slow
def test_each_mistake_is_counted_exactly_with_the_students_behind_it(graded_class):
    report = graded_class["data"]["assignments"][0]
    students = report["students"]
    for exercise, expected in expected_mistakes(graded_class["plan"]).items():
        found = {frozenset(m["students"]): m for m in report["mistakes"] if m["exercise"] == exercise}
        assert set(found) == set(expected), (exercise, sorted(map(sorted, found)), sorted(map(sorted, expected)))
        for group, words in expected.items():
            mistake = found[group]
            assert words.lower() in mistake["label"].lower(), (words, mistake["label"])
            assert mistake["count"] == len(group) and mistake["share"] == pytest.approx(len(group) / students)
    assert any(m["label"].startswith("a hidden test failed") for m in report["mistakes"])


@pytest.mark.slow
def test_each_exercise_counts_full_zero_and_no_answer(graded_class):
    plan, report = graded_class["plan"], graded_class["data"]["assignments"][0]
    nothing = {plan["missing"], plan["unreadable"], plan["blank"]}
    for row in report["exercises"]:
        exercise = row["exercise"]
        wrong = {s for students in expected_mistakes(plan)[exercise] for s in students}
        blank = {s for s, w in plan["who"].items() if w["role"] == "honest" and exercise not in w["answers"]}
        assert (row["zero"], row["no answer"], row["partial"], row["not graded"]) == (
            len(wrong), len(blank | nothing), 0, 0), row
        assert row["full"] == len(plan["who"]) - len(wrong) - len(blank | nothing), row
        test = next(t for t in report["tests"] if t["exercise"] == exercise)
        assert (test["graded"], test["passed"]) == (len(plan["who"]) - 2, row["full"]), test


@pytest.mark.slow
def test_the_copied_pairs_rank_above_every_honest_pair(graded_class):
    plan, pairs = graded_class["plan"], graded_class["data"]["assignments"][0]["pairs"]
    copied = {frozenset(pair) for pair in plan["pairs"]}
    ranked = [frozenset((p["first"], p["second"])) for p in pairs]
    assert set(ranked[:3]) == copied, [(p["first"], p["second"], p["score"]) for p in pairs[:6]]
    assert pairs[3]["score"] < min(p["score"] for p in pairs[:3]), "honest pairs are listed too, below the copies"
    assert all(min(p["shares"]) > 0.8 for p in pairs[:3]), pairs[:3]
    print("copied pairs:", [p["score"] for p in pairs[:3]], "best honest pair:", pairs[3]["score"])


@pytest.mark.slow
def test_statuses_review_and_refused_files(graded_class):
    plan, report = graded_class["plan"], graded_class["data"]["assignments"][0]
    assert report["statuses"] == {"graded": len(plan["who"]) - 3, "crashed": 1, "missing": 1, "unreadable": 1,
                                  "review": 1}, report["statuses"]
    by_student = {s["student"]: s for s in report["submissions"]}
    review = by_student[plan["review"]]["review"]
    assert len(review) == 1 and "2 files handed in together" in review[0], review
    refused = {f["why"].split(":")[0] for f in report["skipped"]}
    assert refused == {"a symbolic link in the zip", "no student id"}, report["skipped"]
    assert report["seconds"]["count"] == len(plan["who"]) - 2 and 0 < report["seconds"]["median"] < 60


@pytest.mark.slow
def test_the_csv_files_hold_the_same_numbers_and_no_formula(graded_class):
    out, report = graded_class["out"], graded_class["data"]["assignments"][0]
    tables = {}
    for path in sorted(out.glob("*.csv")):
        with open(path, newline="", encoding="utf-8") as handle:
            tables[path.name] = list(csv.DictReader(handle))
        for row in tables[path.name]:
            for cell in row.values():
                assert not cell.startswith(("=", "+", "@", "\t", "\r")) or re.fullmatch(r"[+-]?[\d.]+", cell), cell
    assert [(r["exercise"], int(r["count"])) for r in tables["mistakes.csv"]] == [
        (m["exercise"], m["count"]) for m in report["mistakes"]]
    assert [(r["exercise"], int(r["zero"])) for r in tables["exercises.csv"]] == [
        (x["exercise"], x["zero"]) for x in report["exercises"]]
    assert [float(r["score"]) for r in tables["similar.csv"]] == [p["score"] for p in report["pairs"]]
    names = {r["student_id"]: r["name"] for r in tables["students.csv"]}
    assert names[graded_class["plan"]["blank"]] == "'" + FORMULA_NAME, "a name that is a formula stays text"


@pytest.mark.slow
def test_nothing_of_the_hidden_tests_reaches_the_report(graded_class):
    page = (graded_class["out"] / "report.html").read_text()
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", re.sub(r"<(style|script)\b.*?</\1>", "", page,
                                                                         flags=re.S))).split())
    everything = text + (graded_class["out"] / "report.json").read_text()
    leaked = [line for line in hidden_test_lines(LESSON) if " ".join(line.split()) in everything]
    assert not leaked, leaked
    source = nbformat.read(lesson_notebook(LESSON), as_version=4)
    released = nbformat.read(lesson_notebook(LESSON, LESSONS), as_version=4)
    hidden = "\n".join(re.findall(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS",
                                  "\n".join(c.source for c in source.cells), re.S))
    secrets = numbers_in(hidden) - numbers_in("\n".join(c.source for c in released.cells))
    labels = " ".join(m["label"] for m in graded_class["data"]["assignments"][0]["mistakes"])
    assert len(secrets) > 5 and not numbers_in(labels) & secrets, sorted(numbers_in(labels) & secrets)


IMAGES_DECODE_JS = """async () => {
  const bad = [];
  for (const img of document.images) {
    try { await img.decode(); } catch (e) { /* judged below */ }
    if (!img.complete || img.naturalWidth === 0) bad.push(img.getAttribute('src').slice(0, 60));
  }
  return {count: document.images.length, bad};
}"""


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def served_report(graded_class):
    browser.require_browser("class report's browser test")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(
        QuietHandler, directory=str(graded_class["out"])))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/report.html"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
@pytest.mark.browser
def test_the_page_opens_offline_with_no_console_error_and_every_image_decoded(graded_class, served_report):
    plan = graded_class["plan"]
    with browser.chromium_page(width=1300, height=900) as page:
        requests, console, dialogs = [], [], []
        page.on("request", lambda request: requests.append(request.url))
        page.on("console", lambda message: message.type in ("error", "warning") and console.append(message.text))
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(served_report, wait_until="networkidle")
        images = page.evaluate(IMAGES_DECODE_JS)
        assert not page.errors and not console and not dialogs, (page.errors, console, dialogs)
        assert [r for r in requests if not r.startswith("data:")] == [served_report], requests
        assert images["count"] >= 6 and not images["bad"], images
        assert page.locator("script").count() == 1 and page.locator("[onerror]").count() == 0
        text = page.inner_text("body")
        assert HOSTILE_NAME in text and "ValueError: <script>alert(1)</script>" in text
        assert "# </pre></details><script>alert(2)</script>" in text, "code is shown as text"
        table = page.locator("table.sortable").filter(has=page.locator("th", has_text="share of A"))
        scores = lambda: [float(x) for x in table.locator("tbody tr td:first-child").all_inner_texts()]  # noqa: E731
        assert scores() == sorted(scores(), reverse=True)
        table.locator("th", has_text="score").click()
        table.locator("th", has_text="score").click()
        assert scores() == sorted(scores()) and len(scores()) > 3, "a click on a header sorts the table"
        copied = {frozenset(pair) for pair in plan["pairs"]}
        details = page.locator("details[open]").filter(has=page.locator("pre"))
        assert details.count() == 3 and all(frozenset(re.findall(r"\b(5\d{3})\b", d)[:2]) in copied
                                            for d in details.all_inner_texts()), details.all_inner_texts()


@pytest.mark.slow
@pytest.mark.browser
def test_the_page_reads_the_same_without_its_script(graded_class, served_report):
    """Script off: the tables are in their most useful order already, and the first pairs' answers are open."""
    copied = {frozenset(pair) for pair in graded_class["plan"]["pairs"]}
    with browser.chromium_page() as page:
        context = page.context.browser.new_context(java_script_enabled=False)
        try:
            quiet = context.new_page()
            quiet.goto(served_report, wait_until="networkidle")
            table = quiet.locator("table.sortable").filter(has=quiet.locator("th", has_text="share of A"))
            rows = table.locator("tbody tr").all_inner_texts()[:3]
            assert {frozenset(re.findall(r"\b(5\d{3})\b", row)[:2]) for row in rows} == copied, rows
            assert quiet.locator("details[open] pre").count() >= 6
        finally:
            context.close()
