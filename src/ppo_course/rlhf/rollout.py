"""One fine-tuning batch of lesson 05: the run's config, the ``Rollout`` record, and ``collect``.

``collect`` samples completions from the policy, scores them with the reward model, and turns each
score into per-token KL-penalised rewards; the advantages are filled in afterwards (``ppo`` or
``grpo``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .language import PROMPT_WORDS, TOKEN_ID, last_token, real_tokens
from .policy import TinyLM, token_log_probs
from .reward import KLRewardFn

ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""What scores completions: ``score(prompts [B], completions [B, T]) -> [B]`` (a frozen ``RewardModel``)."""


@dataclass
class RLHFConfig:
    """Everything one fine-tuning run depends on. Typical ranges in brackets."""

    beta: float = 0.5            # KL penalty weight to the reference [0.01, 1]; 0 = no leash
    iterations: int = 40         # rollout + update cycles
    prompts_per_batch: int = 24  # prompts per rollout; each gets `group_size` completions
    group_size: int = 8          # completions per prompt (GRPO's group; PPO uses the same batch)
    epochs: int = 4              # K passes over each batch [2, 10]
    minibatches: int = 4         # per epoch, of batch_size // minibatches completions (a remainder makes one more)
    eps: float = 0.2             # the clip of lesson 03 [0.1, 0.3]
    lr: float = 1e-3             # policy learning rate (Adam)
    value_lr: float = 3e-3       # value network learning rate (PPO only)
    lam: float = 0.95            # GAE lambda; gamma is 1: a review is one short episode
    seed: int = 0

    @property
    def batch_size(self) -> int:
        return self.prompts_per_batch * self.group_size


@dataclass
class Rollout:
    """One batch of sampled completions and what each model said about them (all detached)."""

    prompts: torch.Tensor         # [B]
    completions: torch.Tensor     # [B, T]
    mask: torch.Tensor            # [B, T] bool, real tokens
    logp_old: torch.Tensor        # [B, T] under the policy that sampled them
    logp_ref: torch.Tensor        # [B, T] under the frozen reference
    scores: torch.Tensor          # [B] the reward model's score
    token_rewards: torch.Tensor   # [B, T] KL-penalised per-token rewards
    advantages: torch.Tensor      # [B, T]
    returns: torch.Tensor         # [B, T] value targets (PPO only; zeros for GRPO)


def sample_prompts(config: RLHFConfig, gen: torch.Generator) -> torch.Tensor:
    """``[B]`` prompt ids: ``prompts_per_batch`` random prompts, each repeated ``group_size`` times in a row."""
    first = TOKEN_ID[PROMPT_WORDS[0]]
    chosen = torch.randint(len(PROMPT_WORDS), (config.prompts_per_batch,), generator=gen) + first
    return chosen.repeat_interleave(config.group_size)


def collect(policy: TinyLM, reference: TinyLM, reward_model: ScoreFn, config: RLHFConfig,
            gen: torch.Generator, kl_reward: KLRewardFn) -> Rollout:
    """Generate a batch, score it, and turn the score into per-token KL-penalised rewards."""
    prompts = sample_prompts(config, gen)
    completions = policy.generate(prompts, gen)
    with torch.no_grad():
        logp_old = token_log_probs(policy, prompts, completions)
        logp_ref = token_log_probs(reference, prompts, completions)
        scores = reward_model(prompts, completions)
    rewards = torch.where(last_token(completions), scores[:, None], torch.zeros_like(logp_old))
    token_rewards = kl_reward(rewards, logp_old, logp_ref, config.beta) * real_tokens(completions)
    zeros = torch.zeros_like(logp_old)
    return Rollout(prompts, completions, real_tokens(completions), logp_old, logp_ref, scores,
                   token_rewards, zeros, zeros)
