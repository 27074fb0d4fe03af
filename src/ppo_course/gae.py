"""Generalized Advantage Estimation (lesson 04): the reference ``compute_gae``.

The learner writes the same function in lesson 04; the trainer uses this one unless it is handed
another, so that the package trains before the exercise is done.
"""
from __future__ import annotations

import torch


def compute_gae(rewards: torch.Tensor, values: torch.Tensor, dones: torch.Tensor, last_value: torch.Tensor,
                gamma: float = 0.99, lam: float = 0.95) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages A_t = sum_k (gamma * lam)^k delta_{t+k} and the value targets R_t = A_t + V(s_t).

    Shapes: ``rewards``, ``values`` and ``dones`` are ``[T]`` or ``[T, N]`` (T steps of N parallel
    environments, time first); ``last_value`` is ``V(s_T)``, the value of the observation after the
    last step, shaped ``[]`` or ``[N]``. Returns ``(advantages, returns)``, both shaped like ``rewards``.

    ``dones[t] = 1`` means the episode ended with step t: nothing after step t belongs to it, so
    step t neither bootstraps from ``values[t + 1]`` (nor ``last_value``) nor receives credit from the
    advantages after it. The TD error is
        delta_t = r_t + gamma * V(s_{t+1}) * (1 - dones[t]) - V(s_t)
    and the recursion, run backwards, is A_t = delta_t + gamma * lam * (1 - dones[t]) * A_{t+1}.

    A time-limit truncation is not a true end: the trainer folds ``gamma * V(final observation)`` into
    ``rewards[t]`` (unless step t also terminated: then it is a true end) and then marks ``dones[t] = 1``,
    so this function never needs to tell the two apart.
    """
    not_done = 1.0 - dones.to(values.dtype)
    next_values = torch.cat([values[1:], last_value.reshape(1, *values.shape[1:])])
    deltas = rewards + gamma * next_values * not_done - values
    advantages = torch.zeros_like(values)
    running = torch.zeros_like(values[0])
    for t in reversed(range(len(values))):
        running = deltas[t] + gamma * lam * not_done[t] * running
        advantages[t] = running
    return advantages, advantages + values
