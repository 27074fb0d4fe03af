"""Lesson 05 through stock nbgrader: full marks, zero, and exactly one exercise's points lost."""
from __future__ import annotations

from grading_helpers import grade_with_nbgrader, points, solution_answers, submission, with_edit

LESSON = "05-ppo-for-rlhf"


def test_grading_round_trip(tmp_path):
    answers = solution_answers(LESSON)
    reversed_kl = with_edit(answers, "kl_penalized_reward",
                            lambda src: src.replace("(logp_policy - logp_reference)", "(logp_reference - logp_policy)"))
    scores = grade_with_nbgrader(tmp_path, LESSON, {
        "perfect": submission(LESSON, answers),
        "blank": submission(LESSON, {}),
        "reversedkl": submission(LESSON, reversed_kl),
    })
    full = points(LESSON)
    assert scores["perfect"] == full
    assert scores["blank"] == {name: 0 for name in full}
    expected = dict(full, kl_penalized_reward_tests=0)
    assert scores["reversedkl"] == expected, "a wrong kl_penalized_reward must cost exactly its own points"
