"""The actor-critic networks (lesson 04): two small MLPs, and a NumPy copy of the actor for acting.

The actor maps an observation to the logits of a categorical policy pi_theta(a|s); the critic maps
it to V_phi(s). They share nothing (no common trunk), as in the PPO paper's MuJoCo and CleanRL's
CartPole agents, so the value loss cannot disturb the policy's features.

The rollout acts with a NumPy snapshot of the actor (``numpy_actor``) taken at the start of each
iteration: for one small batch of observations NumPy is several times faster than PyTorch (no
autograd bookkeeping, no dispatcher), while the update (batched, with gradients) runs in PyTorch on
the chosen device.
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
    """A categorical policy pi_theta(a|s) (``actor``: logits) and a separate critic V_phi(s) (``critic``)."""

    def __init__(self, obs_dim: int, n_actions: int, hidden: int = 64):
        super().__init__()
        self.obs_dim, self.n_actions = obs_dim, n_actions
        self.actor = mlp(obs_dim, hidden, n_actions, out_gain=0.01)
        self.critic = mlp(obs_dim, hidden, 1, out_gain=1.0)

    def policy(self, obs: torch.Tensor) -> torch.distributions.Categorical:
        """pi_theta(.|s) for ``obs`` ``[B, obs_dim]``, as a torch distribution."""
        return torch.distributions.Categorical(logits=self.actor(obs))

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """V(s) for ``obs`` of shape ``[B, obs_dim]``; returns ``[B]``."""
        return self.critic(obs).squeeze(-1)

    def evaluate(self, obs: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """log pi(a|s) of the given ``[B]`` actions, the entropy of pi(.|s) and V(s), all ``[B]``.

        The same numbers as ``self.policy(obs).log_prob(actions)`` and ``.entropy()``, written out:
        the distribution object's per-call checks and broadcasting cost ~15% of a gradient step here.
        """
        log_probs = torch.log_softmax(self.actor(obs), dim=-1)
        logp = log_probs.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)
        entropy = -(log_probs.exp() * log_probs).sum(-1)
        return logp, entropy, self.value(obs)

    def numpy_actor(self) -> NumpyActor:
        """A frozen NumPy copy of the actor's current weights (cheap: a few small arrays)."""
        return NumpyActor([(layer.weight.detach().cpu().numpy().T.copy(), layer.bias.detach().cpu().numpy().copy())
                           for layer in self.actor if isinstance(layer, nn.Linear)])


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
