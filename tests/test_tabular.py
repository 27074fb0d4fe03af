"""Unit tests of lesson 02's exact MDP module (tabular): the values, the identity and the bound it plots."""
from __future__ import annotations

import pytest
import torch

from ppo_course import tabular

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def random_mdp(seed: int, states: int = 5, actions: int = 3, gamma: float = 0.9) -> tabular.TabularMDP:
    gen = torch.Generator().manual_seed(seed)
    transitions = torch.rand(states, actions, states, generator=gen, dtype=torch.float64) ** 3
    start = torch.rand(states, generator=gen, dtype=torch.float64)
    return tabular.TabularMDP(transitions / transitions.sum(-1, keepdim=True),
                              torch.randn(states, actions, generator=gen, dtype=torch.float64),
                              start / start.sum(), gamma)


def random_policy(seed: int, states: int = 5, actions: int = 3, scale: float = 1.0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.softmax(scale * torch.randn(states, actions, generator=gen, dtype=torch.float64), -1)


def test_exact_evaluation_solves_the_bellman_equations():
    mdp, pi = random_mdp(0), random_policy(1)
    ev = tabular.exact_evaluation(mdp, pi)
    P_pi = torch.einsum("sa,sat->st", pi, mdp.transitions)
    assert torch.allclose(ev.V, (pi * mdp.rewards).sum(-1) + mdp.gamma * P_pi @ ev.V), "V must be r_pi + gamma P_pi V"
    assert torch.allclose((pi * ev.A).sum(-1), torch.zeros(5, dtype=torch.float64), atol=1e-12), (
        "the advantages must average to 0 under the policy in every state")
    assert torch.isclose(ev.J, mdp.start @ ev.V), "J must be the start distribution's average of V"
    # d = (1 - gamma) sum_t gamma^t start P_pi^t, summed directly (gamma^400 is negligible).
    d, visits = torch.zeros(5, dtype=torch.float64), mdp.start.clone()
    for t in range(400):
        d += (1 - mdp.gamma) * mdp.gamma ** t * visits
        visits = visits @ P_pi
    assert torch.allclose(ev.d, d, atol=1e-10), f"d must be the discounted visitation: {ev.d.tolist()} vs {d.tolist()}"
    assert torch.isclose(ev.d.sum(), torch.tensor(1.0, dtype=torch.float64)), "d must sum to 1"


@pytest.mark.parametrize("seed", range(5))
def test_the_performance_difference_identity_holds(seed):
    mdp = random_mdp(seed)
    pi_old, pi_new = random_policy(100 + seed), random_policy(200 + seed, scale=2.0)
    old, new = tabular.exact_evaluation(mdp, pi_old), tabular.exact_evaluation(mdp, pi_new)
    advantage_side = (new.d[:, None] * pi_new * old.A).sum() / (1 - mdp.gamma)
    assert torch.isclose(new.J - old.J, advantage_side, atol=1e-10), (
        f"J(new) - J(old) = {float(new.J - old.J):.6f} must equal 1/(1-gamma) E_(d_new, pi_new)[A_old] = "
        f"{float(advantage_side):.6f}")
    surrogate = tabular.exact_surrogate(mdp, old, pi_new)
    assert not torch.isclose(surrogate, new.J, atol=1e-6), "with other states visited, L must differ from J"


def test_the_surrogate_touches_j_to_first_order_at_the_old_policy():
    mdp = random_mdp(3)
    features = torch.randn(5, 4, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    theta_old = torch.randn(4, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    pi_old = tabular.softmax_policy(features, theta_old)
    old = tabular.exact_evaluation(mdp, pi_old)
    theta = theta_old.clone().requires_grad_(True)
    (grad_J,) = torch.autograd.grad(tabular.exact_evaluation(mdp, tabular.softmax_policy(features, theta)).J, theta)
    (grad_L,) = torch.autograd.grad(tabular.exact_surrogate(mdp, old, tabular.softmax_policy(features, theta)), theta)
    assert torch.isclose(tabular.exact_surrogate(mdp, old, pi_old), old.J), "L(pi_old) must equal J(pi_old)"
    assert torch.allclose(grad_L, grad_J, atol=1e-10), "L and J must have the same gradient at theta_old"


@pytest.mark.parametrize("seed", range(5))
def test_the_trpo_bound_never_exceeds_j(seed):
    mdp = random_mdp(seed, gamma=0.8)
    pi_old = random_policy(300 + seed)
    old = tabular.exact_evaluation(mdp, pi_old)
    assert torch.isclose(tabular.trpo_lower_bound(mdp, old, pi_old, pi_old), old.J), "the bound must touch J at pi_old"
    for k in range(20):
        pi_new = random_policy(1000 * seed + k, scale=0.1 * k)
        bound, J = tabular.trpo_lower_bound(mdp, old, pi_old, pi_new), tabular.exact_evaluation(mdp, pi_new).J
        assert bound <= J + 1e-12, f"L - C max KL = {float(bound):.5f} must be at most J = {float(J):.5f}"
    eps = float(old.A.abs().max())
    assert tabular.penalty_coefficient(mdp, old) == pytest.approx(4 * eps * 0.8 / 0.2 ** 2), (
        "C = 4 eps gamma / (1 - gamma)^2")


def test_the_ledge_corridor_is_as_documented():
    mdp = tabular.ledge_corridor(view=1.0, fall=2.0, gamma=0.9)
    assert torch.allclose(mdp.transitions.sum(-1), torch.ones(4, 2, dtype=torch.float64)), "rows must be distributions"
    assert mdp.transitions[0, tabular.LEFT, 0] == 1 and mdp.transitions[2, tabular.RIGHT, 3] == 1, "walls and steps"
    assert mdp.transitions[3, tabular.RIGHT, 0] == 1, "going over the ledge restarts from cell 0"
    assert mdp.rewards[3].tolist() == [1.0, -2.0] and not mdp.rewards[:3].any(), "only the ledge pays or costs"
    assert torch.equal(tabular.LEDGE_FEATURES[2], tabular.LEDGE_FEATURES[3]), "cells 2 and 3 look alike to the policy"
