"""The per-token reward PPO and GRPO maximise in lesson 05: ``kl_penalized_reward`` (an exercise).

It turns the frozen reward model's score of a whole completion into one reward per token, each token
paying beta times its own log-ratio to the reference.
"""
from __future__ import annotations

from typing import Callable

import torch


def kl_penalized_reward(rewards: torch.Tensor, logp_policy: torch.Tensor, logp_reference: torch.Tensor,
                        beta: float) -> torch.Tensor:
    """Per-token RLHF reward: the reward model's score minus beta times the KL estimate.

    All three tensors are ``[B, T]``. ``rewards`` is zero except at each completion's last token,
    which holds the reward model's score of the whole completion. ``logp_policy`` and
    ``logp_reference`` are the log-probabilities that the policy being trained and the frozen
    reference gave the sampled tokens. ``logp_policy - logp_reference`` is the per-token estimate of
    KL(policy || reference): positive where the policy likes a token more than the reference does.
    Returns ``rewards - beta * (logp_policy - logp_reference)``, ``[B, T]``.
    """
    return rewards - beta * (logp_policy - logp_reference)


KLRewardFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, float], torch.Tensor]
