"""Lesson 03's tests accept the reference answers and reject the wrong answers students really write."""
from __future__ import annotations

import pytest

from exercise_checks import answer_cases, assert_rejected, function_answer, run_tests_against
from grading_helpers import solution_answers

LESSON = "03-clipped-surrogate"


def answer(exercise: str, body: str) -> str:
    signature = {
        "clipped_surrogate": "def clipped_surrogate(ratio, adv, eps=0.2):",
        "clip_is_active": "def clip_is_active(ratio, adv, eps=0.2):",
        "ppo_policy_loss": "def ppo_policy_loss(logp_new, logp_old, adv, eps=0.2):",
    }[exercise]
    return function_answer(signature, body)


WRONG_ANSWERS = {
    "clipped_surrogate": {
        "max instead of min": "return torch.maximum(ratio * adv, torch.clamp(ratio, 1 - eps, 1 + eps) * adv)",
        "clips the product r*A": "return torch.minimum(ratio * adv, torch.clamp(ratio * adv, 1 - eps, 1 + eps))",
        "drops the min": "return torch.clamp(ratio, 1 - eps, 1 + eps) * adv",
        "drops the clip": "return ratio * adv",
        "clips the top only": "return torch.minimum(ratio * adv, torch.clamp(ratio, max=1 + eps) * adv)",
        "clips the bottom only": "return torch.minimum(ratio * adv, torch.clamp(ratio, min=1 - eps) * adv)",
        "hard-codes eps = 0.2": "return torch.minimum(ratio * adv, torch.clamp(ratio, 0.8, 1.2) * adv)",
        "reduces to a mean": "return torch.minimum(ratio * adv, torch.clamp(ratio, 1 - eps, 1 + eps) * adv).mean()",
        "numpy, no gradient": "import numpy as np\nr, a = ratio.detach().numpy(), adv.detach().numpy()\n"
                              "return torch.tensor(np.minimum(r * a, np.clip(r, 1 - eps, 1 + eps) * a))",
        "clamps the input in place": "clipped = ratio.detach().clamp_(1 - eps, 1 + eps)\n"
                                     "return torch.minimum(ratio * adv, clipped * adv)",
    },
    "clip_is_active": {
        "flags both sides for every sign": "return (ratio > 1 + eps) | (ratio < 1 - eps)",
        ">= at the boundary": "return ((adv > 0) & (ratio >= 1 + eps)) | ((adv < 0) & (ratio <= 1 - eps))",
        "sides swapped": "return ((adv > 0) & (ratio < 1 - eps)) | ((adv < 0) & (ratio > 1 + eps))",
        "forgets negative advantages": "return (adv > 0) & (ratio > 1 + eps)",
        "thinks A<0 is clipped above too": "return ((adv > 0) & (ratio > 1 + eps)) | "
                                           "((adv < 0) & ((ratio < 1 - eps) | (ratio > 1 + eps)))",
        "returns floats": "return (((adv > 0) & (ratio > 1 + eps)) | ((adv < 0) & (ratio < 1 - eps))).float()",
        "hard-codes eps = 0.2": "return ((adv > 0) & (ratio > 1.2)) | ((adv < 0) & (ratio < 0.8))",
    },
    "ppo_policy_loss": {
        "sign error": "return clipped_surrogate(torch.exp(logp_new - logp_old), adv, eps).mean()",
        "ratio inverted": "return -clipped_surrogate(torch.exp(logp_old - logp_new), adv, eps).mean()",
        "ratio not exponentiated": "return -clipped_surrogate(logp_new - logp_old, adv, eps).mean()",
        "ratio as a quotient of logs": "return -clipped_surrogate(logp_new / logp_old, adv, eps).mean()",
        "sum instead of mean": "return -clipped_surrogate(torch.exp(logp_new - logp_old), adv, eps).sum()",
        "eps not passed on": "return -clipped_surrogate(torch.exp(logp_new - logp_old), adv).mean()",
        "gradient cut": "return -clipped_surrogate(torch.exp(logp_new.detach() - logp_old), adv, eps).mean()",
        "unclipped surrogate": "return -(torch.exp(logp_new - logp_old) * adv).mean()",
    },
}

CASES = answer_cases(WRONG_ANSWERS)


@pytest.mark.parametrize("exercise", list(WRONG_ANSWERS))
def test_reference_answer_passes(exercise):
    run_tests_against(LESSON, exercise, solution_answers(LESSON)[exercise])


@pytest.mark.parametrize("exercise,name,body", CASES, ids=[f"{e}: {n}" for e, n, _ in CASES])
def test_wrong_answer_is_rejected(exercise, name, body):
    assert_rejected(LESSON, exercise, answer(exercise, body))
