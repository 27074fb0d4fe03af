"""Reference implementations for lesson 03, the clipped surrogate.

The learner writes these same three functions in the lesson; the widgets and the trainer use these
so that they work before the exercises are done.
"""
from __future__ import annotations

import torch


def clipped_surrogate(ratio: torch.Tensor, adv: torch.Tensor, eps: float = 0.2) -> torch.Tensor:
    """Elementwise L^CLIP = min(r * A, clip(r, 1 - eps, 1 + eps) * A).

    ``ratio`` and ``adv`` broadcast against each other; the result has their broadcast shape.
    The min keeps the more pessimistic term, which is why the clip caps gains but not losses.
    """
    return torch.minimum(ratio * adv, torch.clamp(ratio, 1 - eps, 1 + eps) * adv)


def clip_is_active(ratio: torch.Tensor, adv: torch.Tensor, eps: float = 0.2) -> torch.Tensor:
    """Boolean mask of where the clip makes d L^CLIP / d r zero.

    That is A > 0 with r > 1 + eps, or A < 0 with r < 1 - eps. At the boundaries themselves the
    unclipped term still carries the gradient, so the inequalities are strict. (Where A == 0 the
    objective is flat for every r, but not because of the clip: the mask is False there.)
    """
    return ((adv > 0) & (ratio > 1 + eps)) | ((adv < 0) & (ratio < 1 - eps))


def ppo_policy_loss(
    logp_new: torch.Tensor, logp_old: torch.Tensor, adv: torch.Tensor, eps: float = 0.2
) -> torch.Tensor:
    """The scalar policy loss to minimise: minus the mean clipped surrogate.

    The ratio comes from log-probabilities, r = exp(logp_new - logp_old), which is stabler than
    dividing probabilities. ``logp_old`` is data from the rollout, computed without gradients.
    """
    ratio = torch.exp(logp_new - logp_old)
    return -clipped_surrogate(ratio, adv, eps).mean()
