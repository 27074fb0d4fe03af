"""Lesson 05's pictures: the colour of each series, and ``plot_runs`` (reward, reader, KL per iteration)."""
from __future__ import annotations

import torch

from ..plotting import COLORS, new_figure
from .reward import NONSENSE_SCORE

#: What each series of this lesson is drawn in (one meaning per colour, course-wide).
SERIES_COLORS = {name: COLORS[name] for name in (
    "reward_model", "human", "kl", "ppo", "grpo", "reference", "no_kl")}


def plot_runs(runs: dict, colors: dict, title: str = ""):
    """Three panels against the iteration: reward-model score, reader's score, KL to the reference.

    ``runs`` maps a label to a ``RunResult`` or to a list of them (seeds: drawn as mean and band).
    """
    fig, axes = new_figure(ncols=3, width=4.3, height=3.4)
    panels = [("reward", "reward model score"), ("human", "reader's score"), ("kl", "KL(π ‖ π_ref), nats")]
    for label, results in runs.items():
        results = results if isinstance(results, list) else [results]
        for ax, (key, ylabel) in zip(axes, panels, strict=True):
            curves = torch.tensor([getattr(r, key) for r in results])
            mean = curves.mean(0)
            ax.plot(mean, color=colors[label], label=label)
            if len(results) > 1:
                ax.fill_between(range(len(mean)), curves.min(0).values, curves.max(0).values,
                                color=colors[label], alpha=0.2, lw=0)
            ax.set(xlabel="iteration", ylabel=ylabel, title=ylabel)
    axes[1].axhline(NONSENSE_SCORE, ls=":", color=COLORS["baseline"], label="nonsense")
    axes[0].legend(fontsize=8)
    axes[1].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig, axes
