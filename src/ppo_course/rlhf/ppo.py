"""PPO on sequences for lesson 05: the value network's GAE advantages, and the clipped update GRPO shares.

The update is lesson 04's: ``ppo_course.update.ppo_update`` runs the K epochs of shuffled minibatches,
here of whole completions, and ``gradient_step`` is the step it takes on each: lesson 03's clipped
surrogate averaged over real tokens (and, for PPO, the value loss on the same completions).
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn as nn

from ..clipping import clipped_surrogate
from ..gae import compute_gae
from ..update import ppo_update
from .language import last_token
from .policy import TinyLM, token_log_probs
from .rollout import RLHFConfig, Rollout


def ppo_advantages(rollout: Rollout, value_model: TinyLM, lam: float) -> Rollout:
    """GAE over each completion's tokens (gamma = 1; the episode ends at the last real token)."""
    with torch.no_grad():
        values = value_model(rollout.prompts, rollout.completions)[..., 0] * rollout.mask
    dones = last_token(rollout.completions).float()
    advantages, returns = compute_gae(rollout.token_rewards.T, values.T, dones.T,
                                      torch.zeros(len(values)), gamma=1.0, lam=lam)
    advantages = advantages.T * rollout.mask
    mean = advantages[rollout.mask].mean()
    std = advantages[rollout.mask].std() + 1e-8
    rollout.advantages = (advantages - mean) / std * rollout.mask   # whitened over real tokens
    rollout.returns = returns.T * rollout.mask
    return rollout


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (values * mask).sum() / mask.sum().clamp(min=1)


def gradient_step(policy: TinyLM, optimizer: torch.optim.Optimizer, rollout: Rollout, config: RLHFConfig,
                  value_model: Optional[TinyLM] = None, value_optimizer: Optional[torch.optim.Optimizer] = None
                  ) -> Callable[[torch.Tensor, torch.Tensor], None]:
    """``step(idx, adv)`` for ``ppo_update``: one Adam step on the completions ``idx`` (and one of the value net)."""
    def step(idx: torch.Tensor, adv: torch.Tensor) -> None:
        prompts, completions, mask = rollout.prompts[idx], rollout.completions[idx], rollout.mask[idx]
        ratio = torch.exp(token_log_probs(policy, prompts, completions) - rollout.logp_old[idx])
        loss = -masked_mean(clipped_surrogate(ratio, adv, config.eps), mask)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        optimizer.step()
        if value_model is not None:
            values = value_model(prompts, completions)[..., 0]
            value_loss = masked_mean((values - rollout.returns[idx]) ** 2, mask)
            value_optimizer.zero_grad()
            value_loss.backward()
            value_optimizer.step()

    return step


def update(policy: TinyLM, optimizer: torch.optim.Optimizer, rollout: Rollout, config: RLHFConfig,
           gen: torch.Generator, value_model: Optional[TinyLM] = None,
           value_optimizer: Optional[torch.optim.Optimizer] = None) -> dict[str, float]:
    """K epochs of minibatch steps on the clipped surrogate (and, for PPO, the value loss).

    ``ppo_update`` shuffles the completions with ``gen`` and takes ``config.minibatches`` steps per
    epoch. It leaves the advantages as they come (PPO's are whitened over the batch, GRPO's within each
    group) and never stops early. Returns its stats; approx KL and clip fraction are over real tokens.
    """
    @torch.no_grad()
    def evaluate() -> torch.Tensor:
        return token_log_probs(policy, rollout.prompts, rollout.completions)[rollout.mask]

    batch = {"adv": rollout.advantages, "logp": rollout.logp_old[rollout.mask]}
    step = gradient_step(policy, optimizer, rollout, config, value_model, value_optimizer)
    return ppo_update(batch, step, evaluate, epochs=config.epochs, eps=config.eps, target_kl=None,
                      minibatch_size=len(rollout.prompts) // config.minibatches, norm_adv=False, generator=gen)


@torch.no_grad()
def update_size(policy: TinyLM, rollout: Rollout) -> dict[str, float]:
    """How far an update moved the policy on the batch it was computed from.

    ``kl``: KL(old || new) per completion, in nats (``(r - 1) - log r`` summed over each completion's
    tokens, averaged over completions); ``ratio_min`` and ``ratio_max``: the range of r = pi_new / pi_old
    over the batch's real tokens. The clip bounds neither: it only stops rewarding moves past 1 +- eps.
    """
    log_ratio = (token_log_probs(policy, rollout.prompts, rollout.completions) - rollout.logp_old) * rollout.mask
    ratio = log_ratio.exp()
    return {"kl": float(((ratio - 1 - log_ratio) * rollout.mask).sum(dim=1).mean()),
            "ratio_min": float(ratio[rollout.mask].min()), "ratio_max": float(ratio[rollout.mask].max())}
