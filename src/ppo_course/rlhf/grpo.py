"""GRPO's advantages for lesson 05: each completion against the others of its prompt, no value network.

``group_relative_advantages`` is exercise 2; ``grpo_advantages`` gives each completion's advantage to
every one of its tokens.
"""
from __future__ import annotations

from typing import Callable

import torch

from .rollout import Rollout


def group_relative_advantages(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """GRPO's advantages: each reward standardised within its own group of completions.

    ``rewards`` is ``[B]`` with ``B = n_groups * group_size``; consecutive blocks of ``group_size``
    are completions of the same prompt. Returns ``[B]``: ``(r - group mean) / group std`` with the
    *sample* standard deviation (Bessel's correction, ``torch.std``'s default), and 0 for every
    member of a group whose rewards are all equal (nothing to prefer, so nothing to learn).
    """
    groups = rewards.reshape(-1, group_size)
    mean, std = groups.mean(dim=1, keepdim=True), groups.std(dim=1, keepdim=True)
    safe_std = torch.where(std > 0, std, torch.ones_like(std))
    return torch.where(std > 0, (groups - mean) / safe_std, torch.zeros_like(groups)).reshape(-1)


AdvantageFn = Callable[[torch.Tensor, int], torch.Tensor]


def grpo_advantages(rollout: Rollout, group_size: int, advantage_fn: AdvantageFn) -> Rollout:
    """One advantage per completion, from its group, given to every one of its tokens."""
    sequence_reward = rollout.token_rewards.sum(dim=1)   # score - beta * sum of per-token KL estimates
    per_completion = advantage_fn(sequence_reward, group_size)
    rollout.advantages = per_completion[:, None] * rollout.mask
    return rollout
