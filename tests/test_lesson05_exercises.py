"""Lesson 05's tests accept the reference answers (and honest variants) and reject the wrong answers
students really write."""
from __future__ import annotations

import pytest

from conftest import SOLUTIONS
from exercise_checks import LessonExerciseChecks

LESSON = "05-ppo-for-rlhf"


@pytest.fixture(autouse=True)
def in_lesson_folder(monkeypatch):
    """The notebook reads its beta sweep from its own folder, as it does for a learner."""
    monkeypatch.chdir(SOLUTIONS / LESSON)



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
        "log-ratio clamped at 0": "return rewards - beta * (logp_policy - logp_reference).clamp(min=0)",
        "reward copied to every token": "return rewards.sum(-1, keepdim=True) - beta * (logp_policy - logp_reference)",
        "mean KL on every token, padding too":
            "return rewards - beta * (logp_policy - logp_reference).mean(-1, keepdim=True)",
        "batch-mean KL on every token": "return rewards - beta * (logp_policy - logp_reference).mean()",
        "penalty only on the last token": "return rewards - beta * (logp_policy - logp_reference) * (rewards != 0)",
        "whole KL charged on the last token": "kl = (logp_policy - logp_reference).sum(-1, keepdim=True)\n"
                                              "return rewards - beta * kl * (rewards != 0)",
        "difference of probabilities": "return rewards - beta * (logp_policy.exp() - logp_reference.exp())",
        "beta scales the reward too": "return beta * (rewards - (logp_policy - logp_reference))",
        "hard-codes beta = 0.5": "return rewards - 0.5 * (logp_policy - logp_reference)",
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
        "returns [n_groups, G]": "g = rewards.reshape(-1, group_size)\n"
                                 "m, s = g.mean(1, keepdim=True), g.std(1, keepdim=True)\n"
                                 "return torch.where(s > 0, (g - m) / s, torch.zeros_like(g))",
        "ties give 1 instead of 0": "g = rewards.reshape(-1, group_size)\n"
                                    "m, s = g.mean(1, keepdim=True), g.std(1, keepdim=True)\n"
                                    "return torch.where(s > 0, (g - m) / s, torch.ones_like(g)).reshape(-1)",
        "ranks instead of rewards": "g = rewards.reshape(-1, group_size).argsort(1).argsort(1).double()\n"
                                    "m, s = g.mean(1, keepdim=True), g.std(1, keepdim=True)\n"
                                    "return torch.where(s > 0, (g - m) / s, torch.zeros_like(g)).reshape(-1)",
        "std across groups (wrong axis)": "g = rewards.reshape(-1, group_size)\n"
                                          "m, s = g.mean(1, keepdim=True), g.std(0, keepdim=True)\n"
                                          "return torch.where(s > 0, (g - m) / s, torch.zeros_like(g)).reshape(-1)",
        "mean across groups (wrong axis)": "g = rewards.reshape(-1, group_size)\n"
                                           "m, s = g.mean(0, keepdim=True), g.std(1, keepdim=True)\n"
                                           "return torch.where(s > 0, (g - m) / s, torch.zeros_like(g)).reshape(-1)",
        "batch mean, group std": "g = rewards.reshape(-1, group_size)\ns = g.std(1, keepdim=True)\n"
                                 "return torch.where(s > 0, (g - rewards.mean()) / s, torch.zeros_like(g)).reshape(-1)",
        "divides by the variance": "g = rewards.reshape(-1, group_size)\n"
                                   "m, v = g.mean(1, keepdim=True), g.var(1, keepdim=True)\n"
                                   "return torch.where(v > 0, (g - m) / v, torch.zeros_like(g)).reshape(-1)",
        "std plus a large eps": "g = rewards.reshape(-1, group_size)\n"
                                "return ((g - g.mean(1, keepdim=True)) / (g.std(1, keepdim=True) + 0.1)).reshape(-1)",
        "ties give nan (nan_to_num forgotten)":
            "g = rewards.reshape(-1, group_size)\ns = g.std(1, keepdim=True)\n"
            "return torch.where(s > 0, (g - g.mean(1, keepdim=True)) / s, s / s).reshape(-1)",
    },
}

# The visible tests alone (what a student runs before submitting) must reject these, with a message that
# names the real bug: (answer body, a phrase the message must contain).
VISIBLE_WRONG_ANSWERS = {
    "kl_penalized_reward": {
        "KL direction reversed": ("return rewards - beta * (logp_reference - logp_policy)", "policy minus reference"),
        "penalty added (+beta)": ("return rewards + beta * (logp_policy - logp_reference)", "subtract beta"),
        "forgets beta": ("return rewards - (logp_policy - logp_reference)", "beta argument"),
        "hard-codes beta = 0.1": ("return rewards - 0.1 * (logp_policy - logp_reference)", "beta argument"),
        "hard-codes beta = 0.5": ("return rewards - 0.5 * (logp_policy - logp_reference)", "beta argument"),
        "ratio of probabilities": ("return rewards - beta * torch.exp(logp_policy - logp_reference)",
                                   "not a ratio of probabilities"),
        "absolute log-ratio": ("return rewards - beta * (logp_policy - logp_reference).abs()", "absolute value"),
        "squared log-ratio": ("return rewards - beta * (logp_policy - logp_reference) ** 2", "square"),
        "log-ratio clamped at 0": ("return rewards - beta * (logp_policy - logp_reference).clamp(min=0)",
                                   "clamp at 0"),
        "summed per completion": ("return (rewards - beta * (logp_policy - logp_reference)).sum(-1)",
                                  "no sum over tokens"),
        "summed KL on every token": ("return rewards - beta * (logp_policy - logp_reference).sum(-1, keepdim=True)",
                                     "not a sum or mean over the completion"),
        "mean KL on every token, padding too": (
            "return rewards - beta * (logp_policy - logp_reference).mean(-1, keepdim=True)", "padding slot"),
        "batch-mean KL on every token": ("return rewards - beta * (logp_policy - logp_reference).mean()",
                                         "or the batch"),
        "reward copied to every token": (
            "return rewards.sum(-1, keepdim=True) - beta * (logp_policy - logp_reference)",
            "do not copy R onto every token"),
        "penalty only on the last token": (
            "return rewards - beta * (logp_policy - logp_reference) * (rewards != 0)", "not only the last"),
        "whole KL charged on the last token": ("kl = (logp_policy - logp_reference).sum(-1, keepdim=True)\n"
                                               "return rewards - beta * kl * (rewards != 0)", "own log-ratio"),
        "penalty only, drops the reward": ("return -beta * (logp_policy - logp_reference)", "r_t is rewards itself"),
        "beta scales the reward too": ("return beta * (rewards - (logp_policy - logp_reference))",
                                       "r_t is rewards itself"),
        "difference of probabilities": ("return rewards - beta * (logp_policy.exp() - logp_reference.exp())",
                                        "logp_policy - logp_reference"),
        "modifies rewards in place": ("rewards -= beta * (logp_policy - logp_reference)\nreturn rewards", "in place"),
    },
    "group_relative_advantages": {
        "normalises over the whole batch": ("return (rewards - rewards.mean()) / rewards.std()", "own mean"),
        "population std": ("g = rewards.reshape(-1, group_size)\n"
                           "m, s = g.mean(1, keepdim=True), g.std(1, keepdim=True, unbiased=False)\n"
                           "return torch.where(s > 0, (g - m) / s, torch.zeros_like(g)).reshape(-1)", "population std"),
        "divides by zero on ties": ("g = rewards.reshape(-1, group_size)\n"
                                    "return ((g - g.mean(1, keepdim=True)) / g.std(1, keepdim=True)).reshape(-1)",
                                    "dividing by zero"),
        "ties give nan (nan_to_num forgotten)": (
            "g = rewards.reshape(-1, group_size)\ns = g.std(1, keepdim=True)\n"
            "return torch.where(s > 0, (g - g.mean(1, keepdim=True)) / s, s / s).reshape(-1)", "dividing by zero"),
        "group mean, batch std": ("g = rewards.reshape(-1, group_size)\n"
                                  "return ((g - g.mean(1, keepdim=True)) / (rewards.std() + 1e-8)).reshape(-1)",
                                  "its own std"),
        "std across groups (wrong axis)": ("g = rewards.reshape(-1, group_size)\n"
                                           "m, s = g.mean(1, keepdim=True), g.std(0, keepdim=True)\n"
                                           "return torch.where(s > 0, (g - m) / s, torch.zeros_like(g)).reshape(-1)",
                                           "its own std"),
        "mean across groups (wrong axis)": ("g = rewards.reshape(-1, group_size)\n"
                                            "m, s = g.mean(0, keepdim=True), g.std(1, keepdim=True)\n"
                                            "return torch.where(s > 0, (g - m) / s, torch.zeros_like(g)).reshape(-1)",
                                            "own mean"),
        "batch mean, group std":
            ("g = rewards.reshape(-1, group_size)\ns = g.std(1, keepdim=True)\n"
             "return torch.where(s > 0, (g - rewards.mean()) / s, torch.zeros_like(g)).reshape(-1)",
             "own mean"),
        "centres only, no std": ("g = rewards.reshape(-1, group_size)\n"
                                 "return (g - g.mean(1, keepdim=True)).reshape(-1)",
                                 "its own std"),
        "divides by the variance": ("g = rewards.reshape(-1, group_size)\n"
                                    "m, v = g.mean(1, keepdim=True), g.var(1, keepdim=True)\n"
                                    "return torch.where(v > 0, (g - m) / v, torch.zeros_like(g)).reshape(-1)",
                                    "its own std"),
        "std plus a large eps": ("g = rewards.reshape(-1, group_size)\n"
                                 "return ((g - g.mean(1, keepdim=True)) / (g.std(1, keepdim=True) + 0.1)).reshape(-1)",
                                 "its own std"),
        "groups strided, not consecutive": ("g = rewards.reshape(group_size, -1)\n"
                                            "m, s = g.mean(0, keepdim=True), g.std(0, keepdim=True)\n"
                                            "return torch.where(s > 0, (g - m) / s, torch.zeros_like(g)).reshape(-1)",
                                            "consecutive"),
        "hard-codes groups of 4": ("g = rewards.reshape(-1, 4)\n"
                                   "m, s = g.mean(1, keepdim=True), g.std(1, keepdim=True)\n"
                                   "return torch.where(s > 0, (g - m) / s, torch.zeros_like(g)).reshape(-1)",
                                   "group_size argument"),
        "returns [n_groups, G]": ("g = rewards.reshape(-1, group_size)\n"
                                  "m, s = g.mean(1, keepdim=True), g.std(1, keepdim=True)\n"
                                  "return torch.where(s > 0, (g - m) / s, torch.zeros_like(g))", "reshape back"),
        "ties give 1 instead of 0": ("g = rewards.reshape(-1, group_size)\n"
                                     "m, s = g.mean(1, keepdim=True), g.std(1, keepdim=True)\n"
                                     "return torch.where(s > 0, (g - m) / s, torch.ones_like(g)).reshape(-1)",
                                     "every advantage is 0"),
        "ranks instead of rewards": ("g = rewards.reshape(-1, group_size).argsort(1).argsort(1).double()\n"
                                     "m, s = g.mean(1, keepdim=True), g.std(1, keepdim=True)\n"
                                     "return torch.where(s > 0, (g - m) / s, torch.zeros_like(g)).reshape(-1)",
                                     "nothing to prefer"),
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
        "a loop over the groups": "out = torch.zeros_like(rewards)\n"
                                  "for start in range(0, len(rewards), group_size):\n"
                                  "    g = rewards[start:start + group_size]\n"
                                  "    if g.std() > 0:\n"
                                  "        out[start:start + group_size] = (g - g.mean()) / g.std()\n"
                                  "return out",
        "std_mean with correction=1": "g = rewards.reshape(-1, group_size)\n"
                                      "s, m = torch.std_mean(g, dim=1, keepdim=True, correction=1)\n"
                                      "return torch.where(s > 0, (g - m) / s.clamp(min=1e-12), 0.0).reshape(-1)",
    },
    "kl_penalized_reward": {
        "KL term named first": "kl = logp_policy - logp_reference\nreturn rewards - beta * kl",
        "terms rearranged": "return rewards + beta * logp_reference - beta * logp_policy",
        "explicit padding mask": "real = (logp_policy != 0) | (logp_reference != 0)\n"
                                 "return rewards - beta * (logp_policy - logp_reference) * real",
    },
}


class TestExercises(LessonExerciseChecks, lesson=LESSON, wrong_answers=WRONG_ANSWERS,
                    visible_wrong_answers=VISIBLE_WRONG_ANSWERS, right_answers=ACCEPTED_VARIANTS):
    """Lesson 05's graded exercises against the lesson's own test cells."""
