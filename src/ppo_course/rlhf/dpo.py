"""DPO for lesson 05: the policy learns from the labelled pairs directly, with no reward model and no sampling.

Rafailov et al. (2023) solve the KL-regularised objective of RLHF in closed form: its best policy is
``pi*(y|x) = pi_ref(y|x) exp(R(x, y) / beta) / Z(x)``, so any policy defines an *implicit reward*
``beta * log(pi(y|x) / pi_ref(y|x))`` up to a term of the prompt alone. Put that reward into the
Bradley-Terry loss and the prompt's term cancels in the difference: ``dpo_loss`` (an exercise).
``train_dpo`` minimises it over the pairs, epoch after epoch, as supervised learning.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn

from .policy import TinyLM, final_samples, token_log_probs
from .preferences import Preferences, preference_loss
from .rollout import RLHFConfig, ScoreFn, sample_prompts
from .training import RunResult, record

DPOLossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, float], torch.Tensor]


def sequence_log_probs(model: TinyLM, prompts: torch.Tensor, completions: torch.Tensor) -> torch.Tensor:
    """``log pi(y | x)`` of each whole completion, ``[B]``: the sum of its tokens' log-probabilities."""
    return token_log_probs(model, prompts, completions).sum(dim=1)


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, reference_chosen: torch.Tensor,
             reference_rejected: torch.Tensor, beta: float) -> torch.Tensor:
    """DPO's loss: the Bradley-Terry loss of the policy's implicit rewards, averaged over the pairs.

    All four are ``[N]`` log-probabilities of whole completions: ``policy_*`` under the policy being
    trained (they carry gradients), ``reference_*`` under the frozen reference. The implicit reward
    of a completion is ``beta * (log pi(y|x) - log pi_ref(y|x))``; the loss is ``preference_loss`` of
    the chosen and the rejected completions' implicit rewards.
    """
    implicit_chosen = beta * (policy_chosen - reference_chosen)
    implicit_rejected = beta * (policy_rejected - reference_rejected)
    return preference_loss(implicit_chosen, implicit_rejected)


@dataclass
class DPOConfig:
    """One DPO run. Typical ranges in brackets."""

    beta: float = 0.5            # the KL weight of the objective DPO solves, as PPO's beta [0.05, 1]
    epochs: int = 6              # passes over the labelled pairs [1, 10]
    pairs_per_batch: int = 64    # pairs per gradient step
    lr: float = 1e-3             # Adam
    eval_every: int = 16         # gradient steps between two measurements (a PPO iteration takes 16)
    seed: int = 0


def train_dpo(reference: TinyLM, pairs: Preferences, config: DPOConfig, reward_model: ScoreFn,
              loss_fn: DPOLossFn = dpo_loss) -> tuple[TinyLM, RunResult]:
    """Fine-tune a copy of ``reference`` on ``pairs`` with ``loss_fn`` (the learner's ``dpo_loss`` can be passed).

    Training never samples and never calls ``reward_model``: every ``eval_every`` steps, a batch of
    the size of a PPO rollout is sampled only to measure the policy (reward-model and reader scores,
    KL to the reference), off the CPU clock, so its curves sit beside PPO's.
    """
    torch.manual_seed(config.seed)
    gen, measure_gen = torch.Generator().manual_seed(config.seed), torch.Generator().manual_seed(config.seed + 1)
    policy = copy.deepcopy(reference).requires_grad_(True).train()
    optimizer = torch.optim.Adam(policy.parameters(), lr=config.lr)
    with torch.no_grad():
        reference_chosen = sequence_log_probs(reference, pairs.prompts, pairs.chosen)
        reference_rejected = sequence_log_probs(reference, pairs.prompts, pairs.rejected)
    result, trained, steps = RunResult("dpo", config.beta, config.epochs, config.seed), 0.0, 0

    def measure() -> None:
        prompts = sample_prompts(RLHFConfig(), measure_gen)
        completions = policy.generate(prompts, measure_gen)
        with torch.no_grad():
            record(result, policy, reference, prompts, completions, reward_model(prompts, completions), trained)

    measure()
    for _ in range(config.epochs):
        order = torch.randperm(len(pairs), generator=gen)
        for start in range(0, len(pairs), config.pairs_per_batch):
            started = time.process_time()
            idx = order[start:start + config.pairs_per_batch]
            batch = pairs[idx]
            loss = loss_fn(sequence_log_probs(policy, batch.prompts, batch.chosen),
                           sequence_log_probs(policy, batch.prompts, batch.rejected),
                           reference_chosen[idx], reference_rejected[idx], config.beta)
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
            optimizer.step()
            trained += time.process_time() - started
            steps += 1
            if steps % config.eval_every == 0:
                measure()
    result.samples, result.cpu_seconds = final_samples(policy), trained
    return policy.requires_grad_(False).eval(), result
