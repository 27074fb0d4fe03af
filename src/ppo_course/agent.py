"""The actor-critic networks (lessons 04 and 06): two small MLPs, and a NumPy copy of the actor for acting.

The actor maps an observation to the logits of a categorical policy pi_theta(a|s); the critic maps
it to V_phi(s). They share nothing (no common trunk), as in the PPO paper's MuJoCo and CleanRL's
CartPole agents, so the value loss cannot disturb the policy's features.

Lesson 06's ``GaussianActorCritic`` is the same pair for a continuous (Box) action: the actor outputs
the mean of a diagonal Gaussian, and one learned log-std per action dimension, shared by every
state (as in the PPO paper), sets its width.

The rollout acts with a NumPy snapshot of the actor (``numpy_actor``) taken at the start of each
iteration: for one small batch of observations NumPy is several times faster than PyTorch (no
autograd bookkeeping, no dispatcher), while the update (batched, with gradients) runs in PyTorch on
the chosen device.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from .gaussian import gaussian_entropy, gaussian_log_prob


def mlp(in_dim: int, hidden: int, out_dim: int, out_gain: float, ortho_init: bool = True) -> nn.Sequential:
    """in -> hidden -> hidden -> out with tanh, orthogonally initialised (the usual PPO init) unless
    ``ortho_init`` is False (then torch's default for ``nn.Linear``: uniform, scaled by the fan-in).

    A small ``out_gain`` on the policy head (0.01) starts the policy near uniform: high entropy.
    """
    layers = [nn.Linear(in_dim, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, out_dim)]
    if ortho_init:
        for layer, gain in zip(layers[::2], (np.sqrt(2), np.sqrt(2), out_gain)):
            nn.init.orthogonal_(layer.weight, gain)
            nn.init.zeros_(layer.bias)
    return nn.Sequential(*layers)


class ActorCritic(nn.Module):
    """A categorical policy pi_theta(a|s) (``actor``: logits) and a separate critic V_phi(s) (``critic``)."""

    def __init__(self, obs_dim: int, n_actions: int, hidden: int = 64, ortho_init: bool = True):
        super().__init__()
        self.obs_dim, self.n_actions = obs_dim, n_actions
        self.actor = mlp(obs_dim, hidden, n_actions, out_gain=0.01, ortho_init=ortho_init)
        self.critic = mlp(obs_dim, hidden, 1, out_gain=1.0, ortho_init=ortho_init)

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


class GaussianActorCritic(nn.Module):
    """A diagonal Gaussian policy pi_theta(a|s) = N(mu_theta(s), diag(sigma^2)) and a separate critic V_phi(s).

    ``actor`` maps an observation to the mean ``[B, action_dim]``; ``log_std`` ``[action_dim]`` is a
    parameter of its own, state-independent. ``evaluate`` computes log pi and the entropy with
    ``log_prob_fn(mean, log_std, actions)`` and ``entropy_fn(log_std)``: the package's references
    (``ppo_course.gaussian``) unless the trainer is handed the learner's from lesson 06.
    """

    def __init__(self, obs_dim: int, action_dim: int, hidden: int = 64, log_std_init: float = 0.0,
                 log_prob_fn: Callable = gaussian_log_prob, entropy_fn: Callable = gaussian_entropy,
                 ortho_init: bool = True):
        super().__init__()
        self.obs_dim, self.action_dim = obs_dim, action_dim
        self.actor = mlp(obs_dim, hidden, action_dim, out_gain=0.01, ortho_init=ortho_init)   # the mean starts near 0
        self.log_std = nn.Parameter(torch.full((action_dim,), float(log_std_init)))
        self.critic = mlp(obs_dim, hidden, 1, out_gain=1.0, ortho_init=ortho_init)
        self.log_prob_fn, self.entropy_fn = log_prob_fn, entropy_fn

    def policy(self, obs: torch.Tensor) -> torch.distributions.Independent:
        """pi_theta(.|s) for ``obs`` ``[B, obs_dim]``: D independent Normals, as one torch distribution."""
        mean = self.actor(obs)
        return torch.distributions.Independent(torch.distributions.Normal(mean, self.log_std.exp().expand_as(mean)), 1)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """V(s) for ``obs`` of shape ``[B, obs_dim]``; returns ``[B]``."""
        return self.critic(obs).squeeze(-1)

    def evaluate(self, obs: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """log pi(a|s) of the given ``[B, action_dim]`` actions, the entropy of pi(.|s) and V(s), all ``[B]``."""
        mean = self.actor(obs)
        log_std = self.log_std.expand_as(mean)
        return self.log_prob_fn(mean, log_std, actions), self.entropy_fn(log_std), self.value(obs)

    def numpy_actor(self) -> NumpyGaussianActor:
        """A frozen NumPy copy of the mean network and the current standard deviation."""
        layers = [(layer.weight.detach().cpu().numpy().T.copy(), layer.bias.detach().cpu().numpy().copy())
                  for layer in self.actor if isinstance(layer, nn.Linear)]
        return NumpyGaussianActor(layers, self.log_std.detach().exp().cpu().numpy().copy())


@dataclass
class NumpyGaussianActor(NumpyActor):
    """The Gaussian actor in NumPy: ``logits`` (inherited) computes the mean; ``std`` is ``[action_dim]``.

    Actions are returned unclipped: the trainer's env clips them to the action bounds (gymnasium's
    ``ClipAction``), so the stored action is the Gaussian sample and its log-probability stays exact.
    """

    std: np.ndarray

    def sample(self, obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """mean + std * noise, one ``[action_dim]`` action per row."""
        mean = self.logits(obs)
        return (mean + self.std * rng.standard_normal(mean.shape)).astype(np.float32)

    def greedy(self, obs: np.ndarray) -> np.ndarray:
        """The mean action per row (the most probable one; used for evaluation)."""
        return self.logits(obs).astype(np.float32)
