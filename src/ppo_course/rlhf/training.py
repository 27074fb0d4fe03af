"""The fine-tuning loop of lesson 05: ``finetune`` (PPO or GRPO) and the curves it records, ``RunResult``.

Each iteration collects a rollout, estimates advantages (``ppo`` or ``grpo``), records what the
lesson plots, then runs the shared clipped update.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch

from .grpo import AdvantageFn, group_relative_advantages, grpo_advantages
from .language import is_review
from .policy import TinyLM, exact_kl, final_samples
from .ppo import ppo_advantages, update
from .reward import KLRewardFn, RewardModel, human_score, kl_penalized_reward
from .rollout import RLHFConfig, Rollout, collect


@dataclass
class RunResult:
    """Per-iteration curves and final samples of one run (plain lists: they go to JSON)."""

    method: str
    beta: float
    reward: list = field(default_factory=list)       # mean reward-model score
    human: list = field(default_factory=list)        # mean reader score
    kl: list = field(default_factory=list)           # mean KL(policy || reference) per completion, nats
    reviews: list = field(default_factory=list)      # fraction of completions that are real reviews
    seconds: list = field(default_factory=list)      # wall-clock since the start
    samples: list = field(default_factory=list)      # decoded completions at the end

    def final(self, last: int = 5) -> dict:
        """The mean of the last ``last`` iterations of each curve (one iteration is noisy)."""
        return {key: sum(getattr(self, key)[-last:]) / len(getattr(self, key)[-last:])
                for key in ("reward", "human", "kl", "reviews")}


def record(result: RunResult, policy: TinyLM, reference: TinyLM, rollout: Rollout, started: float) -> None:
    """Append this iteration's point to each curve of ``result`` (the rollout's scores, KL and reviews)."""
    result.reward.append(float(rollout.scores.mean()))
    result.human.append(float(human_score(rollout.prompts, rollout.completions).mean()))
    result.kl.append(float(exact_kl(policy, reference, rollout.prompts, rollout.completions).mean()))
    pairs = zip(rollout.prompts.tolist(), rollout.completions.tolist(), strict=True)
    result.reviews.append(sum(is_review(p, c) for p, c in pairs) / len(rollout.prompts))
    result.seconds.append(time.perf_counter() - started)


def finetune(reference: TinyLM, reward_model: RewardModel, config: RLHFConfig, method: str = "ppo",
             kl_reward: KLRewardFn = kl_penalized_reward, advantage_fn: AdvantageFn = group_relative_advantages,
             progress: Optional[Callable[[int, RunResult], None]] = None) -> tuple[TinyLM, RunResult]:
    """Fine-tune a copy of ``reference`` against ``reward_model`` with ``method`` "ppo" or "grpo".

    Each iteration: sample ``config.batch_size`` completions (``group_size`` per prompt), score them,
    turn scores into per-token rewards ``kl_reward(rewards, logp_policy, logp_reference, beta)``,
    estimate advantages (PPO: a value network and GAE; GRPO: ``advantage_fn`` within each group, no
    value network), then K epochs of clipped-surrogate updates. The learner's functions can be
    passed as ``kl_reward`` and ``advantage_fn``.
    """
    if method not in ("ppo", "grpo"):
        raise ValueError(f"method must be 'ppo' or 'grpo', got {method!r}")
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    policy = copy.deepcopy(reference).requires_grad_(True).train()
    optimizer = torch.optim.Adam(policy.parameters(), lr=config.lr)
    value_model = TinyLM(out_dim=1) if method == "ppo" else None
    value_optimizer = torch.optim.Adam(value_model.parameters(), lr=config.value_lr) if value_model else None
    result, started = RunResult(method, config.beta), time.perf_counter()
    for iteration in range(config.iterations):
        rollout = collect(policy, reference, reward_model, config, gen, kl_reward)
        if value_model is not None:
            rollout = ppo_advantages(rollout, value_model, config.lam)
        else:
            rollout = grpo_advantages(rollout, config.group_size, advantage_fn)
        record(result, policy, reference, rollout, started)
        update(policy, optimizer, rollout, config, gen, value_model, value_optimizer)
        if progress is not None:
            progress(iteration, result)
    result.samples = final_samples(policy)
    return policy.requires_grad_(False).eval(), result
