"""The actor-critic networks (lesson 04): two small MLPs, and a NumPy copy of the actor for acting.

At this size (64 units) a gradient step costs per-operation overhead, not arithmetic, so two
choices keep the operation count low:
  * the actor and the critic are separate MLPs of the same shape, so their layers are stored
    stacked ([2, in, out]: index 0 is the actor, 1 the critic) and one ``torch.baddbmm`` computes a
    layer of both: the same maths as two ``nn.Sequential``, half the operations (and half the
    tensors for Adam and the gradient clip);
  * the rollout acts with a NumPy snapshot of the actor taken at the start of each iteration: for
    one small batch of observations NumPy is several times faster than PyTorch (no autograd
    bookkeeping, no dispatcher), while the update (batched, with gradients) runs in PyTorch on the
    chosen device.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


def mlp(in_dim: int, hidden: int, out_dim: int, out_gain: float) -> nn.Sequential:
    """in -> hidden -> hidden -> out with tanh, orthogonally initialised (the usual PPO init).

    A small ``out_gain`` on the policy head (0.01) starts the policy near uniform: high entropy.
    """
    layers = [nn.Linear(in_dim, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, out_dim)]
    for layer, gain in zip(layers[::2], (np.sqrt(2), np.sqrt(2), out_gain)):
        nn.init.orthogonal_(layer.weight, gain)
        nn.init.zeros_(layer.bias)
    return nn.Sequential(*layers)


class ActorCritic(nn.Module):
    """A categorical policy pi_theta(a|s) and a separate critic V_phi(s) (no shared trunk).

    Parameters, for layer i = 1, 2, 3: ``weight{i}`` ``[2, in, out]`` and ``bias{i}`` ``[2, 1, out]``,
    actor at index 0 and critic at index 1. The critic has one output; its last layer is padded to
    ``n_actions`` columns, of which only column 0 is used (the others start at 0, get no gradient
    and stay 0).
    """

    def __init__(self, obs_dim: int, n_actions: int, hidden: int = 64):
        super().__init__()
        self.obs_dim, self.n_actions = obs_dim, n_actions
        actor, critic = mlp(obs_dim, hidden, n_actions, out_gain=0.01), mlp(obs_dim, hidden, 1, out_gain=1.0)
        for i, (a, c) in enumerate(zip(actor[::2], critic[::2]), start=1):
            w_critic, b_critic = c.weight.detach(), c.bias.detach()
            if i == 3:  # pad the critic's single output to n_actions (zero) outputs
                w_critic = torch.cat([w_critic, torch.zeros(n_actions - 1, hidden)])
                b_critic = torch.cat([b_critic, torch.zeros(n_actions - 1)])
            self.register_parameter(f"weight{i}",
                                    nn.Parameter(torch.stack([a.weight.detach().T, w_critic.T]).contiguous()))
            self.register_parameter(f"bias{i}", nn.Parameter(torch.stack([a.bias.detach(), b_critic]).unsqueeze(1)))

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``obs`` ``[B, obs_dim]`` -> the actor's logits ``[B, n_actions]`` and V(s) ``[B]``."""
        h = torch.tanh(torch.baddbmm(self.bias1, obs.expand(2, -1, -1), self.weight1))
        h = torch.tanh(torch.baddbmm(self.bias2, h, self.weight2))
        out = torch.baddbmm(self.bias3, h, self.weight3)
        return out[0], out[1, :, 0]

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """V(s) for ``obs`` of shape ``[B, obs_dim]``; returns ``[B]``."""
        return self(obs)[1]

    def evaluate(self, obs: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """log pi(a|s) of the given ``[B]`` actions, the entropy of pi(.|s) and V(s), all ``[B]``."""
        logits, values = self(obs)
        log_probs = torch.log_softmax(logits, dim=-1)
        logp = log_probs.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)
        entropy = -(log_probs.exp() * log_probs).sum(-1)
        return logp, entropy, values

    def numpy_actor(self) -> "NumpyActor":
        """A frozen NumPy copy of the actor's current weights (cheap: a few small arrays)."""
        return NumpyActor([(getattr(self, f"weight{i}")[0].detach().cpu().numpy().copy(),
                            getattr(self, f"bias{i}")[0, 0].detach().cpu().numpy().copy()) for i in (1, 2, 3)])


@dataclass
class NumpyActor:
    """The actor's forward pass in NumPy, for stepping environments. ``layers`` = [(W^T, b), ...]."""

    layers: list[tuple[np.ndarray, np.ndarray]]

    def logits(self, obs: np.ndarray) -> np.ndarray:
        """``[N, obs_dim]`` observations -> ``[N, n_actions]`` logits."""
        h = obs
        for w, b in self.layers[:-1]:
            h = np.tanh(h @ w + b)
        w, b = self.layers[-1]
        return h @ w + b

    def sample(self, obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One action per row, drawn from softmax(logits) by inverting the CDF with one uniform each."""
        logits = self.logits(obs)
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        cdf = np.cumsum(probs, axis=1)
        u = rng.random(len(obs))[:, None] * cdf[:, -1:]
        return np.minimum((u > cdf).sum(axis=1), logits.shape[1] - 1)

    def greedy(self, obs: np.ndarray) -> np.ndarray:
        """The most probable action per row (used for evaluation)."""
        return self.logits(obs).argmax(axis=1)
