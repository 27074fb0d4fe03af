"""PPO's update on one rollout (lesson 04): K epochs of shuffled minibatches, with early stopping.

The learner writes ``ppo_update`` in lesson 04; the trainer runs it (this reference unless it is
handed another). It is the loop around the gradient step, not the step itself: ``step`` (the
trainer's ``gradient_step``: the loss, backpropagation, gradient clipping and one Adam step) and
``evaluate`` (log-probabilities under the current policy) come in as functions, so the loop sees
only tensors and can be tested, and graded, on its own.
"""
from __future__ import annotations

from typing import Callable

import torch


def ppo_update(
    batch: dict[str, torch.Tensor],
    step: Callable[[torch.Tensor, torch.Tensor], None],
    evaluate: Callable[[], torch.Tensor],
    epochs: int = 4,
    minibatch_size: int = 64,
    eps: float = 0.2,
    target_kl: float | None = None,
    norm_adv: bool = True,
    generator: torch.Generator | None = None,
) -> dict[str, float]:
    """K epochs over ``batch``: shuffle, split into minibatches, one ``step`` each; stop early on KL.

    ``batch["adv"]`` holds the GAE advantages and ``batch["logp"]`` log pi_old of the taken actions,
    one entry per transition. ``step(indices, adv)`` takes one gradient step on those transitions with
    those (normalised) advantages. ``evaluate()`` returns log pi_theta of every transition under the
    current policy. After each epoch the approximate KL(old || new), mean((r - 1) - log r) (unbiased,
    never negative), is measured on the whole batch;
    strictly above ``target_kl`` the remaining epochs are skipped. Returns the epochs run, the final approx KL
    and the clip fraction (share of transitions with |r - 1| > eps).
    """
    size = len(batch["adv"])
    for epoch in range(1, epochs + 1):  # noqa: B007 - epoch is returned below (the epochs run)
        order = torch.randperm(size, generator=generator)
        for start in range(0, size, minibatch_size):
            indices = order[start:start + minibatch_size]
            adv = batch["adv"][indices]
            if norm_adv and len(adv) > 1:
                adv = (adv - adv.mean()) / (adv.std() + 1e-8)
            step(indices, adv)
        log_ratio = evaluate() - batch["logp"]
        approx_kl = (log_ratio.exp() - 1 - log_ratio).mean()
        if target_kl is not None and approx_kl > target_kl:
            break
    clip_fraction = ((log_ratio.exp() - 1).abs() > eps).float().mean()
    return {"epochs": epoch, "approx_kl": float(approx_kl), "clip_fraction": float(clip_fraction)}
