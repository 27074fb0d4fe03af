"""A diagonal Gaussian policy's log-probability and entropy (lesson 06): what changes for continuous actions.

PPO's ratio, clip and loss take log-probabilities and entropies as tensors; they never ask where the
numbers came from. Going from a categorical policy to a Gaussian one changes only these functions.
The learner writes all three in lesson 06; the trainer's Gaussian actor uses these references unless
it is handed the learner's (``trainer.train(..., gaussian_log_prob=, gaussian_entropy=)``).

Shapes: an action has D dimensions; ``mean`` and ``actions`` are ``[..., D]``; ``log_std`` is ``[D]``
(state-independent, as in the PPO paper) or ``[..., D]``. The log-probability of an action is a sum
over its dimensions, because a diagonal Gaussian is D independent 1-D Gaussians.
"""
from __future__ import annotations

import math

import torch


def gaussian_log_prob(mean: torch.Tensor, log_std: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """log pi(a|s) of ``actions`` under N(mean, diag(exp(log_std)^2)), summed over the last axis.

        log pi(a|s) = sum_d [ -(a_d - mu_d)^2 / (2 sigma_d^2) - log sigma_d - log(2 pi) / 2 ]

    ``mean``, ``actions``: ``[..., D]``; ``log_std``: ``[D]`` or ``[..., D]``. Returns ``[...]``.
    """
    z = (actions - mean) / log_std.exp()
    return (-0.5 * z ** 2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)


def gaussian_entropy(log_std: torch.Tensor) -> torch.Tensor:
    """Entropy of N(mu, diag(sigma^2)), summed over the last axis: sum_d [log sigma_d + (1 + log(2 pi)) / 2].

    It does not depend on the mean. ``log_std``: ``[..., D]``; returns ``[...]`` (one entropy per sample
    when the trainer passes ``[B, D]``). Unlike a categorical entropy it can be negative (a narrow
    density), and the entropy bonus pushes only on ``log_std``.
    """
    return (log_std + 0.5 * (1 + math.log(2 * math.pi))).sum(-1)


def tanh_squashed_log_prob(mean: torch.Tensor, log_std: torch.Tensor, pre_tanh: torch.Tensor) -> torch.Tensor:
    """log-density of a = tanh(u) with u ~ N(mean, diag(exp(log_std)^2)), given ``pre_tanh`` = u: ``[..., D]``.

    Change of variables: log p(a) = log N(u) - sum_d log(1 - tanh(u_d)^2), where
    log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)) is the same number without the catastrophic
    cancellation of 1 - tanh(u)^2 when |u| is large. Returns ``[...]``.
    """
    log_det_jacobian = 2 * (math.log(2) - pre_tanh - torch.nn.functional.softplus(-2 * pre_tanh))
    return gaussian_log_prob(mean, log_std, pre_tanh) - log_det_jacobian.sum(-1)


def share_outside_clip(shift: float, sigma: float, eps: float = 0.2) -> float:
    """P_{a ~ N(0, sigma^2)}(|r(a) - 1| > eps) for r = N(a; shift, sigma^2) / N(a; 0, sigma^2) (1-D, exact).

    log r(a) = (shift * a - shift^2 / 2) / sigma^2 is linear in a, so r leaves [1 - eps, 1 + eps] on two
    half-lines, whose probabilities under the old policy are normal tails: the clip fraction a mean
    move of ``shift`` would produce if nothing else changed.
    """
    if shift == 0:
        return 0.0
    bounds = sorted(sigma ** 2 * math.log(1 + side) / shift + shift / 2 for side in (-eps, eps))
    cdf = [0.5 * (1 + math.erf(b / (sigma * math.sqrt(2)))) for b in bounds]
    return cdf[0] + 1 - cdf[1]
