"""Every lesson through stock nbgrader, for instructors who use it directly: the lessons are plain nbgrader
assignments, and a complete submission gets full marks there too.

Blank and mistaken submissions (each mistake costs exactly its own points) are graded through the
course's own grader for every lesson in test_grading_every_lesson.py, with the same MISTAKES.
"""
from __future__ import annotations

import pytest

from grading_helpers import points, stock_autograde

pytestmark = pytest.mark.slow   # grades every lesson with nbgrader and the course's grader

# One realistic mistake per lesson: (exercise, correct code, wrong code). Where later exercises use the
# mistaken one, their tests swap in the reference, so the mistake must cost only its own points.
MISTAKES = {
    "01-importance-sampling": ("is_estimate", "p_x / q_x", "q_x / p_x"),
    "02-trpo": ("categorical_kl", "log_p.exp() * (log_p - log_q)", "log_q.exp() * (log_q - log_p)"),
    "03-clipped-surrogate": ("clipped_surrogate", "torch.minimum", "torch.maximum"),
    "04-ppo-cartpole": ("compute_gae", " * not_done[t] * running", " * running"),  # ignores episode ends
    "05-ppo-for-rlhf": ("kl_penalized_reward", "(logp_policy - logp_reference)", "(logp_reference - logp_policy)"),
    "06-continuous-control": ("gaussian_log_prob", ").sum(-1)", ").mean(-1)"),   # a mean over action dimensions
}


@pytest.mark.parametrize("lesson", list(MISTAKES))
def test_stock_nbgrader_gives_full_marks(lesson):
    assert stock_autograde(lesson).scores == points(lesson), (
        f"stock nbgrader must give the reference answers of {lesson} full marks in every test cell")
