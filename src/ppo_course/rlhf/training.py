"""The fine-tuning loop of lesson 05: ``finetune`` (PPO or GRPO) and the curves a run records, ``RunResult``.

Each iteration collects a rollout, estimates advantages (``ppo`` or ``grpo``), records what the
lesson plots, then runs the shared clipped update. The clock is the process's CPU time, split into
the rollout (sampling, scoring, advantages) and the update; recording the curves is not counted.
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
from .ppo import ppo_advantages, update, update_size
from .reader import human_score
from .reward import KLRewardFn, kl_penalized_reward
from .rollout import RLHFConfig, ScoreFn, collect


@dataclass
class RunResult:
    """Per-point curves and final samples of one run (plain lists: they go to JSON).

    PPO and GRPO record a point per iteration, from that iteration's rollout; DPO one per
    ``eval_every`` gradient steps, from a batch sampled for the purpose.
    """

    method: str
    beta: float
    epochs: int = 0                                   # K: passes over each batch (PPO, GRPO) or over the pairs (DPO)
    seed: int = 0
    reward: list = field(default_factory=list)        # mean reward-model score
    human: list = field(default_factory=list)         # mean reader score
    kl: list = field(default_factory=list)            # mean KL(policy || reference) per completion, nats
    reviews: list = field(default_factory=list)       # fraction of completions that are real reviews
    seconds: list = field(default_factory=list)       # CPU seconds of training before this point
    rollout_seconds: list = field(default_factory=list)   # per iteration: sampling, scoring, advantages
    update_seconds: list = field(default_factory=list)    # per iteration: the K epochs of the update
    update_kl: list = field(default_factory=list)     # per iteration: KL(old || new) per completion after the update
    update_ratio: list = field(default_factory=list)  # per iteration: [min r, max r] over the batch's tokens after it
    samples: list = field(default_factory=list)       # decoded completions at the end
    cpu_seconds: float = 0.0                          # CPU seconds the whole training took (measurement aside)

    def final(self, last: int = 5) -> dict:
        """The mean of the last ``last`` points of each curve (one point is noisy)."""
        return {key: sum(getattr(self, key)[-last:]) / len(getattr(self, key)[-last:])
                for key in ("reward", "human", "kl", "reviews")}


def record(result: RunResult, policy: TinyLM, reference: TinyLM, prompts: torch.Tensor, completions: torch.Tensor,
           scores: torch.Tensor, cpu_seconds: float) -> None:
    """Append one point to each curve of ``result``: the batch's scores, reader scores, KL and reviews."""
    result.reward.append(float(scores.mean()))
    result.human.append(float(human_score(prompts, completions).mean()))
    result.kl.append(float(exact_kl(policy, reference, prompts, completions).mean()))
    pairs = zip(prompts.tolist(), completions.tolist(), strict=True)
    result.reviews.append(sum(is_review(p, c) for p, c in pairs) / len(prompts))
    result.seconds.append(cpu_seconds)


def finetune(reference: TinyLM, reward_model: ScoreFn, config: RLHFConfig, method: str = "ppo",
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
    result, trained = RunResult(method, config.beta, config.epochs, config.seed), 0.0
    for iteration in range(config.iterations):
        started = time.process_time()
        rollout = collect(policy, reference, reward_model, config, gen, kl_reward)
        if value_model is not None:
            rollout = ppo_advantages(rollout, value_model, config.lam)
        else:
            rollout = grpo_advantages(rollout, config.group_size, advantage_fn)
        rolled_out = time.process_time()
        record(result, policy, reference, rollout.prompts, rollout.completions, rollout.scores, trained)
        recorded = time.process_time()
        update(policy, optimizer, rollout, config, gen, value_model, value_optimizer)
        updated = time.process_time()
        moved = update_size(policy, rollout)
        result.rollout_seconds.append(rolled_out - started)
        result.update_seconds.append(updated - recorded)
        result.update_kl.append(moved["kl"])
        result.update_ratio.append([moved["ratio_min"], moved["ratio_max"]])
        trained += (rolled_out - started) + (updated - recorded)
        if progress is not None:
            progress(iteration, result)
    result.samples, result.cpu_seconds = final_samples(policy), trained
    return policy.requires_grad_(False).eval(), result
