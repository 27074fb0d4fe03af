"""Reference implementations and plumbing for lesson 02: TRPO's KL trust region.

The learner writes ``categorical_kl``, ``conjugate_gradient``, ``trpo_step_size`` and
``backtracking_line_search`` in the lesson. This module holds the same four functions (the widget and
``trpo_update`` use them, so both work before the exercises are done) and the plumbing the lesson
should not have to show: a tiny softmax policy, a seeded CartPole-v1 batch, and a view of the policy
as a function of one flat parameter vector theta. ``TRPOProblem`` and ``trpo_update`` take the four
functions as arguments (the references by default): lesson 02 runs them with the learner's, and prints
their source where it explains the surrogate, the mean KL, F v and the update.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from .importance import surrogate_objective

DELTA = 0.01  # the KL radius of the trust region TRPO's paper uses

Evaluate = Callable[[torch.Tensor], "tuple[float, float]"]
KL = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]   # categorical_kl(p_logits, q_logits)


# --- the four exercises, reference versions --------------------------------------------------

def categorical_kl(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """KL(p || q) for each row of two batches of logits ``[..., n_actions]``; returns ``[...]``.

    Logits are unnormalised, so both go through log_softmax first. The sum is weighted by p, the
    first argument: in TRPO that is pi_old, the policy that collected the data.
    """
    log_p = torch.log_softmax(p_logits, dim=-1)
    log_q = torch.log_softmax(q_logits, dim=-1)
    return (log_p.exp() * (log_p - log_q)).sum(dim=-1)


def conjugate_gradient(Avp: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor, iters: int = 10,
                       tol: float = 1e-10) -> torch.Tensor:
    """Approximately solve A x = b for a symmetric positive-definite A known only through ``Avp(v) = A v``.

    Starts from x = 0 and stops after ``iters`` products or once the squared residual r.r drops below
    ``tol``. The check comes before each product, so a solved system (or b = 0) costs no extra call.
    """
    x = torch.zeros_like(b)
    r = b.clone()          # residual b - A x, with x = 0
    p = r.clone()          # search direction
    r_dot_r = r @ r
    for _ in range(iters):
        if r_dot_r < tol:
            break
        Ap = Avp(p)
        alpha = r_dot_r / (p @ Ap)
        x = x + alpha * p
        r = r - alpha * Ap
        new_r_dot_r = r @ r
        p = r + (new_r_dot_r / r_dot_r) * p
        r_dot_r = new_r_dot_r
    return x


def trpo_step_size(s: torch.Tensor, Fs: torch.Tensor, delta: float = DELTA) -> torch.Tensor:
    """The largest beta with 1/2 (beta s)^T M (beta s) = delta: beta = sqrt(2 delta / s^T M s), given Fs = M s.

    M is the matrix of the quadratic KL model. ``trpo_update`` passes ``problem.fvp(s)``, the damped product
    (F + damping I) s, so beta puts the damped model's KL at delta; with damping 0 it is the Fisher F.
    """
    return torch.sqrt(2 * delta / (s @ Fs))


def backtracking_line_search(evaluate: Evaluate, full_step: torch.Tensor, delta: float = DELTA,
                             shrink: float = 0.5, max_tries: int = 10) -> torch.Tensor:
    """Try full_step, shrink * full_step, shrink^2 * full_step, ...; return the first that is acceptable.

    ``evaluate(step)`` returns ``(gain, kl)`` for theta_old + step: the change of the surrogate and the
    measured mean KL(pi_old || pi_new). Acceptable means gain > 0 and kl <= delta: the quadratic
    model behind the full step is only an approximation, so both are checked on the real policy.
    When no try is acceptable the update is skipped: a zero step.
    """
    for k in range(max_tries):
        step = shrink ** k * full_step
        gain, kl = evaluate(step)
        if kl <= delta and gain > 0:
            return step
    return torch.zeros_like(full_step)


# --- a tiny policy and a CartPole batch ---------------------------------------------------------

def make_policy(obs_dim: int = 4, n_actions: int = 2, hidden: int = 32, seed: int = 0) -> nn.Sequential:
    """A small softmax policy: obs -> tanh MLP -> logits. The last layer starts small, so pi is near uniform."""
    torch.manual_seed(seed)
    policy = nn.Sequential(nn.Linear(obs_dim, hidden), nn.Tanh(), nn.Linear(hidden, n_actions))
    with torch.no_grad():
        policy[-1].weight.mul_(0.1)
        policy[-1].bias.zero_()
    return policy


@dataclass(frozen=True)
class Batch:
    """One batch of on-policy data. ``advantages`` are standardised discounted rewards-to-go."""

    obs: torch.Tensor          # [N, obs_dim], float32
    actions: torch.Tensor      # [N], int64
    advantages: torch.Tensor   # [N], float32
    episode_returns: tuple     # undiscounted returns of the episodes that finished inside the batch


def rewards_to_go(rewards: np.ndarray, episode_ends: np.ndarray, gamma: float) -> np.ndarray:
    """Discounted sum of future rewards, restarting at every episode end (terminated or truncated).

    The last, unfinished episode is cut at the batch end: its tail is simply missing. That bias is one
    of the reasons lesson 04 replaces these returns by GAE with a learned value function.
    """
    out = np.zeros_like(rewards, dtype=np.float64)
    running = 0.0
    for t in reversed(range(len(rewards))):
        running = rewards[t] + gamma * running * (not episode_ends[t])
        out[t] = running
    return out


def collect_cartpole_batch(policy: nn.Module, n_steps: int = 2000, gamma: float = 0.99, seed: int = 0) -> Batch:
    """Run ``policy`` on CartPole-v1 for ``n_steps`` steps (seeded: environment and action sampling)."""
    env = gym.make("CartPole-v1")
    generator = torch.Generator().manual_seed(seed)
    obs, _ = env.reset(seed=seed)
    observations, actions, rewards, ends, returns, episode_return = [], [], [], [], [], 0.0
    for _ in range(n_steps):
        with torch.no_grad():
            probs = torch.softmax(policy(torch.as_tensor(obs, dtype=torch.float32)), dim=-1)
        action = int(torch.multinomial(probs, 1, generator=generator))
        observations.append(obs)
        actions.append(action)
        obs, reward, terminated, truncated, _ = env.step(action)
        rewards.append(reward)
        ends.append(terminated or truncated)
        episode_return += reward
        if terminated or truncated:
            returns.append(episode_return)
            episode_return = 0.0
            obs, _ = env.reset()
    env.close()
    rtg = rewards_to_go(np.asarray(rewards), np.asarray(ends), gamma)
    advantages = (rtg - rtg.mean()) / (rtg.std() + 1e-8)
    return Batch(torch.as_tensor(np.asarray(observations), dtype=torch.float32), torch.as_tensor(actions),
                 torch.as_tensor(advantages, dtype=torch.float32), tuple(returns))


# --- the policy as a function of a flat parameter vector ------------------------------------------

class FlatPolicy:
    """A network seen as logits(obs, theta) for one flat parameter vector theta.

    TRPO's linear algebra (gradients, Fisher-vector products, steps) lives in that flat space.
    ``theta`` is the network's current parameters; the network itself is never modified.
    """

    def __init__(self, module: nn.Module):
        self.module = module
        self.names = [name for name, _ in module.named_parameters()]
        self.shapes = [p.shape for p in module.parameters()]
        self.theta = nn.utils.parameters_to_vector(module.parameters()).detach().clone()

    def logits(self, obs: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        pieces = theta.split([int(np.prod(shape)) for shape in self.shapes])
        params = {name: piece.view(shape) for name, piece, shape in zip(self.names, pieces, self.shapes)}
        return torch.func.functional_call(self.module, params, (obs,))


def fisher_vector_product(mean_kl: Callable[[torch.Tensor], torch.Tensor], theta: torch.Tensor,
                          v: torch.Tensor, damping: float = 0.0) -> torch.Tensor:
    """F v, where F is the Hessian of ``mean_kl`` at ``theta``, by double backprop; F is never formed.

    The first backward pass keeps its graph (create_graph=True), so the scalar grad(KL) . v can be
    differentiated again: its gradient is F v. ``damping`` adds damping * v, i.e. uses F + damping * I,
    which keeps conjugate gradient stable where F is nearly singular.
    """
    theta = theta.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(mean_kl(theta), theta, create_graph=True)
    (Fv,) = torch.autograd.grad(grad @ v, theta)
    return Fv + damping * v


class TRPOProblem:
    """One TRPO update's ingredients on a batch: the surrogate, the mean KL, and their derivatives.

    ``kl(p_logits, q_logits)`` is the per-state KL the mean KL averages (lesson 02 passes the learner's
    ``categorical_kl``). ``damping`` is the lambda of ``fvp``'s F + lambda I.
    """

    def __init__(self, policy: nn.Module, batch: Batch, damping: float = 0.1, kl: KL = categorical_kl):
        self.flat, self.batch, self.damping, self.kl = FlatPolicy(policy), batch, damping, kl
        self.theta_old = self.flat.theta
        with torch.no_grad():
            self.old_logits = self.flat.logits(batch.obs, self.theta_old)
        self.logp_old = torch.log_softmax(self.old_logits, -1).gather(-1, batch.actions[:, None]).squeeze(-1)
        with torch.no_grad():
            self.surrogate_old = float(self.surrogate(self.theta_old))   # the mean advantage: r = 1 everywhere

    def surrogate(self, theta: torch.Tensor) -> torch.Tensor:
        """L(theta) = mean of r * A over the batch, r = pi_theta(a|s) / pi_old(a|s): lesson 01's surrogate."""
        logp = torch.log_softmax(self.flat.logits(self.batch.obs, theta), -1)
        logp = logp.gather(-1, self.batch.actions[:, None]).squeeze(-1)
        return surrogate_objective(logp, self.logp_old, self.batch.advantages)

    def mean_kl(self, theta: torch.Tensor) -> torch.Tensor:
        """Mean over the batch's states of KL(pi_old(.|s) || pi_theta(.|s))."""
        return self.kl(self.old_logits, self.flat.logits(self.batch.obs, theta)).mean()

    def gradient(self) -> torch.Tensor:
        """g = grad L at theta_old (which is the policy gradient, lesson 01)."""
        theta = self.theta_old.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(self.surrogate(theta), theta)
        return g

    def fvp(self, v: torch.Tensor) -> torch.Tensor:
        """(F + damping I) v at theta_old."""
        return fisher_vector_product(self.mean_kl, self.theta_old, v, self.damping)

    def evaluate(self, step: torch.Tensor) -> tuple[float, float]:
        """(surrogate gain, mean KL) of theta_old + step: what the line search checks."""
        with torch.no_grad():
            theta = self.theta_old + step
            return float(self.surrogate(theta)) - self.surrogate_old, float(self.mean_kl(theta))


@dataclass(frozen=True)
class TRPOStep:
    """What one TRPO update did. ``step`` is zero when the line search accepted nothing."""

    direction: torch.Tensor   # s, the approximate natural gradient F^-1 g
    beta: float               # sqrt(2 delta / s^T F s)
    full_step: torch.Tensor   # beta * s, the step the quadratic model says reaches KL = delta
    step: torch.Tensor        # what the line search accepted
    gain: float               # surrogate improvement of the accepted step
    kl: float                 # measured mean KL of the accepted step


def trpo_update(problem: TRPOProblem, delta: float = DELTA, cg_iters: int = 10, *,
                conjugate_gradient: Callable[..., torch.Tensor] = conjugate_gradient,
                trpo_step_size: Callable[..., torch.Tensor] = trpo_step_size,
                backtracking_line_search: Callable[..., torch.Tensor] = backtracking_line_search) -> TRPOStep:
    """One TRPO update: natural direction by conjugate gradient, maximal step, backtracking line search.

    The three solvers default to this module's references; lesson 02 passes the learner's.
    """
    g = problem.gradient()
    s = conjugate_gradient(problem.fvp, g, iters=cg_iters)
    beta = trpo_step_size(s, problem.fvp(s), delta)
    full_step = beta * s
    step = backtracking_line_search(problem.evaluate, full_step, delta)
    gain, kl = problem.evaluate(step)
    return TRPOStep(s, float(beta), full_step, step, gain, kl)
