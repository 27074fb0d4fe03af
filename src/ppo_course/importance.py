"""Reference implementations for lesson 01: importance sampling and the surrogate objective.

The learner writes ``is_estimate``, ``probability_ratio`` and ``surrogate_objective`` in the lesson;
the widget uses these so that it works before the exercises are done. The Gaussian experiment below
is the plumbing behind the lesson's variance figure and slider.
"""
from __future__ import annotations

import functools
import math
from typing import Callable

import torch

#: What the Gaussian experiment estimates: E_p[f(x)] with f(x) = x^2 and p = N(0, 1), so the truth is 1.
TRUE_VALUE = 1.0

Estimator = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def is_estimate(f_x: torch.Tensor, p_x: torch.Tensor, q_x: torch.Tensor) -> torch.Tensor:
    """Importance-sampling estimate of E_p[f] from samples x ~ q: the mean of (p(x) / q(x)) f(x).

    All three tensors hold one value per sample along the last dimension (leading dimensions are
    independent batches, e.g. repeated trials); the mean is over the last dimension.
    """
    return (p_x / q_x * f_x).mean(dim=-1)


def probability_ratio(logp_new: torch.Tensor, logp_old: torch.Tensor) -> torch.Tensor:
    """r = pi_theta(a|s) / pi_old(a|s), from log-probabilities: exp(logp_new - logp_old).

    Subtracting logs before exponentiating never divides by a tiny probability, and gives exactly 1
    when the two policies agree.
    """
    return torch.exp(logp_new - logp_old)


def surrogate_objective(logp_new: torch.Tensor, logp_old: torch.Tensor, advantages: torch.Tensor) -> torch.Tensor:
    """The importance-sampled surrogate L(theta) = mean over the batch of r * A (a scalar to maximise).

    ``logp_old`` and ``advantages`` are data from the rollout; gradients flow through ``logp_new`` only.
    """
    return (probability_ratio(logp_new, logp_old) * advantages).mean()


def gaussian_is_trials(shift: float, n_samples: int = 100, n_trials: int = 2000, seed: int = 0,
                       estimator: Estimator = is_estimate) -> torch.Tensor:
    """``n_trials`` independent IS estimates of E_p[x^2], p = N(0, 1), each from ``n_samples`` draws of q = N(shift, 1).

    The same seeded standard normals are shifted for every ``shift`` (common random numbers), so a
    slider moving ``shift`` changes the picture smoothly instead of re-rolling the dice.
    """
    z = standard_normals(n_trials, n_samples, seed)
    x = z + shift
    # Normal densities written out: torch.distributions would validate and broadcast on every call.
    p_x = torch.exp(-0.5 * x ** 2) / math.sqrt(2 * math.pi)
    q_x = torch.exp(-0.5 * z ** 2) / math.sqrt(2 * math.pi)
    return estimator(x ** 2, p_x, q_x)


@functools.lru_cache(maxsize=4)
def standard_normals(n_trials: int, n_samples: int, seed: int) -> torch.Tensor:
    """Seeded N(0, 1) draws, shape [n_trials, n_samples], made once and shared (treat as read-only)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n_trials, n_samples, generator=generator, dtype=torch.float64)


def gaussian_is_variance(shift: float, n_samples: int = 100) -> float:
    """Exact variance of the IS estimate of E_p[x^2] with p = N(0, 1), q = N(shift, 1), n samples.

    The weight is w(x) = p(x)/q(x) = exp(-shift * x + shift^2 / 2). Completing the square,
    E_q[w^2 f^2] = exp(shift^2) E_{N(-shift, 1)}[x^4] = exp(shift^2) (shift^4 + 6 shift^2 + 3),
    and the variance of one term is that minus (E_p[f])^2 = 1. It grows like exp(shift^2).
    """
    second_moment = math.exp(shift ** 2) * (shift ** 4 + 6 * shift ** 2 + 3)
    return (second_moment - TRUE_VALUE ** 2) / n_samples

