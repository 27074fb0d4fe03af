"""Lesson 05's tests accept the reference answers (and honest variants) and reject the wrong answers
students really write."""
from __future__ import annotations

import pytest

from conftest import SOLUTIONS
from exercise_checks import answer_cases, assert_rejected, function_answer, run_tests_against
from grading_helpers import solution_answers

LESSON = "05-ppo-for-rlhf"


@pytest.fixture(autouse=True)
def in_lesson_folder(monkeypatch):
    """The notebook reads its beta sweep from its own folder, as it does for a learner."""
    monkeypatch.chdir(SOLUTIONS / LESSON)


def answer(exercise: str, body: str) -> str:
    signature = {
        "kl_penalized_reward": "def kl_penalized_reward(rewards, logp_policy, logp_reference, beta):",
        "group_relative_advantages": "def group_relative_advantages(rewards, group_size):",
    }[exercise]
    return function_answer(signature, body)


WRONG_ANSWERS = {
    "kl_penalized_reward": {
        "KL direction reversed": "return rewards - beta * (logp_reference - logp_policy)",
        "penalty added (+beta)": "return rewards + beta * (logp_policy - logp_reference)",
        "forgets beta": "return rewards - (logp_policy - logp_reference)",
        "hard-codes beta = 0.1": "return rewards - 0.1 * (logp_policy - logp_reference)",
        "ratio of probabilities": "return rewards - beta * torch.exp(logp_policy - logp_reference)",
        "absolute log-ratio": "return rewards - beta * (logp_policy - logp_reference).abs()",
        "squared log-ratio": "return rewards - beta * (logp_policy - logp_reference) ** 2",
        "summed KL on every token": "return rewards - beta * (logp_policy - logp_reference).sum(-1, keepdim=True)",
        "summed per completion": "return (rewards - beta * (logp_policy - logp_reference)).sum(-1)",
        "penalty only, drops the reward": "return -beta * (logp_policy - logp_reference)",
        "modifies rewards in place": "rewards -= beta * (logp_policy - logp_reference)\nreturn rewards",
    },
    "group_relative_advantages": {
        "normalises over the whole batch": "return (rewards - rewards.mean()) / rewards.std()",
        "population std": "g = rewards.reshape(-1, group_size)\n"
                          "m, s = g.mean(1, keepdim=True), g.std(1, keepdim=True, unbiased=False)\n"
                          "return torch.where(s > 0, (g - m) / s, torch.zeros_like(g)).reshape(-1)",
        "divides by zero on ties": "g = rewards.reshape(-1, group_size)\n"
                                   "return ((g - g.mean(1, keepdim=True)) / g.std(1, keepdim=True)).reshape(-1)",
        "group mean, batch std": "g = rewards.reshape(-1, group_size)\n"
                                 "return ((g - g.mean(1, keepdim=True)) / (rewards.std() + 1e-8)).reshape(-1)",
        "centres only, no std": "g = rewards.reshape(-1, group_size)\nreturn (g - g.mean(1, keepdim=True)).reshape(-1)",
        "groups strided, not consecutive": "g = rewards.reshape(group_size, -1)\n"
                                           "m, s = g.mean(0, keepdim=True), g.std(0, keepdim=True)\n"
                                           "return torch.where(s > 0, (g - m) / s, torch.zeros_like(g)).reshape(-1)",
        "hard-codes groups of 4": "g = rewards.reshape(-1, 4)\nm, s = g.mean(1, keepdim=True), g.std(1, keepdim=True)\n"
                                  "return torch.where(s > 0, (g - m) / s, torch.zeros_like(g)).reshape(-1)",
        "returns [n_groups, G]": "g = rewards.reshape(-1, group_size)\nm, s = g.mean(1, keepdim=True), g.std(1, keepdim=True)\n"
                                 "return torch.where(s > 0, (g - m) / s, torch.zeros_like(g))",
        "ties give 1 instead of 0": "g = rewards.reshape(-1, group_size)\nm, s = g.mean(1, keepdim=True), g.std(1, keepdim=True)\n"
                                    "return torch.where(s > 0, (g - m) / s, torch.ones_like(g)).reshape(-1)",
        "ranks instead of rewards": "g = rewards.reshape(-1, group_size).argsort(1).argsort(1).double()\n"
                                    "m, s = g.mean(1, keepdim=True), g.std(1, keepdim=True)\n"
                                    "return torch.where(s > 0, (g - m) / s, torch.zeros_like(g)).reshape(-1)",
    },
}

# Honest variants a careful student may write: the tests must accept them too.
ACCEPTED_VARIANTS = {
    "group_relative_advantages": {
        "std plus a small eps": "g = rewards.reshape(-1, group_size)\n"
                                "return ((g - g.mean(1, keepdim=True)) / (g.std(1, keepdim=True) + 1e-6)).reshape(-1)",
        "nan_to_num after dividing": "g = rewards.reshape(-1, group_size)\n"
                                     "a = (g - g.mean(1, keepdim=True)) / g.std(1, keepdim=True)\n"
                                     "return torch.nan_to_num(a, nan=0.0).reshape(-1)",
    },
    "kl_penalized_reward": {
        "KL term named first": "kl = logp_policy - logp_reference\nreturn rewards - beta * kl",
    },
}

CASES = answer_cases(WRONG_ANSWERS)
VARIANTS = answer_cases(ACCEPTED_VARIANTS)


@pytest.mark.parametrize("exercise", list(WRONG_ANSWERS))
def test_reference_answer_passes(exercise):
    run_tests_against(LESSON, exercise, solution_answers(LESSON)[exercise])


@pytest.mark.parametrize("exercise,name,body", VARIANTS, ids=[f"{e}: {n}" for e, n, _ in VARIANTS])
def test_honest_variant_passes(exercise, name, body):
    run_tests_against(LESSON, exercise, answer(exercise, body))


@pytest.mark.parametrize("exercise,name,body", CASES, ids=[f"{e}: {n}" for e, n, _ in CASES])
def test_wrong_answer_is_rejected(exercise, name, body):
    assert_rejected(LESSON, exercise, answer(exercise, body))
