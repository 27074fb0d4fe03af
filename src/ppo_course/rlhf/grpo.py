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
    *sample* standard deviation (Bessel's correction, ``torch.std``'s default), and exactly 0 for every
    member of a group whose rewards are all equal (nothing to prefer, so nothing to learn). Equal
    rewards are recognised by comparing the rewards, not by ``std == 0``: in floating point the std
    of equal numbers can come out as a rounding error (about 1e-17 in float64, 1e-8 in float32).
    """
    groups = rewards.reshape(-1, group_size)
    mean, std = groups.mean(dim=1, keepdim=True), groups.std(dim=1, keepdim=True)
    tied = (groups == groups[:, :1]).all(dim=1, keepdim=True)
    safe_std = torch.where(tied, torch.ones_like(std), std)
    return torch.where(tied, torch.zeros_like(groups), (groups - mean) / safe_std).reshape(-1)


AdvantageFn = Callable[[torch.Tensor, int], torch.Tensor]


def grpo_advantages(rollout: Rollout, group_size: int, advantage_fn: AdvantageFn) -> Rollout:
    """One advantage per completion, from its group, given to every one of its tokens."""
    sequence_reward = rollout.token_rewards.sum(dim=1)   # score - beta * sum of per-token KL estimates
    per_completion = advantage_fn(sequence_reward, group_size)
    rollout.advantages = per_completion[:, None] * rollout.mask
    return rollout
