"""Lesson 03 through stock nbgrader: full marks, zero, and exactly one exercise's points lost."""
from __future__ import annotations

from grading_helpers import grade_with_nbgrader, points, solution_answers, submission, with_edit

LESSON = "03-clipped-surrogate"


def test_grading_round_trip(tmp_path):
    answers = solution_answers(LESSON)
    max_for_min = with_edit(answers, "clipped_surrogate", lambda src: src.replace("torch.minimum", "torch.maximum"))
    scores = grade_with_nbgrader(tmp_path, LESSON, {
        "perfect": submission(LESSON, answers),
        "blank": submission(LESSON, {}),
        "maxformin": submission(LESSON, max_for_min),
    })
    full = points(LESSON)
    assert scores["perfect"] == full
    assert scores["blank"] == {name: 0 for name in full}
    expected = dict(full, clipped_surrogate_tests=0)
    assert scores["maxformin"] == expected, "a wrong clipped_surrogate must cost exactly its own points"
