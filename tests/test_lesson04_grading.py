"""Lesson 04 through stock nbgrader: full marks, zero, and exactly one exercise's points lost."""
from __future__ import annotations

from grading_helpers import grade_with_nbgrader, points, solution_answers, submission, with_edit

LESSON = "04-ppo-cartpole"


def test_grading_round_trip(tmp_path):
    answers = solution_answers(LESSON)
    ignores_dones = with_edit(answers, "compute_gae", lambda src: src.replace(" * not_done[t] * running", " * running"))
    scores = grade_with_nbgrader(tmp_path, LESSON, {
        "perfect": submission(LESSON, answers),
        "blank": submission(LESSON, {}),
        "ignoresdones": submission(LESSON, ignores_dones),
    })
    full = points(LESSON)
    assert scores["perfect"] == full
    assert scores["blank"] == {name: 0 for name in full}
    assert scores["ignoresdones"] == dict(full, compute_gae_tests=0), "a wrong GAE must cost exactly its own points"
