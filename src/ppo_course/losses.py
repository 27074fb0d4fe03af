"""The full PPO loss (lesson 04): clipped policy loss + c1 * value loss - c2 * entropy bonus.

The learner writes ``ppo_loss`` in lesson 04 (building on lesson 03's ``ppo_policy_loss``); the
trainer uses this reference unless it is handed another.
"""
from __future__ import annotations

import torch

from .clipping import ppo_policy_loss


def ppo_loss(logp_new: torch.Tensor, logp_old: torch.Tensor, adv: torch.Tensor, values: torch.Tensor,
             returns: torch.Tensor, entropy: torch.Tensor, eps: float = 0.2, c1: float = 0.5,
             c2: float = 0.01) -> torch.Tensor:
    """The scalar loss one PPO gradient step minimises.

        loss = -mean(L^CLIP) + c1 * mean((V - R)^2) - c2 * mean(entropy)

    It is the lesson's objective L = L^CLIP - c1 L^V + c2 S with its sign flipped (optimisers
    minimise). All arguments are ``[B]`` tensors over one minibatch: log-probabilities of the taken
    actions under the current and the rollout policy, advantages (already normalised), the critic's
    current values, the GAE returns, and the per-state policy entropy. Minus the entropy, because
    a higher entropy (more exploration) must lower the loss.
    """
    policy_loss = ppo_policy_loss(logp_new, logp_old, adv, eps)
    value_loss = ((values - returns) ** 2).mean()
    return policy_loss + c1 * value_loss - c2 * entropy.mean()
