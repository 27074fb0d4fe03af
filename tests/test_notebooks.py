"""Every notebook executes top to bottom: solutions cleanly, student versions up to the exercises.

A solution notebook's run is stock nbgrader's, grading the reference answers (``executed_copy``): the
notebook it runs is the solution itself, so one run per lesson also serves the stock round trip.

In the student form, exactly the cells that need an unfinished exercise (graded test cells and
cells tagged `requires-exercise`) must raise NotImplementedError: nothing is silently skipped, and
no other cell may fail.
"""
from __future__ import annotations

import pytest

from conftest import LESSONS, SOLUTIONS, notebooks
from notebook_execution import executed_copy, outcomes_of

pytestmark = pytest.mark.slow   # executes every notebook in both forms


def short(source: str) -> str:
    return source.strip().splitlines()[0][:70] if source.strip() else "<empty>"


@pytest.mark.parametrize("notebook", notebooks(SOLUTIONS), ids=lambda p: p.parent.name)
def test_solution_notebook_runs_cleanly(notebook):
    outcomes = outcomes_of(executed_copy(notebook))
    failures = [f"cell {o.index} ({short(o.source)}): {o.error}" for o in outcomes if o.error]
    assert not failures, "solution cells failed:\n" + "\n".join(failures)
    noisy = [f"cell {o.index} ({short(o.source)}): {o.stderr[:300]}" for o in outcomes if o.stderr]
    assert not noisy, "cells wrote to stderr (nbgrader scores such a test cell 0):\n" + "\n".join(noisy)


@pytest.mark.parametrize("notebook", notebooks(LESSONS), ids=lambda p: p.parent.name)
def test_student_notebook_runs_up_to_the_exercises(notebook):
    outcomes = outcomes_of(executed_copy(notebook))
    assert any(o.expected_to_raise for o in outcomes), "a lesson without exercises? nothing is tagged"
    problems = []
    for o in outcomes:
        if o.expected_to_raise and o.error != "NotImplementedError":
            problems.append(f"cell {o.index} ({short(o.source)}) should raise NotImplementedError, got {o.error}")
        if not o.expected_to_raise and o.error:
            problems.append(f"cell {o.index} ({short(o.source)}) failed with {o.error}; tag it "
                            "`requires-exercise` if it needs an exercise")
    assert not problems, "\n".join(problems)
