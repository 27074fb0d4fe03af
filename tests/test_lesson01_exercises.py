"""Lesson 01's tests accept the reference answers and reject the wrong answers students really write."""
from __future__ import annotations

import pytest

from exercise_checks import answer_cases, assert_rejected, function_answer, run_tests_against
from grading_helpers import solution_answers

LESSON = "01-importance-sampling"

SIGNATURES = {
    "is_estimate": "def is_estimate(f_x, p_x, q_x):",
    "probability_ratio": "def probability_ratio(logp_new, logp_old):",
    "surrogate_objective": "def surrogate_objective(logp_new, logp_old, advantages):",
}


def answer(exercise: str, body: str) -> str:
    return function_answer(SIGNATURES[exercise], body)


WRONG_ANSWERS = {
    "is_estimate": {
        "q/p instead of p/q": "return (q_x / p_x * f_x).mean(dim=-1)",
        "sum instead of mean": "return (p_x / q_x * f_x).sum(dim=-1)",
        "no weights (plain mean under q)": "return f_x.mean(dim=-1)",
        "mean over every dimension": "return (p_x / q_x * f_x).mean()",
        "mean over the first dimension": "return (p_x / q_x * f_x).mean(dim=0)",
        "product of means": "return (p_x / q_x).mean(dim=-1) * f_x.mean(dim=-1)",
        "self-normalised estimate": "w = p_x / q_x\nreturn (w * f_x).sum(dim=-1) / w.sum(dim=-1)",
        "divides in place": "p_x /= q_x\nreturn (p_x * f_x).mean(dim=-1)",
    },
    "probability_ratio": {
        "inverted (old over new)": "return torch.exp(logp_old - logp_new)",
        "no exp (log-ratio)": "return logp_new - logp_old",
        "quotient of log-probabilities": "return logp_new / logp_old",
        "divides probabilities (underflows)": "return torch.exp(logp_new) / torch.exp(logp_old)",
        "first-order approximation": "return 1 + logp_new - logp_old",
        "gradient cut": "return torch.exp(logp_new.detach() - logp_old)",
        "numpy round trip": "import numpy as np\n"
                            "return torch.as_tensor(np.exp(logp_new.detach().numpy() - logp_old.detach().numpy()))",
    },
    "surrogate_objective": {
        "sum instead of mean": "return (probability_ratio(logp_new, logp_old) * advantages).sum()",
        "returns the loss (minus L)": "return -(probability_ratio(logp_new, logp_old) * advantages).mean()",
        "forgets the ratio": "return advantages.mean()",
        "no exp (log-ratio times A)": "return ((logp_new - logp_old) * advantages).mean()",
        "inverted ratio": "return (probability_ratio(logp_old, logp_new) * advantages).mean()",
        "REINFORCE pseudo-objective (log pi times A)": "return (logp_new * advantages).mean()",
        "per-sample values, not a scalar": "return probability_ratio(logp_new, logp_old) * advantages",
        "gradient cut": "return (probability_ratio(logp_new.detach(), logp_old) * advantages).mean()",
    },
}

CASES = answer_cases(WRONG_ANSWERS)


@pytest.mark.parametrize("exercise", list(WRONG_ANSWERS))
def test_reference_answer_passes(exercise):
    run_tests_against(LESSON, exercise, solution_answers(LESSON)[exercise])


@pytest.mark.parametrize("exercise,name,body", CASES, ids=[f"{e}: {n}" for e, n, _ in CASES])
def test_wrong_answer_is_rejected(exercise, name, body):
    assert_rejected(LESSON, exercise, answer(exercise, body))


ALTERNATIVE_CORRECT_ANSWERS = {
    "is_estimate": {"torch.mean of the product": "weights = p_x / q_x\nreturn torch.mean(weights * f_x, dim=-1)"},
    "probability_ratio": {"log-space subtraction via torch.sub": "return torch.sub(logp_new, logp_old).exp()"},
    "surrogate_objective": {"inline ratio": "return torch.mean(torch.exp(logp_new - logp_old) * advantages)"},
}

ALTERNATIVES = answer_cases(ALTERNATIVE_CORRECT_ANSWERS)


@pytest.mark.parametrize("exercise,name,body", ALTERNATIVES, ids=[f"{e}: {n}" for e, n, _ in ALTERNATIVES])
def test_alternative_correct_answer_passes(exercise, name, body):
    run_tests_against(LESSON, exercise, answer(exercise, body))
