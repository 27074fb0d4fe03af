"""A small task the course builds itself (lesson 04): a sparse-reward chain, where exploring is the hard part.

``SparseChain`` is a row of ``length`` cells. The agent starts in the leftmost one; action 1 steps right,
action 0 steps left (or stays, at the left wall). Stepping off the right end earns the only reward, 1, and
ends the episode; otherwise an episode is cut after ``max_episode_steps`` steps (a truncation: gymnasium's
TimeLimit). The observation is the cell, one-hot. A uniformly random policy is a random walk: with 16 cells
and 50 steps it reaches the reward in a few percent of its episodes, so a policy has to stay random long
enough to find it, and a single cell whose policy has turned (almost) deterministic towards the left walls
off everything beyond it. Lesson 04 trains PPO on it with and without the entropy bonus.

Importing this module (the trainer does) registers it with gymnasium as ``ppo_course/SparseChain-v0``.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np

SPARSE_CHAIN = "ppo_course/SparseChain-v0"


class SparseChain(gym.Env):
    """A row of ``length`` cells with a reward of 1 for stepping off its right end (see the module doc)."""

    def __init__(self, length: int = 16):
        self.length = length
        self.observation_space = gym.spaces.Box(0.0, 1.0, (length,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.cell = 0

    def observation(self) -> np.ndarray:
        obs = np.zeros(self.length, np.float32)
        obs[self.cell] = 1.0
        return obs

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.cell = 0
        return self.observation(), {}

    def step(self, action) -> tuple[np.ndarray, float, bool, bool, dict]:
        if action == 1 and self.cell == self.length - 1:
            return self.observation(), 1.0, True, False, {}
        self.cell = max(0, self.cell + (1 if action == 1 else -1))
        return self.observation(), 0.0, False, False, {}


if SPARSE_CHAIN not in gym.registry:
    gym.register(SPARSE_CHAIN, entry_point=SparseChain, max_episode_steps=50, kwargs={"length": 16})
