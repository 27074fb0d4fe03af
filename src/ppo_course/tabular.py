"""Exact returns on a small MDP (lesson 02): where TRPO's trust region comes from.

With a few states, everything a policy-gradient method estimates can be computed exactly by linear
algebra: the values V = (I - gamma P_pi)^-1 r_pi, the advantages, the discounted state visitation d_pi
and the return J. Lesson 02 uses them to put three curves side by side along one direction in
parameter space: the true J, lesson 01's surrogate L (the old policy's states and advantages), and
the lower bound of Schulman et al. (2015), Theorem 1, that TRPO's constraint comes from.

Conventions follow the TRPO paper: J is the expected discounted return E[sum_t gamma^t r_t] (not
scaled by 1 - gamma), d_pi(s) = (1 - gamma) sum_t gamma^t Pr(s_t = s) is a distribution, and
KL(pi_old || pi_new) is weighted by the old policy. Everything is float64.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class TabularMDP:
    """A finite MDP: ``transitions[s, a, s']`` = P(s'|s, a), ``rewards[s, a]`` the expected reward."""

    transitions: torch.Tensor   # [S, A, S]
    rewards: torch.Tensor       # [S, A]
    start: torch.Tensor         # [S], the distribution of s_0
    gamma: float


@dataclass(frozen=True)
class Evaluation:
    """A policy's exact values on an MDP. ``J`` keeps its autograd graph when the policy has one."""

    J: torch.Tensor       # scalar: E[sum_t gamma^t r_t] from the start distribution
    V: torch.Tensor       # [S]
    Q: torch.Tensor       # [S, A]
    A: torch.Tensor       # [S, A], Q - V
    d: torch.Tensor       # [S], discounted state visitation (sums to 1)


def exact_evaluation(mdp: TabularMDP, pi: torch.Tensor) -> Evaluation:
    """Exact policy evaluation of ``pi[s, a]`` = pi(a|s): two linear solves with I - gamma P_pi."""
    P_pi = torch.einsum("sa,sat->st", pi, mdp.transitions)        # state-to-state transitions under pi
    r_pi = (pi * mdp.rewards).sum(-1)
    system = torch.eye(len(r_pi), dtype=r_pi.dtype) - mdp.gamma * P_pi
    V = torch.linalg.solve(system, r_pi)                              # V = r_pi + gamma P_pi V
    Q = mdp.rewards + mdp.gamma * mdp.transitions @ V
    # d^T = (1 - gamma) start^T (I - gamma P_pi)^-1: the discounted sum of Pr(s_t = s) over t
    d = (1 - mdp.gamma) * torch.linalg.solve(system.T, mdp.start)
    return Evaluation(mdp.start @ V, V, Q, Q - V[:, None], d)


def softmax_policy(features: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """pi(a|s) = softmax over a of features[s] @ theta: ``features`` [S, k], ``theta`` [k, A] -> [S, A]."""
    return torch.softmax(features @ theta, dim=-1)


def kl_by_state(pi_old: torch.Tensor, pi_new: torch.Tensor) -> torch.Tensor:
    """KL(pi_old(.|s) || pi_new(.|s)) for every state s."""
    return (pi_old * (pi_old.log() - pi_new.log())).sum(-1)


def exact_surrogate(mdp: TabularMDP, old: Evaluation, pi_new: torch.Tensor) -> torch.Tensor:
    """L_old(pi_new) = J(pi_old) + 1/(1 - gamma) E_{s ~ d_old, a ~ pi_new}[A_old(s, a)].

    Lesson 01's surrogate with exact expectations: the old policy's states and advantages, the new
    policy's action probabilities (E_{a ~ pi_new}[A] = E_{a ~ pi_old}[r A]). The exact identity has
    d_new where this has d_old.
    """
    return old.J + (old.d[:, None] * pi_new * old.A).sum() / (1 - mdp.gamma)


def penalty_coefficient(mdp: TabularMDP, old: Evaluation) -> float:
    """C = 4 eps gamma / (1 - gamma)^2 with eps = max_{s,a} |A_old(s, a)| (TRPO paper, Theorem 1)."""
    return float(4 * old.A.abs().max() * mdp.gamma / (1 - mdp.gamma) ** 2)


def trpo_lower_bound(mdp: TabularMDP, old: Evaluation, pi_old: torch.Tensor, pi_new: torch.Tensor) -> torch.Tensor:
    """L_old(pi_new) - C max_s KL(pi_old || pi_new): a lower bound on J(pi_new) for every pi_new.

    Schulman et al. (2015), Theorem 1 bounds J(pi_new) >= L - C alpha^2 with alpha the largest total
    variation distance between the two policies over the states; D_TV^2 <= D_KL turns it into this.
    """
    return exact_surrogate(mdp, old, pi_new) - penalty_coefficient(mdp, old) * kl_by_state(pi_old, pi_new).max()


# --- the lesson's MDP: a corridor whose last cell is a ledge ----------------------------------------

LEDGE_CELLS = 4
LEFT, RIGHT = 0, 1
#: The policy's view of the cells: cells 2 and 3 share one feature, as similar inputs share a network's weights.
LEDGE_FEATURES = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0]],
                              dtype=torch.float64)


def ledge_corridor(view: float = 1.0, fall: float = 1.0, gamma: float = 0.9) -> TabularMDP:
    """Cells 0 to 3 in a row, starting in cell 0; each step goes left or right (a wall stops it at 0).

    Cell 3 is a ledge: stepping back (left) from it earns ``view``; stepping right goes over the edge,
    costs ``fall`` and starts again from cell 0. Every other step earns nothing.
    """
    transitions = torch.zeros(LEDGE_CELLS, 2, LEDGE_CELLS, dtype=torch.float64)
    rewards = torch.zeros(LEDGE_CELLS, 2, dtype=torch.float64)
    for cell in range(LEDGE_CELLS):
        transitions[cell, LEFT, max(cell - 1, 0)] = 1.0
        transitions[cell, RIGHT, cell + 1 if cell + 1 < LEDGE_CELLS else 0] = 1.0
    rewards[LEDGE_CELLS - 1, LEFT], rewards[LEDGE_CELLS - 1, RIGHT] = view, -fall
    start = torch.zeros(LEDGE_CELLS, dtype=torch.float64)
    start[0] = 1.0
    return TabularMDP(transitions, rewards, start, gamma)
