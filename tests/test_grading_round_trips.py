"""Every lesson through stock nbgrader: full marks, zero, and exactly one exercise's points lost."""
from __future__ import annotations

import pytest

from grading_helpers import grade_with_nbgrader, points, solution_answers, submission, with_edit

# One realistic mistake per lesson: (exercise, correct code, wrong code). Where later exercises use the
# mistaken one, their tests swap in the reference, so the mistake must cost only its own points.
MISTAKES = {
    "01-importance-sampling": ("is_estimate", "p_x / q_x", "q_x / p_x"),
    "02-trpo": ("categorical_kl", "log_p.exp() * (log_p - log_q)", "log_q.exp() * (log_q - log_p)"),
    "03-clipped-surrogate": ("clipped_surrogate", "torch.minimum", "torch.maximum"),
    "04-ppo-cartpole": ("compute_gae", " * not_done[t] * running", " * running"),  # ignores episode ends
    "05-ppo-for-rlhf": ("kl_penalized_reward", "(logp_policy - logp_reference)", "(logp_reference - logp_policy)"),
}


@pytest.mark.parametrize("lesson", list(MISTAKES))
def test_grading_round_trip(tmp_path, lesson):
    exercise, correct, wrong = MISTAKES[lesson]
    answers = solution_answers(lesson)
    mistaken = with_edit(answers, exercise, lambda source: source.replace(correct, wrong))
    scores = grade_with_nbgrader(tmp_path, lesson, {
        "perfect": submission(lesson, answers),
        "blank": submission(lesson, {}),
        "mistaken": submission(lesson, mistaken),
    })
    full = points(lesson)
    assert scores["perfect"] == full
    assert scores["blank"] == {name: 0 for name in full}
    assert scores["mistaken"] == dict(full, **{f"{exercise}_tests": 0}), (
        f"a wrong {exercise} must cost exactly its own points")
