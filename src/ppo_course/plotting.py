"""Colours and small plotting helpers shared by every lesson, so a colour means one thing course-wide."""
from __future__ import annotations

import matplotlib.pyplot as plt

#: One meaning per colour across the course.
COLORS = {
    "positive": "#1f77b4",   # A > 0: a good action
    "negative": "#d62728",   # A < 0: a bad action
    "unclipped": "#7f7f7f",  # r * A, the plain importance-sampled surrogate
    "clip_region": "#2ca02c",  # the trust interval [1 - eps, 1 + eps]
    "flat": "#ff7f0e",       # where the gradient is zero (the clip is active)
    "learner": "#9467bd",    # the learner's own function overlaid on the reference
    "ours": "#1f77b4",       # our trainer in comparisons
    "baseline": "#7f7f7f",   # a baseline in comparisons
    # Lesson 05 (RLHF)
    "reward_model": "#8c564b",  # the frozen reward model's score
    "human": "#17becf",         # the reader's score (what a person would think)
    "kl": "#bcbd22",            # KL(policy || reference)
    "ppo": "#1f77b4",
    "grpo": "#e377c2",
    "dpo": "#006d2c",
    "reference": "#7f7f7f",     # the pretrained reference policy
    "no_kl": "#8b0000",         # a run without the KL penalty (beta = 0)
}


def new_figure(ncols: int = 1, width: float = 5.0, height: float = 3.6, **kwargs):
    """A figure with ``ncols`` axes side by side and constrained layout (labels are never cut)."""
    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), layout="constrained", **kwargs)
    return fig, axes
